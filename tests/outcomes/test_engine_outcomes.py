"""The engine acts on outcomes: checked against the decision they reference, filed in the
lifecycle, clearing causes after a strong step-up, counted when strong step-ups fail, and
kept across a real restart (SQLite event log and outcome book in a data directory)."""

from pathlib import Path

import pytest
from support import (
    HOUR,
    T0,
    decode,
    label,
    open_engine,
    payment,
    result,
    send,
    wire,
)

from payguard.engine import Engine
from payguard.outcomes import OutcomeError


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    opened = open_engine(tmp_path / "data")
    yield opened
    opened.close()


def refused(engine: Engine, body: dict[str, object]) -> OutcomeError:
    before = engine.recorder.last_seq()
    with pytest.raises(OutcomeError) as info:
        engine.process(decode(engine, body))
    engine.flush()
    assert engine.recorder.last_seq() == before  # nothing recorded
    assert engine.recorder.lookup(str(body["event_id"])) is None
    return info.value


# -- refusals ---------------------------------------------------------------------------------


def test_result_for_an_unknown_decision_is_refused(engine: Engine) -> None:
    err = refused(engine, result("r1", "never-sent", T0, "face", "passed"))
    assert (err.field, err.event_id) == ("ref_event_id", "r1")


def test_result_for_a_decision_that_was_not_a_challenge_is_refused(engine: Engine) -> None:
    assert send(engine, payment("p1", T0, "10.00")) == "allow"
    err = refused(engine, result("r1", "p1", T0 + 1, "face", "passed"))
    assert err.field == "ref_event_id"
    assert "`allow`, not a challenge" in err.reason


def test_result_with_a_method_not_offered_is_refused(engine: Engine) -> None:
    assert send(engine, payment("p1", T0, "1234.00")) == "challenge"  # offers face only
    err = refused(engine, result("r1", "p1", T0 + 1, "hardware_token", "passed"))
    assert err.field == "method"
    assert "offered: face" in err.reason


def test_result_from_another_account_is_refused(engine: Engine) -> None:
    assert send(engine, payment("p1", T0)) == "challenge"
    err = refused(engine, result("r1", "p1", T0 + 1, "face", "passed", user_id="u2"))
    assert err.field == "user_id"


def test_label_for_an_unknown_event_is_refused(engine: Engine) -> None:
    assert refused(engine, label("l1", "never-sent", T0, "fraud")).field == "ref_event_id"


def test_fraud_report_about_an_unknown_event_keeps_working(engine: Engine) -> None:
    report = wire("fr1", "fraud_report", T0, ref_event_id="never-sent")
    assert send(engine, report) == "allow"


# -- lifecycle --------------------------------------------------------------------------------


def test_challenge_results_move_the_state_and_keep_history(engine: Engine) -> None:
    assert send(engine, payment("p1", T0)) == "challenge"
    assert engine.outcomes.book.state("p1") is None  # still `decided`
    send(engine, result("r1", "p1", T0 + 1, "face", "abandoned"))
    assert engine.outcomes.book.state("p1") == "challenge:abandoned"
    send(engine, result("r2", "p1", T0 + 2, "sms_otp", "passed"))
    assert engine.outcomes.book.state("p1") == "challenge:passed"
    history = engine.outcomes.history("p1")
    assert [(h.event_id, h.method, h.outcome, h.state) for h in history] == [
        ("r1", "face", "abandoned", "challenge:abandoned"),
        ("r2", "sms_otp", "passed", "challenge:passed"),
    ]


def test_outcome_events_are_acknowledged_not_decided(engine: Engine) -> None:
    send(engine, payment("p1", T0))
    decision, _ = engine.process(decode(engine, result("r1", "p1", T0 + 1, "face", "failed")))
    assert (decision.action, decision.reasons) == ("allow", [])


def test_a_label_resolves_a_review_and_only_a_review(engine: Engine) -> None:
    assert send(engine, wire("t1", "transfer", T0, amount="2000.00")) == "review"
    send(engine, label("l1", "t1", T0 + 1, "not_fraud"))
    assert engine.outcomes.book.state("t1") == "review:resolved:not_fraud"
    assert send(engine, payment("p1", T0 + 2, "10.00")) == "allow"
    send(engine, label("l2", "p1", T0 + 3, "fraud", source="customer", scenario="scam"))
    assert engine.outcomes.book.state("p1") == "decided"
    (filed,) = engine.outcomes.history("p1")
    assert (filed.label, filed.source, filed.scenario) == ("fraud", "customer", "scam")


def test_fraud_reports_and_chargebacks_are_labels_too(engine: Engine) -> None:
    assert send(engine, wire("t1", "transfer", T0, amount="2000.00")) == "review"
    send(engine, wire("cb1", "chargeback", T0 + 1, ref_event_id="t1"))
    assert engine.outcomes.book.state("t1") == "review:resolved:fraud"
    assert engine.outcomes.history("t1")[0].source == "chargeback"


