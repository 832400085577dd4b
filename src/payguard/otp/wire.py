"""The OTP service's edge: request and answer shapes, and the one error it raises.

Requests follow the event contract's conventions (docs/events.md): amounts in decimal
major units (fen inside), `currency` as three upper-case letters, card numbers and phone
numbers in clear only here (tokenized before anything stores them), unknown fields
rejected, and every rejection naming its field. The HTTP layer and the CLI decode the same
shapes with `decode_send` / `decode_verify`, so both reject the same inputs the same way.
"""

from decimal import Decimal
from typing import Annotated, Literal, TypeVar

import msgspec

from payguard.decision import Decision
from payguard.events import NESTED_TOO_DEEPLY, msgspec_field_and_reason, not_utf8
from payguard.events.contract import CardIn, Channel, Currency, EventId, MerchantCategory
from payguard.otp.messages import Lang, Purpose

T = TypeVar("T")
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Code = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]
ChallengeId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
VerifyResultCode = Literal[
    "ok",
    "wrong_code",
    "expired",
    "used",
    "locked",
    "superseded",
    "invalidated",
    "undelivered",
    "binding_changed",
    "other_device",
    "other_session",
    "other_ip",
]
"""`ok` passes; `wrong_code` counts towards the attempt limit; the rest never pass:
`expired`/`used`/`locked`/`superseded`/`invalidated`/`undelivered` say the challenge is
already closed, `binding_changed` that the amount, currency, payee or user differ, and
`other_*` that the code came from another device, session or IP than the one that asked."""


class OtpError(Exception):
    """A request the OTP service will not carry out: HTTP `status`, a stable `error`,
    the `field` it is about (`$` for the request as a whole) and prose `reason`."""

    def __init__(
        self, status: int, error: str, field: str, reason: str, event_id: str | None = None
    ) -> None:
        super().__init__(f"{field}: {reason}")
        self.status = status
        self.error = error
        self.field = field
        self.reason = reason
        self.event_id = event_id

    def body(self) -> "OtpErrorBody":
        return OtpErrorBody(
            error=self.error, field=self.field, reason=self.reason, event_id=self.event_id
        )


class OtpErrorBody(msgspec.Struct, omit_defaults=True):
    """The error body, shaped like the rest of the API's (docs/decisions.md)."""

    error: str
    field: str
    reason: str
    event_id: str | None = None
    """The recorded event the error is about, when there is one."""


class MerchantRef(msgspec.Struct, forbid_unknown_fields=True):
    """The event contract's merchant, plus an optional name for the message."""

    id: ShortText
    category: MerchantCategory = "other"
    name: DisplayName | None = None


class PayeeRef(msgspec.Struct, forbid_unknown_fields=True):
    """The event contract's payee (`card` a clear number or a client token)."""

    id: ShortText
    card: CardIn | None = None
    name: DisplayName | None = None


class SendRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /v1/otp/send`: ask for a code bound to one transaction.

    With `ref_event_id` (an event payguard already decided: the payment being
    authorised) the amount, currency and counterparty default to that event's and must
    equal them when given, and the code is refused unless that decision offered
    `sms_otp`."""

    user_id: ShortText
    device_id: ShortText | None = None
    session_id: ShortText | None = None
    ip: ShortText | None = None
    phone: str | None = None
    amount: Decimal | None = None
    currency: Currency | None = None
    merchant: MerchantRef | None = None
    payee: PayeeRef | None = None
    purpose: Purpose | None = None
    channel: Channel | None = None
    lang: Lang = "zh"
    ref_event_id: EventId | None = None


class VerifyRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /v1/otp/verify`: present a code with the transaction it is meant to authorise
    (amount, currency, counterparty) and the context it comes from."""

    challenge_id: ChallengeId
    code: Code
    user_id: ShortText
    device_id: ShortText | None = None
    session_id: ShortText | None = None
    ip: ShortText | None = None
    amount: Decimal | None = None
    currency: Currency = "CNY"
    merchant: MerchantRef | None = None
    payee: PayeeRef | None = None
    channel: Channel | None = None


class SendResult(msgspec.Struct):
    """The answer to a send: never the code (that goes only through the delivery)."""

    challenge_id: str
    event_id: str
    """The recorded `otp_send` event (what the `otp_verify` events refer to)."""
    purpose: str
    amount: str
    """The bound amount in major units, as the message states it (`"300.00"`)."""
    currency: str
    expires_at: int
    """Epoch ms; the code is refused from then on."""
    delivery: str
    decision: Decision
    """payguard's decision for the `otp_send` event."""


class VerifyResult(msgspec.Struct):
    """The answer to a verification. `verified` says whether the code passes; the
    `otp_verify` event's `decision` is acted on like any other payguard decision."""

    challenge_id: str
    verified: bool
    result: VerifyResultCode
    attempts_left: int
    event_id: str
    """The recorded `otp_verify` event."""
    decision: Decision


def decode_send(raw: bytes | str) -> SendRequest:
    return _decode(msgspec.json.Decoder(SendRequest), raw)


def decode_verify(raw: bytes | str) -> VerifyRequest:
    return _decode(msgspec.json.Decoder(VerifyRequest), raw)


def _decode(decoder: "msgspec.json.Decoder[T]", raw: bytes | str) -> T:
    """Decode, turning msgspec's failure into an `OtpError` naming the field (400 for
    a body that is not JSON, 422 for JSON of the wrong shape); never echoes a value."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        field, reason = msgspec_field_and_reason(str(exc))
        if field == "code" and "matching" in reason:
            reason = "must be the 6 digits of the code"
        elif reason.startswith("Invalid enum value"):
            reason = "Invalid enum value; see docs/otp.md for the allowed values"
        raise OtpError(422, "invalid_request", field, reason) from None
    except msgspec.DecodeError as exc:
        field, reason = msgspec_field_and_reason(str(exc))
        raise OtpError(400, "invalid_request", field, f"malformed JSON: {reason}") from None
    except UnicodeDecodeError as exc:
        raise OtpError(400, "invalid_request", "$", not_utf8(exc)) from None
    except RecursionError:
        raise OtpError(400, "invalid_request", "$", NESTED_TOO_DEEPLY) from None
