"""How a code reaches the customer: a small protocol, an outbox by default.

payguard never holds a clear phone number, so a delivery is addressed by `user_id` and
the phone token; a real SMS gateway (or push service) resolves them against the bank's
own customer records. The default `JsonlOutbox` appends each message to a local JSON
Lines file, and `MemoryOutbox` keeps them in a list, so the demo and the tests can read
what would have been sent. The outbox is the phone's stand-in: it holds the message
text, code included, which is why it is a file of its own, never the OTP store.
"""

import threading
from pathlib import Path
from typing import Protocol

import msgspec


class OutboundMessage(msgspec.Struct, frozen=True):
    """One message to deliver. Never a clear phone number: `phone_token` (`tel_…`)."""

    challenge_id: str
    """Also the message's idempotency key: one message per challenge."""
    user_id: str
    lang: str
    text: str
    created_at: int
    """Epoch ms."""
    expires_at: int
    """Epoch ms: after this the code is refused anyway; a late delivery may be dropped."""
    phone_token: str | None = None
    channel: str = "sms"


class DeliveryError(Exception):
    """The message could not be handed over; the challenge is then closed unused."""


class Delivery(Protocol):
    """Hands a message to a channel (SMS gateway, push); raises DeliveryError on failure."""

    @property
    def name(self) -> str:
        """Short name reported in the send answer (`outbox`, `sms-gateway`, …)."""
        ...

    def deliver(self, message: OutboundMessage) -> None: ...


class JsonlOutbox:
    """Appends each message as one JSON line to `path` (the default delivery)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._encode = msgspec.json.Encoder().encode
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "outbox"

    def deliver(self, message: OutboundMessage) -> None:
        line = self._encode(message) + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("ab") as fh:
                fh.write(line)
        except OSError as exc:
            raise DeliveryError(f"cannot write the outbox: {exc.strerror or exc}") from None

    def messages(self) -> list[OutboundMessage]:
        """Every message written so far, oldest first."""
        if not self.path.exists():
            return []
        return read_outbox(self.path)


class MemoryOutbox:
    """Keeps messages in a list (in-memory engines, tests)."""

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    @property
    def name(self) -> str:
        return "outbox"

    def deliver(self, message: OutboundMessage) -> None:
        self.sent.append(message)

    def messages(self) -> list[OutboundMessage]:
        return list(self.sent)


def read_outbox(path: Path) -> list[OutboundMessage]:
    """The messages of a JSON Lines outbox file, oldest first."""
    decode = msgspec.json.Decoder(OutboundMessage).decode
    with path.open("rb") as fh:
        return [decode(line) for line in fh if line.strip()]