def test_listener_hears_each_change_once_after_the_flush(engine: Engine) -> None:
    heard: list[tuple[str, str, str]] = []
    engine.outcomes.book.subscribe(lambda ref, old, new: heard.append((ref, old, new)))
    assert send(engine, payment("p1", T0)) == "challenge"
    engine.process(decode(engine, result("r1", "p1", T0 + 1, "face", "failed")))
    assert heard == []  # not durable yet
    engine.flush()
    assert heard == [("p1", "decided", "challenge:failed")]
    send(engine, wire("t1", "transfer", T0 + 2, amount="2000.00"))
    send(engine, label("l1", "t1", T0 + 3, "fraud"))
    send(engine, label("l2", "t1", T0 + 4, "fraud"))  # same state: no change to announce
    assert heard[1:] == [("t1", "review:open", "review:resolved:fraud")]


# -- acting on outcomes -----------------------------------------------------------------------


def test_a_passed_face_clears_the_rule_for_that_account_and_device(engine: Engine) -> None:
    assert send(engine, payment("p1", T0)) == "challenge"
    send(engine, result("r1", "p1", T0 + 1000, "face", "passed"))
    assert send(engine, payment("p2", T0 + 2000)) == "allow"  # same cause, same device
    assert send(engine, payment("p3", T0 + 3000, device_id="dev-2")) == "challenge"
    assert send(engine, payment("p4", T0 + 4000, user_id="u2")) == "challenge"
    # another rule is another cause: it still asks
    assert send(engine, payment("p5", T0 + 5000, "1234.00")) == "challenge"
    # the clearance lasts policy.outcomes.clear_hours (24 h here) from the result
    assert send(engine, payment("p6", T0 + 1000 + 24 * HOUR - 1)) == "allow"
    assert send(engine, payment("p7", T0 + 1000 + 24 * HOUR)) == "challenge"


@pytest.mark.parametrize("method", ["sms_otp"])
def test_a_passed_sms_code_clears_nothing(engine: Engine, method: str) -> None:
    assert send(engine, payment("p1", T0)) == "challenge"
    send(engine, result("r1", "p1", T0 + 1000, method, "passed"))
    assert engine.outcomes.book.state("p1") == "challenge:passed"
    assert send(engine, payment("p2", T0 + 2000)) == "challenge"


LIMITS = """
version: "line-cleared-test"
rules:
  - id: over_limit
    events: [payment]
    when: amount >= 100000
    action: challenge
    score: 20
    reason: Over the daily limit.
    challenge: [sms_otp, callback, face]
  - id: odd_amount
    events: [payment]
    when: amount == 123400
    action: challenge
    score: 20
    reason: A peculiar amount.
    challenge: [sms_otp, face]
policy:
  outcomes:
    clear_hours: 24
    line_cleared: [over_limit]
"""


@pytest.mark.parametrize("method", ["sms_otp", "callback"])
def test_a_passed_line_method_clears_only_the_rules_of_line_cleared(
    tmp_path: Path, method: str
) -> None:
    """A customer over a limit who answers the SMS code (or the bank's call) is not asked
    again on every payment until the window rolls off (the demo loop asked one 72 times);
    a cause the line cannot settle still asks, and so does another device."""
    engine = open_engine(tmp_path / "data", LIMITS)
    try:
        assert send(engine, payment("p1", T0)) == "challenge"
        send(engine, result("r1", "p1", T0 + 1000, method, "passed"))
        assert send(engine, payment("p2", T0 + 2000, "1500.00")) == "allow"
        assert send(engine, payment("p3", T0 + 3000, device_id="dev-2")) == "challenge"
        # both rules: the limit is cleared, the other cause still asks, and SMS settles it
        # for this payment only
        assert send(engine, payment("p4", T0 + 4000, "1234.00")) == "challenge"
        decision = engine.stored_decision("p4")
        assert decision is not None
        assert [r.rule for r in decision.reasons] == ["odd_amount"]
        send(engine, result("r4", "p4", T0 + 5000, "sms_otp", "passed"))
        assert send(engine, payment("p5", T0 + 6000, "1234.00")) == "challenge"
        assert send(engine, payment("p6", T0 + 1000 + 24 * HOUR)) == "challenge"
    finally:
        engine.close()


def test_a_hardware_token_clears_as_face_does(engine: Engine) -> None:
    assert send(engine, payment("p1", T0)) == "challenge"
    send(engine, result("r1", "p1", T0 + 1000, "hardware_token", "passed"))
    assert send(engine, payment("p2", T0 + 2000)) == "allow"


def test_a_failed_face_clears_nothing(engine: Engine) -> None:
    assert send(engine, payment("p1", T0)) == "challenge"
    send(engine, result("r1", "p1", T0 + 1000, "face", "failed"))
    assert send(engine, payment("p2", T0 + 2000)) == "challenge"


