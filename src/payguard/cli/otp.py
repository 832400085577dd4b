"""`payguard otp send` and `payguard otp verify`: the OTP service from the shell.

payguard otp send --user U --device D --session S --amount 300.00 --merchant M
payguard otp verify CHALLENGE CODE --user U --device D --session S --amount 300.00 --merchant M

Both run on the embedded store (`otp.db` and the event log in the data directory) and
print the service's JSON answer. The options are gathered into the same JSON request the
HTTP API takes and decoded by the same shapes, so a bad value is named exactly as the
API names it: exit code 2 and one line. A code that does not verify prints its result
and exits 1. Codes go to the configured delivery (by default the outbox file), never to
this output.
"""

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
import typer

from payguard.cel import RuleError
from payguard.cli.common import err, fail
from payguard.config import load_settings
from payguard.engine import Engine
from payguard.otp import JsonlOutbox, OtpError, OtpService, decode_send, decode_verify

otp_app = typer.Typer(
    help="Send and verify transaction-bound one-time codes.", no_args_is_help=True
)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (else PAYGUARD_CONFIG).")
]
User = Annotated[str, typer.Option("--user", help="The account (user_id).")]
Device = Annotated[str | None, typer.Option("--device", help="Device fingerprint.")]
Session = Annotated[str | None, typer.Option("--session", help="Session id (stored hashed).")]
Ip = Annotated[str | None, typer.Option("--ip", help="Client IP.")]
Amount = Annotated[str | None, typer.Option("--amount", help="Major units, e.g. 300.00.")]
Currency = Annotated[str | None, typer.Option("--currency", help="ISO 4217 code (CNY).")]
MerchantId = Annotated[str | None, typer.Option("--merchant", help="Merchant id.")]
MerchantName = Annotated[
    str | None, typer.Option("--merchant-name", help="Merchant name for the message.")
]
MerchantCategory = Annotated[
    str | None, typer.Option("--merchant-category", help="Merchant category (other).")
]
PayeeId = Annotated[str | None, typer.Option("--payee", help="Payee id (transfers).")]
PayeeName = Annotated[str | None, typer.Option("--payee-name", help="Payee name.")]
PayeeCard = Annotated[
    str | None, typer.Option("--payee-card", help="Payee card number (tokenized).")
]
Channel = Annotated[str | None, typer.Option("--channel", help="app, web, wap, ...")]


def register(app: typer.Typer) -> None:
    app.add_typer(otp_app, name="otp")


T = TypeVar("T")


def _open(config: Path | None) -> tuple[Engine, OtpService]:
    try:
        engine = Engine.open(load_settings(config))
    except RuleError as exc:
        fail(str(exc))
    except (ValueError, OSError) as exc:
        fail(f"cannot start the engine: {exc}")
    return engine, OtpService.for_engine(engine)


def _call(config: Path | None, action: Callable[[OtpService], T]) -> tuple[T, OtpService]:
    """Run one service call on a freshly opened engine, closing both; an OtpError exits 2
    with its field and reason."""
    engine, service = _open(config)
    try:
        return action(service), service
    except OtpError as exc:
        fail(f"{exc.field}: {exc.reason}")
    finally:
        service.close()
        engine.close()


def _request(**fields: Any) -> bytes:
    """The options as the API's JSON body: unset options left out, nested objects built."""
    body = {k: v for k, v in fields.items() if v is not None and k not in ("merchant", "payee")}
    merchant = {k: v for k, v in fields["merchant"].items() if v is not None}
    payee = {k: v for k, v in fields["payee"].items() if v is not None}
    if merchant:
        body["merchant"] = merchant
    if payee:
        body["payee"] = payee
    return msgspec.json.encode(body)


def _counterparty(
    merchant: str | None,
    merchant_name: str | None,
    merchant_category: str | None,
    payee: str | None,
    payee_name: str | None,
    payee_card: str | None,
) -> dict[str, Any]:
    return {
        "merchant": {"id": merchant, "name": merchant_name, "category": merchant_category},
        "payee": {
            "id": payee,
            "name": payee_name,
            "card": {"number": payee_card} if payee_card else None,
        },
    }


def _print(answer: msgspec.Struct) -> None:
    sys.stdout.write(msgspec.json.encode(answer).decode() + "\n")


@otp_app.command("send")
def send(
    user: User,
    device: Device = None,
    session: Session = None,
    ip: Ip = None,
    phone: Annotated[str | None, typer.Option("--phone", help="E.164; tokenized.")] = None,
    amount: Amount = None,
    currency: Currency = None,
    merchant: MerchantId = None,
    merchant_name: MerchantName = None,
    merchant_category: MerchantCategory = None,
    payee: PayeeId = None,
    payee_name: PayeeName = None,
    payee_card: PayeeCard = None,
    purpose: Annotated[
        str | None, typer.Option("--purpose", help="payment, transfer or withdrawal.")
    ] = None,
    channel: Channel = None,
    lang: Annotated[str, typer.Option("--lang", help="Message language: zh or en.")] = "zh",
    ref: Annotated[
        str | None, typer.Option("--ref", help="The decided event this code authorises.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Send a code bound to one transaction; prints the challenge (never the code)."""
    raw = _request(
        user_id=user,
        device_id=device,
        session_id=session,
        ip=ip,
        phone=phone,
        amount=amount,
        currency=currency,
        purpose=purpose,
        channel=channel,
        lang=lang,
        ref_event_id=ref,
        **_counterparty(merchant, merchant_name, merchant_category, payee, payee_name, payee_card),
    )
    result, service = _call(config, lambda otp: otp.send(decode_send(raw)))
    _print(result)
    if isinstance(service.delivery, JsonlOutbox):
        err.print(f"message written to {service.delivery.path}", highlight=False)


@otp_app.command("verify")
def verify(
    challenge_id: Annotated[str, typer.Argument(help="The challenge_id `send` printed.")],
    code: Annotated[str, typer.Argument(help="The 6-digit code.")],
    user: User,
    device: Device = None,
    session: Session = None,
    ip: Ip = None,
    amount: Amount = None,
    currency: Currency = None,
    merchant: MerchantId = None,
    payee: PayeeId = None,
    payee_card: PayeeCard = None,
    channel: Channel = None,
    config: ConfigOption = None,
) -> None:
    """Verify a code for the transaction it was bound to; exit 0 verified, 1 not."""
    raw = _request(
        challenge_id=challenge_id,
        code=code,
        user_id=user,
        device_id=device,
        session_id=session,
        ip=ip,
        amount=amount,
        currency=currency,
        channel=channel,
        **_counterparty(merchant, None, None, payee, None, payee_card),
    )
    result, _ = _call(config, lambda otp: otp.verify(decode_verify(raw)))
    _print(result)
    if not result.verified:
        raise typer.Exit(1)
