"""Helpers for the auth tests: mint keys in a test server's own key store."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from apiserver import Server

from payguard.auth import Scope


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def mint(server: Server, *scopes: Scope, **options: int) -> tuple[str, str]:
    """(key_id, secret) of a new key in the server's own key store."""
    new = server.access.create_key(
        scopes, name=f"test {'+'.join(scopes)}", actor="test", now_ms=now_ms(), **options
    )
    return new.key.key_id, new.secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
