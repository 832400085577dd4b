"""Dynamic linking: a code is bound to the user, amount, currency, payee and the context
(device, session; IP when configured) that asked for it; any change refuses it, kills the
challenge and is recorded."""

from typing import Any

import msgspec
import pytest
from otp_support import (
    Codes,
    FakeClock,
    last_code,
    memory_engine,
    recorded,
    send,
    service,
    settings,
    verify,
)

from payguard.engine import Engine
from payguard.otp import OtpService

PAN = "6222021234567890128"
OTHER_PAN = "6228480000000000018"


@pytest.mark.parametrize(
    ("change", "result"),
    [
        ({"amount": "300.01"}, "binding_changed"),
        ({"amount": "3000.00"}, "binding_changed"),
        ({"currency": "USD"}, "binding_changed"),
        ({"merchant": {"id": "m_2"}}, "binding_changed"),
        ({"merchant": None, "payee": {"id": "m_1"}}, "binding_changed"),
        ({"user_id": "u_2"}, "binding_changed"),
        ({"device_id": "dev_attacker"}, "other_device"),
        ({"device_id": None}, "other_device"),
        ({"session_id": "sess_2"}, "other_session"),
        ({"session_id": None}, "other_session"),
    ],
)
def test_any_change_refuses_the_right_code_and_kills_it(
    otp: OtpService, engine: Engine, change: dict[str, Any], result: str
) -> None:
    sent = send(otp)
    code = last_code(otp)
    refused = verify(otp, sent.challenge_id, code, **change)
    assert (refused.verified, refused.result, refused.attempts_left) == (False, result, 0)
    # the challenge is dead: even the exact original transaction cannot use it now
    again = verify(otp, sent.challenge_id, code)
    assert (again.verified, again.result) == (False, "invalidated")
    # the refusal was recorded as a failed otp_verify, with the right code noted
    attempt = recorded(engine, refused.event_id)
    assert attempt.type == "otp_verify"
    assert attempt.success is False
    assert attempt.ref_event_id == sent.event_id
    assert attempt.user_id == "u_1"  # the account whose code it was
    assert attempt.attrs["result"] == result
    assert attempt.attrs["code_matched"] is True


def test_exact_binding_verifies(otp: OtpService) -> None:
    sent = send(otp)
    ok = verify(otp, sent.challenge_id, last_code(otp))
    assert (ok.verified, ok.result) == (True, "ok")


def test_amount_spelling_does_not_matter_only_its_value(otp: OtpService) -> None:
    sent = send(otp, amount="300")
    ok = verify(otp, sent.challenge_id, last_code(otp), amount=300.0)
    assert ok.verified


def test_payee_binding_includes_its_card(otp: OtpService) -> None:
    payee = {"id": "p_9", "name": "张三", "card": {"number": PAN}}
    sent = send(otp, merchant=None, payee=payee, purpose="transfer")
    code = last_code(otp)
    other_card = {"id": "p_9", "card": {"number": OTHER_PAN}}
    refused = verify(otp, sent.challenge_id, code, merchant=None, payee=other_card)
    assert refused.result == "binding_changed"

    sent = send(otp, merchant=None, payee=payee)
    same = {"id": "p_9", "card": {"number": PAN.replace("6222", "6222 ")}}  # name not bound
    ok = verify(otp, sent.challenge_id, last_code(otp), merchant=None, payee=same)
    assert ok.verified


def test_wrong_code_for_a_changed_binding_is_still_binding_changed(otp: OtpService) -> None:
    """The binding is judged before the code: a wrong code for another amount kills the
    challenge too (it is not counted as one of the allowed failures)."""
    sent = send(otp)
    code = last_code(otp)
    refused = verify(otp, sent.challenge_id, "000000" if code != "000000" else "111111", amount="1")
    assert refused.result == "binding_changed"
    assert verify(otp, sent.challenge_id, code).result == "invalidated"


def test_ip_change_is_allowed_by_default(otp: OtpService) -> None:
    """Mobile IPs change between networks, so the IP check is off unless configured."""
    sent = send(otp)
    ok = verify(otp, sent.challenge_id, last_code(otp), ip="10.9.9.9")
    assert ok.verified


def test_ip_binding_when_configured(clock: FakeClock) -> None:
    engine = memory_engine(settings(otp_same_ip=True))
    otp = service(engine, clock)
    sent = send(otp)
    refused = verify(otp, sent.challenge_id, last_code(otp), ip="10.9.9.9")
    assert refused.result == "other_ip"
    with pytest.raises(Exception) as missing:
        send(otp, ip=None)
    assert getattr(missing.value, "field", None) == "ip"
    engine.close()


def test_device_and_session_checks_can_be_switched_off(clock: FakeClock) -> None:
    engine = memory_engine(settings(otp_same_device=False, otp_same_session=False))
    otp = service(engine, clock, Codes("123456"))
    sent = send(otp, device_id=None, session_id=None)  # not required any more
    ok = verify(otp, sent.challenge_id, "123456", device_id="elsewhere", session_id="other")
    assert ok.verified
    # the transaction binding is never optional
    sent = send(otp)
    assert verify(otp, sent.challenge_id, last_code(otp), amount="1.00").result == (
        "binding_changed"
    )
    engine.close()


def test_device_and_session_required_at_send_while_checked(otp: OtpService) -> None:
    from payguard.otp import OtpError

    for field in ("device_id", "session_id"):
        with pytest.raises(OtpError) as refused:
            send(otp, **{field: None})
        assert (refused.value.status, refused.value.field) == (422, field)


def test_send_binds_what_the_event_records(otp: OtpService, engine: Engine) -> None:
    sent = send(otp, phone="+8613800138000")
    event = recorded(engine, sent.event_id)
    assert event.type == "otp_send"
    assert (event.user_id, event.device_id, event.ip, event.channel) == (
        "u_1",
        "dev_1",
        "10.0.0.1",
        "app",
    )
    assert (event.amount, event.currency, event.method) == (30000, "CNY", "sms")
    assert event.merchant is not None and event.merchant.id == "m_1"
    assert event.phone is not None and event.phone.startswith("tel_")
    assert event.attrs["challenge_id"] == sent.challenge_id
    assert event.attrs["purpose"] == "payment"
    assert msgspec.json.encode(event).find(b"13800138000") == -1
