"""Dynamic linking (PSD2 RTS art. 5): what a one-time code is bound to.

A code authorises one transaction, not "whatever the session does next". It is bound to
the account, the exact amount and currency, and the counterparty (merchant, or payee with
its card), through a keyed digest of those values that is also an input of the code's
hash: presenting the code for any other amount or payee cannot match, and is told apart
(`binding_changed`) from a wrong code. The context the code was asked from (device,
session, IP) is compared separately, because each comparison can be switched off
(`otp_same_*` settings) while the transaction binding cannot.

Display names are not part of the binding: they are what the customer reads in the
message, but money goes to the id (and card), and a name typed slightly differently at
verification must not look like fraud.
"""

import hashlib
import hmac

import msgspec

from payguard.events import Card, Merchant, Payee
from payguard.types import Fen


class Counterparty(msgspec.Struct, frozen=True, omit_defaults=True):
    """Where the money goes: exactly one of `merchant` and `payee` (tokenized card)."""

    merchant: Merchant | None = None
    payee: Payee | None = None
    merchant_name: str | None = None
    """Shown in the message only; the contract's merchant has no name."""

    def key(self) -> tuple[str, str, str]:
        """The part of the counterparty a code is bound to: kind, id, card token."""
        if self.merchant is not None:
            return ("merchant", self.merchant.id, "")
        assert self.payee is not None
        card = self.payee.card.token if self.payee.card is not None else ""
        return ("payee", self.payee.id, card)

    def label(self, lang: str) -> str:
        """How the message names the counterparty: name (or id), and a payee card's last 4."""
        if self.merchant is not None:
            return _short(self.merchant_name or self.merchant.id)
        assert self.payee is not None
        name = _short(self.payee.name or self.payee.id)
        last4 = _last4(self.payee.card)
        if last4 is None:
            return name
        return f"{name}（尾号{last4}）" if lang == "zh" else f"{name} (card ending {last4})"


class Binding(msgspec.Struct, frozen=True):
    """The transaction a code authorises."""

    user_id: str
    amount: Fen
    currency: str
    counterparty: Counterparty

    def digest(self, key: bytes) -> str:
        """Keyed hex digest of the bound values, stored with the challenge and hashed
        into the code: equal bindings give equal digests under one key."""
        kind, party, card = self.counterparty.key()
        fields = (self.user_id, str(self.amount), self.currency, kind, party, card)
        # Length-prefixed, so that no choice of ids can make two bindings collide.
        body = b"".join(len(f.encode()).to_bytes(4, "big") + f.encode() for f in fields)
        return hmac.new(key, b"otp-binding\x00" + body, hashlib.sha256).hexdigest()


class Context(msgspec.Struct, frozen=True):
    """Where a code was asked from, or presented from. `session` is a keyed digest of the
    session id (a session id may be a bearer secret, so it is never stored as given)."""

    device_id: str | None
    session: str | None
    ip: str | None


def session_digest(key: bytes, session_id: str | None) -> str | None:
    if session_id is None:
        return None
    return hmac.new(key, b"otp-session\x00" + session_id.encode(), hashlib.sha256).hexdigest()


def context_refusal(
    asked: Context, presented: Context, *, device: bool, session: bool, ip: bool
) -> str | None:
    """The verify result naming the first required part of the context that differs
    (`other_device`, `other_session`, `other_ip`), or None. A part the send did not carry
    is not compared (the service requires every enabled part at send time)."""
    checks = (
        (device, asked.device_id, presented.device_id, "other_device"),
        (session, asked.session, presented.session, "other_session"),
        (ip, asked.ip, presented.ip, "other_ip"),
    )
    for wanted, then, now, result in checks:
        if wanted and then is not None and not _same(then, now):
            return result
    return None


def _same(then: str, now: str | None) -> bool:
    return now is not None and hmac.compare_digest(then.encode(), now.encode())


def _short(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _last4(card: Card | None) -> str | None:
    return card.last4 if card is not None else None
