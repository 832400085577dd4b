"""`payguard keys` and `payguard audit` on a data directory."""

import csv
import io
import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from payguard.auth import AUTH_DB, Authenticator, SqliteKeyStore
from payguard.cli.main import app

runner = CliRunner()


def _run(data: Path, *args: str) -> tuple[int, str, str]:
    done = runner.invoke(app, list(args), env={"PAYGUARD_DATA_DIR": str(data)})
    return done.exit_code, done.stdout, done.stderr


def test_create_prints_the_secret_alone_on_the_last_line(tmp_path: Path) -> None:
    code, out, err = _run(
        tmp_path, "keys", "create", "--scope", "events:write", "--scope", "holds:write",
        "--name", "gateway", "--expires-days", "30",
    )  # fmt: skip
    assert code == 0, err
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("pg_live_") and " " not in secret
    store = SqliteKeyStore(tmp_path / AUTH_DB)
    key = Authenticator(store).authenticate(secret, store.all()[0].created_ms)
    assert (key.name, key.scopes) == ("gateway", ("events:write", "holds:write"))
    assert key.expires_ms == key.created_ms + 30 * 86_400_000
    store.close()

    code, listed, _ = _run(tmp_path, "keys", "list")
    assert code == 0
    row = json.loads(listed.strip())
    assert row["key_id"] == key.key_id and row["state"] == "active"
    hidden = secret.removeprefix(f"pg_live_{key.key_id}_")  # token_urlsafe may hold "_"
    assert len(hidden) >= 40 and hidden not in listed

    code, out, _ = _run(tmp_path, "keys", "revoke", key.key_id)
    assert code == 0 and json.loads(out)["revoked_ms"] > 0
    assert json.loads(_run(tmp_path, "keys", "list")[1])["state"] == "revoked"
    code, _, err = _run(tmp_path, "keys", "revoke", key.key_id)
    assert code == 2 and "already revoked" in err


def test_bad_input_exits_2_naming_it(tmp_path: Path) -> None:
    code, out, err = _run(tmp_path, "keys", "create", "--scope", "root")
    assert code == 2 and "--scope" in err and "unknown scope" in err and out == ""
    code, _, err = _run(tmp_path, "keys", "list")
    assert code == 2 and "no key store" in err
    _run(tmp_path, "keys", "create", "--scope", "admin")
    code, _, err = _run(tmp_path, "keys", "revoke", "nope")
    assert code == 2 and "no such key" in err
    code, _, err = _run(tmp_path, "audit", "export", "--format", "xml")
    assert code == 2 and "--format" in err


def test_key_changes_are_audited_exported_and_verified(tmp_path: Path) -> None:
    for scope in ("admin", "rules:admin"):
        _run(tmp_path, "keys", "create", "--scope", scope, "--name", f"n-{scope}")
    first = json.loads(_run(tmp_path, "keys", "list")[1].splitlines()[0])["key_id"]
    _run(tmp_path, "keys", "revoke", first)

    code, out, _ = _run(tmp_path, "audit", "export")
    entries = [json.loads(line) for line in out.splitlines()]
    assert [e["action"] for e in entries] == ["key.create", "key.create", "key.revoke"]
    assert entries[2]["target"] == first and entries[0]["actor"].startswith("cli:")
    assert "pg_live_" not in out

    code, out, _ = _run(tmp_path, "audit", "export", "--format", "csv", "--action", "key.revoke")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["target"] for r in rows] == [first]

    code, out, _ = _run(tmp_path, "audit", "verify")
    assert code == 0 and "3 entries" in out
    db = sqlite3.connect(tmp_path / AUTH_DB, isolation_level=None)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET actor = 'cli:someone-else' WHERE seq = 2")
    code, _, err = _run(tmp_path, "audit", "verify")
    assert code == 1 and "entry 2" in err
