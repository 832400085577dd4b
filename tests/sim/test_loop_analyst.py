"""The closed loop's analyst queue: working hours, queue latency, error rates, and the
labels it posts back (accepted by the engine, releasing honest customers and keeping
attackers stopped)."""

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from payguard.config import Settings
from payguard.engine import compile_ruleset
from payguard.events import EventDecoder, Tokenizer
from payguard.features import FeatureState, load_catalog
from payguard.sim import SimConfig
from payguard.sim.loop import Analyst, ClosedLoop, LoopConfig
from payguard.sim.loop.analyst import (
    QUEUE_MINUTES,
    SHIFT_END_HOUR,
    SHIFT_START_HOUR,
    line_vouches,
)

ROOT = Path(__file__).resolve().parents[2]
LOCAL = timezone(timedelta(hours=8))
WORLD = SimConfig(users=300, days=8, seed=11, attack_rate=0.05)
# Every big money-out operation reviewed, whoever asks: the analyst has work on both sides.
REVIEW_BIG = """
version: "review-big"
rules:
  - id: review_big_money
    events: [payment, transfer, withdrawal, investment_buy]
    when: amount >= 100000
    action: review
    score: 60
    reason: Big money goes to a person (test ruleset).
"""


def _local(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, LOCAL)


@given(st.integers(min_value=1_700_000_000, max_value=1_900_000_000))
def test_reviews_are_resolved_in_working_hours_after_the_queue(ts: int) -> None:
    at = Analyst().resolved_at(ts, random.Random(ts))
    assert SHIFT_START_HOUR <= _local(at).hour < SHIFT_END_HOUR
    assert at >= ts + QUEUE_MINUTES[0] * 60
    # at most a night's wait plus the longest queue (which may run over into the next shift)
    night = (24 - SHIFT_END_HOUR + SHIFT_START_HOUR) * 3600
    assert at <= ts + night + QUEUE_MINUTES[1] * 60 + night


def test_a_review_opened_at_night_waits_for_the_morning_shift() -> None:
    opened = int(datetime(2026, 10, 1, 23, 30, tzinfo=LOCAL).timestamp())
    at = _local(Analyst().resolved_at(opened, random.Random(1)))
    assert at.date() == datetime(2026, 10, 2).date()
    assert at.hour >= SHIFT_START_HOUR and (at.hour, at.minute) >= (8, 15)


def test_verdicts_follow_the_error_rates() -> None:
    rng = random.Random(3)
    perfect = Analyst(miss=0.0, false_alarm=0.0)
    assert {perfect.verdict(True, rng) for _ in range(200)} == {"fraud"}
    assert {perfect.verdict(False, rng) for _ in range(200)} == {"not_fraud"}
    sloppy = Analyst(miss=0.5, false_alarm=0.5)
    assert {sloppy.verdict(True, rng) for _ in range(200)} == {"fraud", "not_fraud"}


def _run(analyst: bool) -> ClosedLoop:
    settings = Settings()
    features = FeatureState(load_catalog(settings.features), settings.utc_offset)
    ruleset = compile_ruleset(REVIEW_BIG, features)
    cfg = LoopConfig(WORLD, analyst=analyst)
    loop = ClosedLoop(cfg, settings=settings, features=features, ruleset=ruleset)
    loop.run(keep_events=True)
    loop.close()
    return loop


@pytest.fixture(scope="module")
def desk_loop() -> ClosedLoop:
    return _run(analyst=True)


