"""Webhook signatures, in Stripe's shape: `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`.

Each `v1` is HMAC-SHA256, keyed with one active secret, over the bytes
`"{t}." + body`. Signing with every active secret lets an operator rotate: add the new
secret (newest first), let receivers switch to it, then drop the old one; a receiver
accepts a delivery if any `v1` matches any secret it holds. The timestamp is part of what
is signed, so a receiver that also checks it is recent (`tolerance_s`) refuses a captured
request replayed later.

>>> header = sign(b'{"id":"whd_1"}', ["0123456789abcdef"], timestamp_s=1_767_225_600)
>>> header.startswith("t=1767225600,v1=")
True
>>> verify(b'{"id":"whd_1"}', header, ["0123456789abcdef"], now_s=1_767_225_700)
1767225600
"""

import hashlib
import hmac
from collections.abc import Sequence

SIGNATURE_HEADER = "Payguard-Signature"
DEFAULT_TOLERANCE_S = 300
"""Five minutes, as Stripe: wide enough for clock skew and a slow network."""


class SignatureError(ValueError):
    """A delivery's signature header is missing, malformed, stale or matches no secret."""


def signature(body: bytes, secret: str, timestamp_s: int) -> str:
    """The hex HMAC-SHA256 of `"{timestamp_s}." + body` under one secret."""
    message = f"{timestamp_s}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: Sequence[str], *, timestamp_s: int) -> str:
    """The `Payguard-Signature` header value: the time, then one `v1` per secret."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign a webhook")
    signatures = ",".join(f"v1={signature(body, s, timestamp_s)}" for s in secrets)
    return f"t={timestamp_s},{signatures}"


def verify(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now_s: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> int:
    """Check a delivery as a receiver should; returns its signed timestamp.

    `body` must be the raw bytes received (not re-encoded JSON). Raises SignatureError
    when the header is missing or malformed, when `t` is more than `tolerance_s` from
    `now_s` either way, or when no `v1` matches any of `secrets` (compared in constant
    time). Unknown schemes (`v0=`, a future `v2=`) are ignored."""
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed {SIGNATURE_HEADER} item {item.strip()[:20]!r}")
        if key == "t":
            if not value.isdigit():
                raise SignatureError(f"timestamp {value[:20]!r} is not whole seconds")
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None:
        raise SignatureError("no timestamp (t=) in the signature header")
    if not candidates:
        raise SignatureError("no v1 signature in the signature header")
    if abs(now_s - timestamp) > tolerance_s:
        raise SignatureError(
            f"timestamp {timestamp} is {abs(now_s - timestamp)} s from now "
            f"(tolerance {tolerance_s} s)"
        )
    expected = [signature(body, secret, timestamp) for secret in secrets]
    matched = False
    for candidate in candidates:
        for good in expected:
            matched |= hmac.compare_digest(candidate, good)
    if not matched:
        raise SignatureError("no v1 signature matches a known secret")
    return timestamp
