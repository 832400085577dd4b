"""Message texts: what the customer reads is what the code authorises.

Scam victims read codes aloud because the text did not tell them what they were
approving. Every message therefore states the purpose, the amount and the payee, says
the code is only for this transaction, and carries the warning that bank staff never ask
for codes (银行工作人员不会索要验证码) — in Chinese and in English.
"""

from decimal import Decimal
from typing import Final, Literal

from payguard.events import to_minor_units
from payguard.types import Fen

Lang = Literal["zh", "en"]
Purpose = Literal["payment", "transfer", "withdrawal"]

WARNING_ZH: Final = "银行工作人员不会索要验证码"
WARNING_EN: Final = "Bank staff will never ask for this code"
PURPOSE_LABEL: Final[dict[str, dict[str, str]]] = {
    "zh": {"payment": "付款", "transfer": "转账", "withdrawal": "提现"},
    "en": {"payment": "payment", "transfer": "transfer", "withdrawal": "withdrawal"},
}
_ACTION: Final[dict[str, dict[str, str]]] = {
    "zh": {
        "payment": "向{payee}付款{amount}",
        "transfer": "向{payee}转账{amount}",
        "withdrawal": "提现{amount}至{payee}",
    },
    "en": {
        "payment": "pay {amount} to {payee}",
        "transfer": "transfer {amount} to {payee}",
        "withdrawal": "withdraw {amount} to {payee}",
    },
}
TEMPLATES: Final[dict[str, str]] = {
    "zh": (
        "【{signature}】验证码{code}，用于{purpose}：{action}。{minutes}分钟内有效，"
        "仅限本笔交易，金额或收款方变更即失效。" + WARNING_ZH + "，切勿告诉任何人。"
    ),
    "en": (
        "[{signature}] Code {code} for a {purpose}: {action}. Valid for {minutes} min, for "
        "this amount and payee only. " + WARNING_EN + "; do not tell anyone."
    ),
}


def major_units(amount: Fen, currency: str, *, grouped: bool = False) -> str:
    """Minor units back to the decimal major units the contract takes (`"3000.00"`), or
    grouped for people (`"3,000.00"`); exact, with the currency's decimal places."""
    per_unit = to_minor_units(Decimal(1), currency)  # 100 for CNY, 1 for JPY, 1000 for KWD
    places = len(str(per_unit)) - 1
    whole, part = divmod(amount, per_unit)
    text = f"{whole:,}" if grouped else str(whole)
    return f"{text}.{part:0{places}d}" if places else text


def format_amount(amount: Fen, currency: str, lang: str) -> str:
    """The amount as the customer reads it: `3,000.00元`, `CNY 3,000.00`."""
    text = major_units(amount, currency, grouped=True)
    if lang == "zh":
        return f"{text}元" if currency == "CNY" else f"{text} {currency}"
    return f"{currency} {text}"


def render(
    *,
    lang: str,
    purpose: str,
    amount: Fen,
    currency: str,
    payee: str,
    code: str,
    ttl_s: int,
    signature: str = "payguard",
) -> str:
    """The message for one code. `payee` is the counterparty's label (never a clear card
    number: a payee card shows only its last 4)."""
    action = _ACTION[lang][purpose].format(
        payee=payee, amount=format_amount(amount, currency, lang)
    )
    return TEMPLATES[lang].format(
        signature=signature,
        code=code,
        purpose=PURPOSE_LABEL[lang][purpose],
        action=action,
        minutes=max(1, ttl_s // 60),
    )
