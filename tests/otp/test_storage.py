"""Codes are stored hashed only (keyed), compared in constant time, and never appear in
the OTP store, the engine's log, the logs or the answers; only the outbox (the phone's
stand-in) carries them."""

import hashlib
import hmac
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from otp_support import Codes, FakeClock, send, settings, verify, wrong

from payguard.engine import Engine
from payguard.otp import OTP_DATABASE_FILE, OUTBOX_FILE, JsonlOutbox, OtpService, read_outbox
from payguard.otp.codes import code_hash

# Codes chosen not to occur by chance in timestamps, amounts or ids of this test.
CODES = ("918273", "564738", "102938", "475869")
SESSION = "sess-secret-7c1f9b"


@pytest.fixture
def durable(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[Engine, OtpService]]:
    engine = Engine.open(settings(tmp_path))
    otp = OtpService.for_engine(engine, clock=clock, codes=Codes(*CODES))
    try:
        yield engine, otp
    finally:
        otp.close()
        engine.close()


def _bytes(directory: Path, name: str) -> bytes:
    """A SQLite database with its WAL and shared memory: everything on disk for it."""
    return b"".join(
        path.read_bytes()
        for suffix in ("", "-wal", "-shm", "-journal")
        if (path := directory / f"{name}{suffix}").exists()
    )


def test_codes_never_on_disk_outside_the_outbox(
    tmp_path: Path, durable: tuple[Engine, OtpService], caplog: pytest.LogCaptureFixture
) -> None:
    engine, otp = durable
    caplog.set_level(logging.DEBUG)
    answers: list[bytes] = []
    first = send(otp, session_id=SESSION)
    answers.append(msgspec.json.encode(first))
    answers.append(msgspec.json.encode(verify(otp, first.challenge_id, wrong(CODES[0]))))
    answers.append(
        msgspec.json.encode(verify(otp, first.challenge_id, CODES[0], session_id=SESSION))
    )
    second = send(otp, amount="42.00")
    answers.append(msgspec.json.encode(second))
    answers.append(
        msgspec.json.encode(verify(otp, second.challenge_id, CODES[1], device_id="dev_x"))
    )
    third = send(otp, lang="en", amount="7.00")
    answers.append(msgspec.json.encode(third))
    engine.flush()

    assert isinstance(otp.delivery, JsonlOutbox)
    assert otp.delivery.path == tmp_path / OUTBOX_FILE
    outbox = (tmp_path / OUTBOX_FILE).read_bytes()
    otp_db = _bytes(tmp_path, OTP_DATABASE_FILE)
    engine_db = _bytes(tmp_path, "payguard.db")
    assert otp_db and engine_db
    for code in CODES[:3]:
        assert code.encode() in outbox  # the search works: the phone did get it
        assert code.encode() not in otp_db
        assert code.encode() not in engine_db
        assert all(code.encode() not in answer for answer in answers)
        assert code not in caplog.text
    # the session id is a bearer secret: only its keyed digest is stored
    assert SESSION.encode() not in otp_db
    assert SESSION.encode() not in engine_db
    assert [m.challenge_id for m in read_outbox(tmp_path / OUTBOX_FILE)] == [
        first.challenge_id,
        second.challenge_id,
        third.challenge_id,
    ]


def test_outbox_holds_tokens_never_the_phone_number(
    tmp_path: Path, durable: tuple[Engine, OtpService]
) -> None:
    _, otp = durable
    send(otp, phone="+8613800138000")
    (message,) = read_outbox(tmp_path / OUTBOX_FILE)
    assert message.user_id == "u_1"
    assert message.phone_token is not None and message.phone_token.startswith("tel_")
    assert b"13800138000" not in (tmp_path / OUTBOX_FILE).read_bytes()
    assert b"13800138000" not in _bytes(tmp_path, OTP_DATABASE_FILE)


def test_stored_hash_is_keyed_hmac_over_challenge_binding_and_code(
    durable: tuple[Engine, OtpService],
) -> None:
    engine, otp = durable
    sent = send(otp)
    stored = otp.store.get(sent.challenge_id)
    assert stored is not None
    key = engine.settings.token_key.encode()
    message = b"\x00".join(
        (b"otp-code", sent.challenge_id.encode(), stored.binding_digest.encode(), CODES[0].encode())
    )
    assert stored.code_hash == hmac.new(key, message, hashlib.sha256).digest()
    assert stored.code_hash == code_hash(key, sent.challenge_id, stored.binding_digest, CODES[0])
    # without the key, hashing every possible code does not find it
    unkeyed = {hashlib.sha256(f"{c:06d}".encode()).digest() for c in range(0, 1_000_000, 997)}
    assert stored.code_hash not in unkeyed
    assert code_hash(
        b"another-key-0123456789", sent.challenge_id, stored.binding_digest, CODES[0]
    ) != (stored.code_hash)


def test_comparison_is_constant_time(otp: OtpService, monkeypatch: pytest.MonkeyPatch) -> None:
    """The code check goes through hmac.compare_digest with the stored hash."""
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    sent = send(otp)
    stored = otp.store.get(sent.challenge_id)
    assert stored is not None
    monkeypatch.setattr(hmac, "compare_digest", spy)
    from otp_support import last_code

    assert verify(otp, sent.challenge_id, last_code(otp)).verified
    assert any(stored.code_hash in pair for pair in calls)
    calls.clear()
    sent = send(otp)
    stored = otp.store.get(sent.challenge_id)
    assert stored is not None
    assert verify(otp, sent.challenge_id, wrong(last_code(otp))).result == "wrong_code"
    assert any(stored.code_hash in pair for pair in calls)
