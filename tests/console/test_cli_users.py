"""`payguard users create` / `list`: a user with a role, audited; bad input exits 2
naming the field."""

from pathlib import Path

from typer.testing import CliRunner

from payguard.auth import AuditLog, UserStore
from payguard.cli.main import app

runner = CliRunner()


def _run(data: Path, *args: str, password: str = "") -> tuple[int, str]:
    done = runner.invoke(
        app, list(args), input=password + "\n", env={"PAYGUARD_DATA_DIR": str(data)}
    )
    return done.exit_code, done.output


def test_create_stores_the_user_and_audits_it(tmp_path: Path) -> None:
    code, _ = _run(tmp_path, "users", "create", "ana", "--role", "analyst", "--password-stdin",
                   password="a long password")  # fmt: skip
    assert code == 0
    users = UserStore(tmp_path / "auth.db")
    assert users.verify("ana", "a long password") is not None
    users.close()
    code, listed = _run(tmp_path, "users", "list")
    assert code == 0 and '"login":"ana","role":"analyst"' in listed
    log = AuditLog(tmp_path / "auth.db")
    assert [(e.action, e.target) for e in log.entries()] == [("user.create", "ana")]
    log.close()


def test_bad_input_exits_2_naming_the_field(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "users", "create", "ana", "--role", "boss", "--password-stdin",
                     password="a long password")  # fmt: skip
    assert code == 2 and "--role" in out and "analyst, lead, admin" in out
    code, out = _run(tmp_path, "users", "create", "ana", "--role", "lead", "--password-stdin",
                     password="short")  # fmt: skip
    assert code == 2 and "password" in out and "Traceback" not in out
    code, out = _run(tmp_path, "users", "create", "Not Valid", "--role", "lead",
                     "--password-stdin", password="a long password")  # fmt: skip
    assert code == 2 and "login" in out
