"""Transaction-bound one-time codes (docs/otp.md): `OtpService.send` / `OtpService.verify`.

Codes are bound to the account, amount, currency and payee (dynamic linking) and to the
device and session that asked; stored only as a keyed hash; single use, short-lived,
dead after a few wrong tries; and every send and verification is an event the engine
decides and records, so rules see them.
"""

from payguard.otp.binding import Binding, Context, Counterparty
from payguard.otp.delivery import (
    Delivery,
    DeliveryError,
    JsonlOutbox,
    MemoryOutbox,
    OutboundMessage,
    read_outbox,
)
from payguard.otp.messages import WARNING_EN, WARNING_ZH, render
from payguard.otp.service import (
    OTP_DATABASE_FILE,
    OUTBOX_FILE,
    Clock,
    OtpConfig,
    OtpService,
    wall_clock_ms,
)
from payguard.otp.store import Challenge, OtpStore
from payguard.otp.wire import (
    OtpError,
    OtpErrorBody,
    SendRequest,
    SendResult,
    VerifyRequest,
    VerifyResult,
    decode_send,
    decode_verify,
)

__all__ = [
    "OTP_DATABASE_FILE",
    "OUTBOX_FILE",
    "WARNING_EN",
    "WARNING_ZH",
    "Binding",
    "Challenge",
    "Clock",
    "Context",
    "Counterparty",
    "Delivery",
    "DeliveryError",
    "JsonlOutbox",
    "MemoryOutbox",
    "OtpConfig",
    "OtpError",
    "OtpErrorBody",
    "OtpService",
    "OtpStore",
    "OutboundMessage",
    "SendRequest",
    "SendResult",
    "VerifyRequest",
    "VerifyResult",
    "decode_send",
    "decode_verify",
    "read_outbox",
    "render",
    "wall_clock_ms",
]