def test_repeated_strong_failures_escalate_to_review(engine: Engine) -> None:
    assert send(engine, payment("p1", T0)) == "challenge"
    send(engine, result("r1", "p1", T0 + 1000, "face", "failed"))
    assert send(engine, payment("p2", T0 + 2000)) == "challenge"  # one failure: still asks
    send(engine, result("r2", "p2", T0 + 3000, "face", "abandoned"))
    assert send(engine, payment("p3", T0 + 4000, "10.00")) == "review"
    snapshot = engine.stored_decision("p3")
    assert snapshot is not None and snapshot.reasons[0].rule == "stepup_failures_review"


def test_sms_failures_are_not_counted_as_strong_failures(engine: Engine) -> None:
    assert send(engine, payment("p1", T0)) == "challenge"
    send(engine, result("r1", "p1", T0 + 1000, "sms_otp", "failed"))
    send(engine, result("r2", "p1", T0 + 2000, "sms_otp", "failed"))
    assert send(engine, payment("p3", T0 + 4000, "10.00")) == "allow"


def test_fraud_labels_feed_the_reported_entity_features(engine: Engine) -> None:
    send(engine, payment("p1", T0, "10.00"))
    send(engine, label("l1", "p1", T0 + 1, "not_fraud"))
    probe = decode(engine, payment("probe", T0 + 2, "10.00"))
    plan = engine.features.plan({"count_fraud_label_by_device_90d"})
    assert engine.features.snapshot(probe, plan)["count_fraud_label_by_device_90d"] == 0
    send(engine, label("l2", "p1", T0 + 3, "fraud", source="bank"))
    probe = decode(engine, payment("probe", T0 + 4, "10.00"))
    assert engine.features.snapshot(probe, plan)["count_fraud_label_by_device_90d"] == 1


# -- durability -------------------------------------------------------------------------------


def test_a_restart_keeps_every_outcome_and_clearance(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = open_engine(data)
    assert send(first, payment("p1", T0)) == "challenge"
    send(first, result("r1", "p1", T0 + 1000, "face", "passed"))
    assert send(first, wire("t1", "transfer", T0 + 2000, amount="2000.00")) == "review"
    send(first, label("l1", "t1", T0 + 3000, "not_fraud"))
    first.close()

    heard: list[tuple[str, str, str]] = []
    second = open_engine(data)
    second.outcomes.book.subscribe(lambda *change: heard.append(change))
    try:
        assert second.outcomes.book.state("p1") == "challenge:passed"
        assert second.outcomes.book.state("t1") == "review:resolved:not_fraud"
        assert [h.event_id for h in second.outcomes.history("p1")] == ["r1"]
        assert send(second, payment("p2", T0 + 4000)) == "allow"  # still cleared
        # a repeat of a recorded outcome changes nothing
        _, repeat = second.process(decode(second, result("r1", "p1", T0 + 1000, "face", "passed")))
        assert repeat
        assert [h.event_id for h in second.outcomes.history("p1")] == ["r1"]
        second.flush()
        assert heard == []
    finally:
        second.close()


def test_outcomes_the_book_missed_are_refiled_from_the_log(tmp_path: Path) -> None:
    """A crash after the event log's commit and before the book's: recovery files the
    outcome again from the log, and does not announce it again."""
    data = tmp_path / "data"
    first = open_engine(data)
    send(first, payment("p1", T0))
    first.write_snapshot()
    first.process(decode(first, result("r1", "p1", T0 + 1000, "face", "passed")))
    first.recorder.flush()  # the log is durable; the book never flushes (a crash)
    first.recorder.close()
    first.holds.close()

    heard: list[tuple[str, str, str]] = []
    second = open_engine(data)
    second.outcomes.book.subscribe(lambda *change: heard.append(change))
    try:
        assert second.outcomes.book.state("p1") == "challenge:passed"
        assert send(second, payment("p2", T0 + 2000)) == "allow"
        assert heard == []
    finally:
        second.close()


def test_create_app_wires_outcome_listeners(engine: Engine) -> None:
    from payguard.api import create_app

    heard: list[tuple[str, str, str]] = []
    create_app(engine, outcome_listeners=[lambda *change: heard.append(change)])
    assert send(engine, payment("p1", T0)) == "challenge"
    send(engine, result("r1", "p1", T0 + 1, "face", "passed"))
    assert heard == [("p1", "decided", "challenge:passed")]


def test_an_owner_report_revoking_a_hold_is_announced(engine: Engine) -> None:
    heard: list[tuple[str, str, str]] = []
    engine.outcomes.book.subscribe(lambda *change: heard.append(change))
    assert send(engine, wire("w1", "withdrawal", T0, amount="2000.00")) == "hold"
    send(engine, wire("fr1", "fraud_report", T0 + 1, ref_event_id="w1"))
    assert ("w1", "decided", "hold:revoked") in heard
    decision = engine.stored_decision("w1")
    assert decision is not None
    assert engine.outcomes.state(decision, engine.holds, T0 + 2) == "hold:revoked"
