"""otp_send and otp_verify go through the engine like any other event: rules see them, and
payguard's decision for an otp_send can stop the code from going out."""

import pytest
from otp_support import T0, FakeClock, decide, last_code, recorded, send, verify, wrong

from payguard.engine import Engine
from payguard.otp import MemoryOutbox, OtpError, OtpService


def test_failed_codes_reach_the_features_of_a_later_payment(
    otp: OtpService, engine: Engine, clock: FakeClock
) -> None:
    sent = send(otp)
    code = last_code(otp)
    for _ in range(5):
        verify(otp, sent.challenge_id, wrong(code))
    clock.advance(60)
    decision = decide(
        engine,
        "pay-after-fails",
        "payment",
        "u_1",
        clock.now,
        device_id="dev_1",
        amount="20.00",
        merchant={"id": "m_1"},
    )
    assert decision.features != {}
    assert isinstance(decision.features, dict)
    assert decision.features["count_otp_fail_by_user_1h"] == 5
    assert decision.action == "review"
    assert [r.code for r in decision.reasons] == ["otp_failures_money_out"]


def test_refusals_count_as_failures_and_passes_as_passes(
    otp: OtpService, engine: Engine, clock: FakeClock
) -> None:
    sent = send(otp)
    verify(otp, sent.challenge_id, last_code(otp), device_id="dev_caller")  # other_device
    sent = send(otp, amount="5.00")
    assert verify(otp, sent.challenge_id, last_code(otp), amount="5.00").verified
    clock.advance(1)
    probe = engine.features.snapshot(
        engine.decoder.decode(
            b'{"event_id": "probe", "type": "payment", "ts": %d, "user_id": "u_1", "amount": "1"}'
            % clock.now
        ),
        engine.features.plan({"count_otp_fail_by_user_1h", "count_otp_ok_by_user_1h"}),
    )
    assert probe == {"count_otp_fail_by_user_1h": 1, "count_otp_ok_by_user_1h": 1}


def test_otp_verify_event_shape(otp: OtpService, engine: Engine) -> None:
    sent = send(otp)
    result = verify(otp, sent.challenge_id, last_code(otp), ip="10.7.7.7")
    event = recorded(engine, result.event_id)
    assert event.type == "otp_verify"
    assert (event.user_id, event.device_id, event.ip, event.method) == (
        "u_1",
        "dev_1",
        "10.7.7.7",
        "sms",
    )
    assert event.success is True
    assert event.ref_event_id == sent.event_id
    assert event.ts == T0
    assert event.attrs == {
        "challenge_id": sent.challenge_id,
        "result": "ok",
        "attempt": 1,
        "purpose": "payment",
    }
    assert result.decision.event_id == result.event_id
    assert engine.stored_decision(result.event_id) is not None


def test_decision_on_otp_send_can_refuse_the_code(otp: OtpService, engine: Engine) -> None:
    """The test ruleset reviews a fourth code asked for within the hour: no code then."""
    for _ in range(3):
        send(otp)
    assert isinstance(otp.delivery, MemoryOutbox)
    delivered = len(otp.delivery.sent)
    with pytest.raises(OtpError) as refused:
        send(otp)
    error = refused.value
    assert (error.status, error.error, error.field) == (409, "otp_refused", "$")
    assert "review" in error.reason and "otp_send_burst" in error.reason
    assert len(otp.delivery.sent) == delivered  # nothing went out
    assert error.event_id is not None
    stored = engine.stored_decision(error.event_id)  # the request itself was recorded
    assert stored is not None and stored.action == "review"
    assert otp.store.get(error.event_id.removesuffix("-send")) is None


def test_rules_see_a_code_relayed_to_another_device(otp: OtpService, engine: Engine) -> None:
    """The fake-customer-service pattern: the victim reads the code out, the caller types
    it on their own device. The refusal is recorded and a rule reading its attrs fires."""
    sent = send(otp)
    relayed = verify(otp, sent.challenge_id, last_code(otp), device_id="dev_caller")
    assert (relayed.verified, relayed.result) == (False, "other_device")
    assert relayed.decision.action == "review"
    assert [r.code for r in relayed.decision.reasons] == ["code_relayed_to_caller"]
    # a wrong code from the other device is refused the same way, but the rule stays quiet
    sent = send(otp, amount="9.00")
    guessed = verify(
        otp, sent.challenge_id, wrong(last_code(otp)), amount="9.00", device_id="dev_caller"
    )
    assert guessed.result == "other_device"
    assert guessed.decision.action == "allow"
    assert recorded(engine, guessed.event_id).attrs["code_matched"] is False
