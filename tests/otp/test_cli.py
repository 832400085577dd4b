"""`payguard otp send` / `payguard otp verify` on the embedded store, and bad input (exit 2,
one line naming the field)."""

import json
from pathlib import Path

import pytest
from otp_support import RULESET, code_in, wrong
from typer.testing import CliRunner

from payguard.cli.main import app
from payguard.config import load_settings
from payguard.otp import OUTBOX_FILE, read_outbox

SEND = ["--user", "u_cli", "--device", "dev_1", "--session", "s_1", "--amount", "300.00"]
VERIFY = ["--user", "u_cli", "--device", "dev_1", "--session", "s_1", "--amount", "300.00"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PAYGUARD_DATA_DIR": str(tmp_path), "PAYGUARD_RULESET": str(RULESET)}


def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["otp", *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def _last_code(tmp_path: Path) -> str:
    return code_in(read_outbox(tmp_path / OUTBOX_FILE)[-1].text)


def test_send_and_verify(env: dict[str, str], tmp_path: Path) -> None:
    code, out, err = _run(env, "send", *SEND, "--merchant", "m_1", "--merchant-name", "Shop")
    assert code == 0, err
    sent = json.loads(out)
    otp = _last_code(tmp_path)
    assert otp not in out
    assert "Shop" in read_outbox(tmp_path / OUTBOX_FILE)[-1].text
    assert str(tmp_path / OUTBOX_FILE) in err

    code, out, _ = _run(
        env, "verify", sent["challenge_id"], wrong(otp), *VERIFY, "--merchant", "m_1"
    )
    assert code == 1
    assert json.loads(out)["result"] == "wrong_code"
    code, out, _ = _run(env, "verify", sent["challenge_id"], otp, *VERIFY, "--merchant", "m_1")
    assert code == 0
    assert json.loads(out)["verified"] is True


def test_transfer_with_payee_card(env: dict[str, str], tmp_path: Path) -> None:
    payee = ["--payee", "p_1", "--payee-name", "Li", "--payee-card", "6222021234567890128"]
    code, out, err = _run(env, "send", *SEND, *payee, "--lang", "en")
    assert code == 0, err
    text = read_outbox(tmp_path / OUTBOX_FILE)[-1].text
    assert "Li (card ending 0128)" in text and "transfer" in text
    sent = json.loads(out)
    card = ["--payee", "p_1", "--payee-card", "6222021234567890128"]
    code, out, _ = _run(env, "verify", sent["challenge_id"], _last_code(tmp_path), *VERIFY, *card)
    assert code == 0, out


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["send", *SEND], "merchant"),
        (["send", *SEND, "--merchant", "m_1", "--currency", "cny"], "currency"),
        (["send", *SEND[:6], "--amount", "1.001", "--merchant", "m"], "amount"),
        (["send", *SEND, "--merchant", "m", "--phone", "12345"], "phone"),
        (["send", *SEND, "--merchant", "m", "--lang", "fr"], "lang"),
        (
            ["send", *SEND, "--payee", "p", "--payee-card", "4367421234567890123"],
            "payee.card.number",
        ),
        (["send", *SEND, "--merchant", "m", "--ref", "no-such-event"], "ref_event_id"),
        (["verify", "otp_x", "12345", *VERIFY, "--merchant", "m"], "code"),
        (["verify", "otp_x", "123456", *VERIFY, "--merchant", "m"], "challenge_id"),
    ],
)
def test_bad_input_exits_2_with_one_line(env: dict[str, str], args: list[str], field: str) -> None:
    code, out, err = _run(env, *args)
    assert code == 2
    assert out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {field}: ")
    assert "4367421234567890123" not in err


def test_settings_from_environment() -> None:
    settings = load_settings(
        env={
            "PAYGUARD_OTP_TTL_S": "120",
            "PAYGUARD_OTP_MAX_ATTEMPTS": "3",
            "PAYGUARD_OTP_SAME_DEVICE": "0",
            "PAYGUARD_OTP_SAME_SESSION": "false",
            "PAYGUARD_OTP_SAME_IP": "1",
            "PAYGUARD_OTP_OUTBOX": "/tmp/outbox.jsonl",
        }
    )
    assert settings.otp_ttl_s == 120
    assert settings.otp_max_attempts == 3
    assert (settings.otp_same_device, settings.otp_same_session, settings.otp_same_ip) == (
        False,
        False,
        True,
    )
    assert settings.otp_outbox == Path("/tmp/outbox.jsonl")
    defaults = load_settings(env={})
    assert (defaults.otp_ttl_s, defaults.otp_max_attempts) == (300, 5)
    assert (defaults.otp_same_device, defaults.otp_same_session, defaults.otp_same_ip) == (
        True,
        True,
        False,
    )
    with pytest.raises(ValueError, match="otp_ttl_s"):
        load_settings(env={"PAYGUARD_OTP_TTL_S": "0"})
