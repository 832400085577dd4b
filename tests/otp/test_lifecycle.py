"""Expiry, single use, the attempt limit, supersession and delivery failure."""

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
    wrong,
)

from payguard.engine import Engine
from payguard.otp import MemoryOutbox, OtpError, OtpService, OutboundMessage
from payguard.otp.delivery import DeliveryError


def test_code_expires_after_five_minutes_by_default(otp: OtpService, clock: FakeClock) -> None:
    sent = send(otp)
    assert sent.expires_at == clock.now + 300_000
    code = last_code(otp)
    clock.advance(299.999)
    assert verify(otp, sent.challenge_id, wrong(code)).result == "wrong_code"  # still live
    clock.advance(0.001)  # exactly at expiry
    late = verify(otp, sent.challenge_id, code)
    assert (late.verified, late.result, late.attempts_left) == (False, "expired", 0)
    clock.advance(-60)  # the clock going back does not revive it
    assert verify(otp, sent.challenge_id, code).result == "expired"


def test_code_just_before_expiry_verifies(otp: OtpService, clock: FakeClock) -> None:
    sent = send(otp)
    clock.advance(299.999)
    assert verify(otp, sent.challenge_id, last_code(otp)).verified


def test_ttl_is_configurable(clock: FakeClock) -> None:
    engine = memory_engine(settings(otp_ttl_s=60))
    otp = service(engine, clock)
    sent = send(otp)
    assert sent.expires_at == clock.now + 60_000
    clock.advance(60)
    assert verify(otp, sent.challenge_id, last_code(otp)).result == "expired"
    engine.close()


def test_single_use(otp: OtpService, engine: Engine) -> None:
    sent = send(otp)
    code = last_code(otp)
    first = verify(otp, sent.challenge_id, code)
    second = verify(otp, sent.challenge_id, code)
    assert (first.verified, first.result) == (True, "ok")
    assert (second.verified, second.result, second.attempts_left) == (False, "used", 0)
    assert recorded(engine, first.event_id).success is True
    replay = recorded(engine, second.event_id)
    assert (replay.success, replay.attrs["result"]) == (False, "used")


def test_four_failures_leave_one_more_try(otp: OtpService) -> None:
    sent = send(otp)
    code = last_code(otp)
    left = [verify(otp, sent.challenge_id, wrong(code)).attempts_left for _ in range(4)]
    assert left == [4, 3, 2, 1]
    assert verify(otp, sent.challenge_id, code).verified


def test_five_failures_kill_the_code_and_are_recorded(otp: OtpService, engine: Engine) -> None:
    sent = send(otp)
    code = last_code(otp)
    attempts = [verify(otp, sent.challenge_id, wrong(code)) for _ in range(5)]
    assert [a.result for a in attempts] == ["wrong_code"] * 5
    assert attempts[-1].attempts_left == 0
    killing = recorded(engine, attempts[-1].event_id)
    assert killing.type == "otp_verify"
    assert killing.success is False
    assert killing.attrs["locked"] is True
    assert all("locked" not in recorded(engine, a.event_id).attrs for a in attempts[:-1])
    # dead: the right code no longer passes, and that attempt is recorded too
    after = verify(otp, sent.challenge_id, code)
    assert (after.verified, after.result, after.attempts_left) == (False, "locked", 0)
    assert recorded(engine, after.event_id).attrs["result"] == "locked"
    assert otp.store.get(sent.challenge_id) is not None
    assert otp.store.get(sent.challenge_id).state == "locked"  # type: ignore[union-attr]


def test_attempt_limit_is_configurable(clock: FakeClock) -> None:
    engine = memory_engine(settings(otp_max_attempts=2))
    otp = service(engine, clock)
    sent = send(otp)
    code = last_code(otp)
    assert verify(otp, sent.challenge_id, wrong(code)).attempts_left == 1
    assert verify(otp, sent.challenge_id, wrong(code)).attempts_left == 0
    assert verify(otp, sent.challenge_id, code).result == "locked"
    engine.close()


def test_a_new_code_for_the_same_transaction_supersedes_the_old(otp: OtpService) -> None:
    first = send(otp)
    old = last_code(otp)
    second = send(otp)
    new = last_code(otp)
    assert verify(otp, first.challenge_id, old).result == "superseded"
    assert verify(otp, second.challenge_id, new).verified


def test_codes_for_different_transactions_live_side_by_side(otp: OtpService) -> None:
    first = send(otp)
    old = last_code(otp)
    second = send(otp, amount="88.00")
    assert verify(otp, second.challenge_id, last_code(otp), amount="88.00").verified
    assert verify(otp, first.challenge_id, old).verified


def test_a_code_only_opens_its_own_challenge(engine: Engine, clock: FakeClock) -> None:
    otp = service(engine, clock, Codes("111111", "222222"))
    first = send(otp)
    send(otp, amount="88.00")
    assert verify(otp, first.challenge_id, "222222").result == "wrong_code"
    assert verify(otp, first.challenge_id, "111111").verified


def test_unknown_challenge_is_404(otp: OtpService) -> None:
    with pytest.raises(OtpError) as missing:
        verify(otp, "otp_nope", "123456")
    assert (missing.value.status, missing.value.field) == (404, "challenge_id")


class _Broken:
    name = "broken-gateway"

    def deliver(self, message: OutboundMessage) -> None:
        raise DeliveryError("gateway timed out")


def test_delivery_failure_closes_the_challenge_unused(engine: Engine, clock: FakeClock) -> None:
    from payguard.otp import OtpService as Service

    otp = Service(engine, service(engine, clock).store, _Broken(), clock=clock)
    with pytest.raises(OtpError) as failed:
        send(otp)
    assert (failed.value.status, failed.value.error) == (502, "delivery_failed")
    send_event_id = failed.value.event_id
    assert send_event_id is not None
    challenge_id = send_event_id.removesuffix("-send")
    stored = otp.store.get(challenge_id)
    assert stored is not None and stored.state == "undelivered"


def test_memory_outbox_is_the_default_for_in_memory_engines(otp: OtpService) -> None:
    assert isinstance(otp.delivery, MemoryOutbox)
