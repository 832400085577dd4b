"""Console users (scrypt-hashed passwords, roles onto scopes) and signed sessions."""

import hashlib
import sqlite3
from pathlib import Path

import pytest

from payguard.auth import ROLE_SCOPES, UserError, UserStore, grants
from payguard.auth.users import password_hash
from payguard.console.session import SESSION_MS, Signer, load_secret

NOW = 1_800_000_000_000


@pytest.fixture
def users(tmp_path: Path) -> UserStore:
    store = UserStore(tmp_path / "auth.db")
    yield store
    store.close()


def test_password_is_stored_only_as_a_salted_scrypt_hash(users: UserStore, tmp_path: Path) -> None:
    users.create("ana", "analyst", "correct horse battery", now_ms=NOW)
    users.create("bo", "analyst", "correct horse battery", now_ms=NOW)
    rows = sqlite3.connect(tmp_path / "auth.db").execute("SELECT salt, hash FROM users").fetchall()
    assert len({bytes(salt) for salt, _ in rows}) == 2, "each user has their own salt"
    for salt, digest in rows:
        assert b"correct horse" not in bytes(digest)
        assert bytes(digest) == password_hash("correct horse battery", bytes(salt))
        assert bytes(digest) != hashlib.sha256(b"correct horse battery").digest()


def test_verify_accepts_only_the_right_password(users: UserStore) -> None:
    users.create("ana", "lead", "correct horse battery", now_ms=NOW)
    user = users.verify("ana", "correct horse battery")
    assert user is not None and user.role == "lead"
    assert users.verify("ana", "correct horse batterY") is None
    assert users.verify("nobody", "correct horse battery") is None


@pytest.mark.parametrize(
    ("login", "password", "field"),
    [
        ("Ana", "long enough pw", "login"),
        ("a", "long enough pw", "login"),
        ("ana", "short", "password"),
    ],
)
def test_bad_input_names_the_field(users: UserStore, login: str, password: str, field: str) -> None:
    with pytest.raises(UserError) as caught:
        users.create(login, "analyst", password, now_ms=NOW)
    assert caught.value.field == field


def test_a_login_is_taken_once(users: UserStore) -> None:
    users.create("ana", "analyst", "long enough pw", now_ms=NOW)
    with pytest.raises(UserError, match="already exists"):
        users.create("ana", "admin", "long enough pw", now_ms=NOW)


def test_roles_map_onto_scopes() -> None:
    assert grants(ROLE_SCOPES["analyst"], "holds:write")
    assert grants(ROLE_SCOPES["analyst"], "cases:write")
    assert not grants(ROLE_SCOPES["analyst"], "rules:admin")
    assert grants(ROLE_SCOPES["lead"], "rules:admin")
    assert not grants(ROLE_SCOPES["lead"], "admin")
    assert grants(ROLE_SCOPES["admin"], "anything:at_all")


def test_session_round_trip_and_tampering(tmp_path: Path) -> None:
    signer = Signer(load_secret(tmp_path))
    session, cookie = signer.issue("ana.b", "analyst", NOW)
    assert signer.read(cookie, NOW + 1) == session
    assert signer.read(cookie, NOW + SESSION_MS) is None, "expired"
    promoted = cookie.replace(".analyst.", ".admin.")
    assert signer.read(promoted, NOW + 1) is None, "a changed role breaks the signature"
    assert signer.read(cookie[:-1] + ("0" if cookie[-1] != "0" else "1"), NOW) is None
    other = Signer(load_secret(tmp_path / "elsewhere"))
    assert other.read(cookie, NOW + 1) is None, "another console's key does not accept it"


def test_csrf_token_belongs_to_one_session(tmp_path: Path) -> None:
    signer = Signer(load_secret(tmp_path))
    first, _ = signer.issue("ana", "analyst", NOW)
    second, _ = signer.issue("ana", "analyst", NOW)
    assert signer.csrf_ok(first, signer.csrf_token(first))
    assert not signer.csrf_ok(first, signer.csrf_token(second))
    assert not signer.csrf_ok(first, None)


def test_the_secret_is_kept_private(tmp_path: Path) -> None:
    key = load_secret(tmp_path)
    assert load_secret(tmp_path) == key, "made once, then read back"
    assert (tmp_path / "console.key").stat().st_mode & 0o077 == 0
