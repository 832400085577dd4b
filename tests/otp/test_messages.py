"""Messages state the amount, the payee and the purpose, and warn that staff never ask
for codes, in Chinese and English."""

import pytest
from otp_support import code_in, send

from payguard.otp import WARNING_EN, WARNING_ZH, MemoryOutbox, OtpService, render

PAN = "6222021234567890128"


def _text(otp: OtpService) -> str:
    assert isinstance(otp.delivery, MemoryOutbox)
    return otp.delivery.sent[-1].text


def test_warning_texts() -> None:
    assert WARNING_ZH == "银行工作人员不会索要验证码"
    assert "never ask" in WARNING_EN


def test_chinese_payment_message(otp: OtpService) -> None:
    send(otp, amount="3000.50")
    text = _text(otp)
    assert "3,000.50元" in text
    assert "京东商城" in text
    assert "付款" in text
    assert "银行工作人员不会索要验证码" in text
    assert "5分钟" in text
    assert len(code_in(text)) == 6


def test_english_payment_message(otp: OtpService) -> None:
    send(otp, amount="3000.50", lang="en")
    text = _text(otp)
    assert "CNY 3,000.50" in text
    assert "京东商城" in text
    assert "payment" in text
    assert "Bank staff will never ask for this code" in text
    assert "5 min" in text


@pytest.mark.parametrize(
    ("lang", "purpose", "words"),
    [
        ("zh", "transfer", ["转账", "张三（尾号0128）", "88.00元"]),
        ("en", "transfer", ["transfer", "张三 (card ending 0128)", "CNY 88.00"]),
        ("zh", "withdrawal", ["提现", "张三（尾号0128）", "88.00元"]),
        ("en", "withdrawal", ["withdraw", "张三 (card ending 0128)", "CNY 88.00"]),
    ],
)
def test_payee_messages(otp: OtpService, lang: str, purpose: str, words: list[str]) -> None:
    payee = {"id": "p_1", "name": "张三", "card": {"number": PAN}}
    send(otp, merchant=None, payee=payee, amount="88", purpose=purpose, lang=lang)
    text = _text(otp)
    for word in words:
        assert word in text
    assert WARNING_ZH in text if lang == "zh" else WARNING_EN in text
    assert PAN not in text  # only the last 4 digits


def test_payee_without_name_is_named_by_id(otp: OtpService) -> None:
    send(otp, merchant=None, payee={"id": "acct_77"}, amount="1")
    assert "向acct_77转账1.00元" in _text(otp)


def test_merchant_without_name_is_named_by_id(otp: OtpService) -> None:
    send(otp, merchant={"id": "m_5521"}, amount="1")
    assert "向m_5521付款1.00元" in _text(otp)


def test_currencies_keep_their_decimal_places() -> None:
    def text(amount: int, currency: str, lang: str) -> str:
        return render(
            lang=lang,
            purpose="payment",
            amount=amount,
            currency=currency,
            payee="Shop",
            code="123456",
            ttl_s=300,
        )

    assert "JPY 1,500" in text(1500, "JPY", "en")
    assert "1,500 JPY" in text(1500, "JPY", "zh")
    assert "KWD 1.250" in text(1250, "KWD", "en")
    assert "USD 0.05" in text(5, "USD", "en")
