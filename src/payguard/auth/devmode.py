"""Development mode (`PAYGUARD_DEV=1`): what it allows, and the start-up check without it.

Outside development mode the server refuses to start when `PAYGUARD_TOKEN_KEY` is the
public development key or shorter than 32 bytes: with a known or short key, card, ID and
phone tokens reverse by brute force in seconds (issue 14, failure 5). In development mode
the development key is allowed, and the server also accepts a development admin key,
made fresh at each start, held only in memory and printed in a banner — never in
production, where there is no development mode. `PAYGUARD_DEV_ADMIN=0` turns that key
off while keeping the rest of development mode.
"""

from collections.abc import Mapping
from typing import Final

from payguard.auth.keys import DEV_SECRET_PREFIX, ApiKey, NewKey, new_secret
from payguard.types import EpochMs

DEV_ENV: Final = "PAYGUARD_DEV"
DEV_ADMIN_ENV: Final = "PAYGUARD_DEV_ADMIN"
MIN_TOKEN_KEY_BYTES: Final = 32
_ON: Final = frozenset({"1", "true", "yes", "on"})


class StartupRefused(Exception):
    """The server must not start; the message is the one line to print (exit 2)."""


def dev_mode(environ: Mapping[str, str]) -> bool:
    return environ.get(DEV_ENV, "").strip().lower() in _ON


def check_token_key(token_key: str, *, is_dev_key: bool, dev: bool) -> None:
    """StartupRefused naming PAYGUARD_TOKEN_KEY unless the key is fit for production (or
    development mode is on)."""
    if dev:
        return
    if is_dev_key:
        raise StartupRefused(
            "PAYGUARD_TOKEN_KEY is the public development key: set a secret of at least "
            f"{MIN_TOKEN_KEY_BYTES} bytes (or PAYGUARD_DEV=1 for development only)"
        )
    if len(token_key.encode()) < MIN_TOKEN_KEY_BYTES:
        raise StartupRefused(
            f"PAYGUARD_TOKEN_KEY is {len(token_key.encode())} bytes: at least "
            f"{MIN_TOKEN_KEY_BYTES} are needed (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`)"
        )


def dev_admin_key(environ: Mapping[str, str], now_ms: EpochMs) -> NewKey | None:
    """A fresh in-memory admin key in development mode (unless PAYGUARD_DEV_ADMIN=0)."""
    if not dev_mode(environ) or environ.get(DEV_ADMIN_ENV, "1").strip().lower() not in _ON:
        return None
    key_id, secret = new_secret(DEV_SECRET_PREFIX)
    return NewKey(ApiKey(key_id, "development admin", ("admin",), now_ms), secret)


def banner(dev_admin: NewKey | None, uses_dev_token_key: bool) -> str:
    """The loud start-up notice of development mode."""
    rule = "!" * 78
    lines = [rule, "!! DEVELOPMENT MODE (PAYGUARD_DEV=1): not for production"]
    if uses_dev_token_key:
        lines.append("!! tokens use the PUBLIC development key: they can be reversed")
    if dev_admin is not None:
        lines.append("!! development admin key (this run only, all scopes):")
        lines.append(f"!!   Authorization: Bearer {dev_admin.secret}")
    lines.append(rule)
    return "\n".join(lines)