def test_every_review_gets_one_analyst_label_the_engine_accepts(desk_loop: ClosedLoop) -> None:
    report = desk_loop.report()
    desk = report.analyst
    assert desk is not None and desk.reviews > 0
    assert report.refused_outcomes == {}
    assert desk.resolved == (
        desk.attack_fraud + desk.attack_released + desk.honest_released + desk.honest_fraud
    )
    # only those the window's end cuts off, and few of them
    assert desk.reviews - desk.resolved == desk_loop.reviews["past_end"] <= 10
    assert desk.attack_fraud > 0 and desk.honest_released > 0
    assert desk.median_hours_to_resolve is not None and desk.median_hours_to_resolve > 0
    assert desk_loop.lines is not None
    decoder = EventDecoder(Tokenizer(b"x" * 32))
    decoded = [decoder.decode(line) for line in desk_loop.lines]
    labels = [e for e in decoded if e.type == "label" and e.source == "analyst"]
    assert len(labels) == desk.resolved
    assert len({e.ref_event_id for e in labels}) == len(labels)  # one verdict per review
    reviewed = {
        e.event_id
        for e in decoded
        if (stored := desk_loop.engine.recorder.lookup(e.event_id)) is not None
        and stored.decision.action == "review"
    }
    assert {e.ref_event_id for e in labels} <= reviewed


def test_the_verdicts_resolve_the_reviews(desk_loop: ClosedLoop) -> None:
    """An analyst label moves the review to resolved (the engine's lifecycle)."""
    assert desk_loop.lines is not None
    book = desk_loop.engine.outcomes.book
    states = [
        book.state(str(ref))
        for line in desk_loop.lines
        if (body := msgspec.json.decode(line)).get("source") == "analyst"
        and (ref := body.get("ref_event_id")) is not None
    ]
    assert states and all(s is not None and s.startswith("review:resolved:") for s in states)


def test_without_the_desk_reviews_stay_open() -> None:
    loop = _run(analyst=False)
    report = loop.report()
    assert report.analyst is None
    assert loop.lines is not None
    assert not any(b'"source":"analyst"' in line for line in loop.lines)


def test_a_release_needs_someone_on_the_line_who_vouches() -> None:
    """The desk calls the registered line: the attacker holding it (a thief with the SIM),
    a colluding owner or a coached victim vouches; an owner who was not in on it denies."""
    assert line_vouches("phone_theft_takeover", "phone_theft_takeover/x", frozenset({"callback"}))
    assert line_vouches("cash_out_collusion", "cash_out_collusion/x", frozenset())
    assert line_vouches("fake_customer_service", "fake_customer_service/x", frozenset({"sms_otp"}))
    assert not line_vouches("credential_stuffing", "credential_stuffing/x", frozenset({"sms_otp"}))
    assert not line_vouches("sms_forwarding", "sms_forwarding/x", frozenset({"sms_otp"}))
    rng = random.Random(5)
    desk = Analyst(miss=1.0, miss_owner_denies=0.0)
    assert {desk.verdict(True, rng, vouched=False) for _ in range(100)} == {"fraud"}
    assert {desk.verdict(True, rng, vouched=True) for _ in range(100)} == {"not_fraud"}


def test_a_stop_after_the_cases_verdict_is_looked_at_again(desk_loop: ClosedLoop) -> None:
    """Stops queued before a case's verdict share it; one that comes after the verdict (the
    account stopped again once released) is new evidence and gets its own look."""
    loop = desk_loop
    opened, posted = 1_800_000_000, 1_800_003_600
    loop.analyst = Analyst(miss=1.0)
    case = loop._case("u-case", opened, posted, True, True)
    assert case.verdict == "not_fraud"
    assert loop._case("u-case", posted - 60, posted + 60, True, True) is case
    loop.analyst = Analyst(miss=0.0)
    later = loop._case("u-case", posted + 60, posted + 3600, True, True)
    assert later is not case and later.verdict == "fraud"


def test_every_attack_stop_of_a_released_case_must_check_out_too(desk_loop: ClosedLoop) -> None:
    """A stop that joins an attack case the desk is about to release is one more operation
    the person vouching must explain: the release holds only if that story checks out."""
    loop = desk_loop
    opened, posted = 1_810_000_000, 1_810_003_600
    loop.analyst = Analyst(miss=1.0)
    case = loop._case("u-recheck", opened, posted, True, True)
    assert loop._case("u-recheck", opened + 60, posted + 60, True, True).verdict == "not_fraud"
    loop.analyst = Analyst(miss=0.0)
    assert loop._case("u-recheck", opened + 120, posted + 60, True, True) is case
    assert case.verdict == "fraud"
