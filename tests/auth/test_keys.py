"""Keys: stored only as hashes, authenticated by state, revocation seen across processes."""

import sqlite3
from pathlib import Path

import pytest

from payguard.auth import (
    AUTH_DB,
    ApiKey,
    Authenticator,
    AuthRefused,
    KeyChangeError,
    SqliteKeyStore,
    create_key,
    hash_secret,
)

NOW = 1_765_000_000_000


def test_the_secret_is_never_stored_only_its_hash(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / AUTH_DB)
    new = create_key(store, ["events:write"], name="gateway", now_ms=NOW)
    store.close()
    assert new.secret.startswith(f"pg_live_{new.key.key_id}_")
    assert len(new.secret) > 50
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    secret_part = new.secret.rsplit("_", 1)[1].encode()
    assert secret_part not in raw
    rows = (
        sqlite3.connect(tmp_path / AUTH_DB).execute("SELECT secret_hash FROM api_keys").fetchall()
    )
    assert rows == [(hash_secret(new.secret),)]


def test_authenticate_names_why_a_secret_is_refused(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / AUTH_DB)
    live = create_key(store, ["decisions:read"], name="analyst", now_ms=NOW)
    soon = create_key(store, ["admin"], name="temp", now_ms=NOW, expires_ms=NOW + 1000)
    auth = Authenticator(store)
    assert auth.authenticate(live.secret, NOW).key_id == live.key.key_id
    assert auth.authenticate(soon.secret, NOW + 999).key_id == soon.key.key_id
    cases = {
        None: "missing",
        "": "missing",
        "Basic abc": "malformed",
        live.secret + "x": "unknown",
        live.secret[:-1]: "unknown",
    }
    for secret, reason in cases.items():
        with pytest.raises(AuthRefused) as caught:
            auth.authenticate(secret, NOW)
        assert caught.value.reason == reason, secret
    with pytest.raises(AuthRefused, match="expired"):
        auth.authenticate(soon.secret, NOW + 1000)
    store.revoke(live.key.key_id, NOW + 5)
    with pytest.raises(AuthRefused, match="revoked"):
        auth.authenticate(live.secret, NOW + 6)


def test_a_revocation_by_another_connection_is_seen_on_the_next_request(tmp_path: Path) -> None:
    server_side = SqliteKeyStore(tmp_path / AUTH_DB)
    new = create_key(server_side, ["events:write"], name="gw", now_ms=NOW)
    auth = Authenticator(server_side)
    assert auth.authenticate(new.secret, NOW).name == "gw"
    cli_side = SqliteKeyStore(tmp_path / AUTH_DB)  # `payguard keys revoke` in its own process
    cli_side.revoke(new.key.key_id, NOW + 1)
    later = create_key(cli_side, ["admin"], name="later", now_ms=NOW + 2)
    cli_side.close()
    with pytest.raises(AuthRefused, match="revoked"):
        auth.authenticate(new.secret, NOW + 3)
    assert auth.authenticate(later.secret, NOW + 3).name == "later"


def test_bad_key_changes_are_refused_by_name(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / AUTH_DB)
    with pytest.raises(ValueError, match="scope"):
        create_key(store, [], name="x", now_ms=NOW)
    with pytest.raises(ValueError, match="expires"):
        create_key(store, ["admin"], name="x", now_ms=NOW, expires_ms=NOW)
    with pytest.raises(KeyChangeError, match="no such key"):
        store.revoke("nope", NOW)
    new = create_key(store, ["admin"], name="x", now_ms=NOW)
    store.revoke(new.key.key_id, NOW)
    with pytest.raises(KeyChangeError, match="already revoked"):
        store.revoke(new.key.key_id, NOW)
    assert [k.state(NOW) for k in store.all()] == ["revoked"]


def test_extra_keys_live_only_in_memory(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / AUTH_DB)
    dev = ApiKey("devk0001", "development admin", ("admin",), NOW)
    from payguard.auth import NewKey

    auth = Authenticator(store, [NewKey(dev, "pg_dev_devk0001_secret")])
    assert auth.authenticate("pg_dev_devk0001_secret", NOW).key_id == "devk0001"
    assert store.all() == []
