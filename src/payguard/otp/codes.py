"""One-time codes: generated at random, stored only as a keyed hash, compared in constant time.

A six-digit code has only a million values, so a plain hash would be reversed by trying
them all; the hash is keyed with the deployment's secret (`Settings.token_key`), so the
OTP store alone reveals nothing. The challenge id and the binding digest are hashed in
too: a code is only ever valid for its own challenge and its own transaction.
"""

import hashlib
import hmac
import secrets

CODE_DIGITS = 6


def new_code() -> str:
    """A uniformly random code of `CODE_DIGITS` decimal digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_challenge_id() -> str:
    """An unguessable challenge id (128 random bits)."""
    return "otp_" + secrets.token_hex(16)


def code_hash(key: bytes, challenge_id: str, binding_digest: str, code: str) -> bytes:
    """HMAC-SHA256 over challenge id, binding digest and code (NUL-separated)."""
    message = b"\x00".join(
        (b"otp-code", challenge_id.encode(), binding_digest.encode(), code.encode())
    )
    return hmac.new(key, message, hashlib.sha256).digest()


def code_matches(
    key: bytes, challenge_id: str, binding_digest: str, code: str, stored: bytes
) -> bool:
    """Whether `code` is the one hashed into `stored`, in constant time: how long the
    comparison takes says nothing about how many leading bytes were right."""
    return hmac.compare_digest(code_hash(key, challenge_id, binding_digest, code), stored)
