"""Cases over a real engine (test ruleset), over both case stores: what opens a case,
where alerts go, what each action does to the engine, the holds and the audit log."""

import csv
import io

import msgspec
import pytest
from casetools import PAN, T0, World, payment, send, transfer

from payguard.auth import Actor
from payguard.cases import (
    MAX_ATTACHMENT_BYTES,
    AddNote,
    Block,
    CaseConfig,
    CaseError,
    CaseQuery,
    Claim,
    HoldDecision,
    Reopen,
    RequireStepUp,
    Resolve,
    Snooze,
    SnoozeRule,
    SqlCaseStore,
    Unblock,
)
from payguard.types import DAY_MS, HOUR_MS

ANNA = Actor("user:anna", "Anna")
BO = Actor("user:bo", "Bo")


def only_case(world: World, queue: str):  # type: ignore[no-untyped-def]
    page = world.cases.find(CaseQuery(queue=queue))
    assert len(page.cases) == 1, page.cases
    return page.cases[0]


def test_a_review_opens_a_case_and_the_entitys_next_alert_joins_it(world: World) -> None:
    assert transfer(world, "t1", "u1", "12000.00").action == "review"
    assert transfer(world, "t2", "u1", "15000.00").action == "review"
    assert transfer(world, "t3", "u2", "11000.00").action == "review"
    cases = {c.entity_id: c for c in world.cases.find(CaseQuery(queue="review")).cases}
    assert set(cases) == {"u1", "u2"}
    assert cases["u1"].alerts == 2 and cases["u1"].amount == 2_700_000
    assert cases["u1"].status == "open" and cases["u1"].score == 80
    detail = world.cases.get(cases["u1"].case_id)
    assert [a.event_id for a in detail.alerts] == ["t1", "t2"]
    assert detail.alerts[0].rules == ["big_transfer"]


def test_an_allowed_event_opens_nothing(world: World) -> None:
    transfer(world, "t1", "u1", "100.00")
    assert world.cases.find(CaseQuery()).cases == []


def test_a_hold_case_shows_the_release_deadline_and_revoking_takes_the_money_back(
    world: World,
) -> None:
    decision = transfer(world, "t1", "u1", "6000.00")
    assert decision.action == "hold"
    assert not isinstance(decision.hold, msgspec.UnsetType)
    case = only_case(world, "holds")
    assert case.held == 600_000 and case.due_ts == decision.hold.release_ts
    assert case.breach_action == "release"
    result = world.cases.act(case.case_id, HoldDecision(decision="revoke", comment="owner"), ANNA)
    assert result.effects == [decision.hold.hold_id]
    hold = world.engine.holds.get(decision.hold.hold_id)
    assert hold is not None and hold.state == "revoked" and hold.resolved_by == "staff"
    assert world.cases.get(case.case_id).case.held == 0
    entry = world.audit.find(action="case.hold")[-1]
    assert (entry.actor, entry.target) == ("user:anna", case.case_id)
    assert entry.after["effects"] == [decision.hold.hold_id]
    assert entry.after["comment"] == "owner"
    with pytest.raises(CaseError) as again:
        world.cases.act(case.case_id, HoldDecision(decision="release"), ANNA)
    assert again.value.status == 409


def test_a_revoke_breach_action_takes_the_money_back_before_expiry_pays_it(
    store: object, tmp_path: object
) -> None:
    world = World(tmp_path / "d", store, CaseConfig(breach_action="revoke"))  # type: ignore[arg-type, operator]
    try:
        decision = transfer(world, "t1", "u1", "6000.00")
        assert not isinstance(decision.hold, msgspec.UnsetType)
        case = only_case(world, "holds")
        assert case.breach_action == "revoke"
        assert world.cases.enforce_sla(T0) == []  # a day to go
        world.clock.now = decision.hold.release_ts - 30_000
        revoked = world.cases.enforce_sla(world.clock.now)
        assert [h.hold_id for h in revoked] == [decision.hold.hold_id]
        hold = world.engine.holds.get(decision.hold.hold_id)
        assert hold is not None and hold.state == "revoked"
        assert world.audit.find(action="case.hold")[-1].actor == "system:cases"
    finally:
        world.close()


def test_resolving_files_an_analyst_label_through_the_outcomes_service(world: World) -> None:
    transfer(world, "t1", "u1", "12000.00")
    case = only_case(world, "review")
    result = world.cases.act(case.case_id, Resolve(verdict="fraud", comment="mule"), ANNA)
    assert result.case.status == "closed" and result.case.verdict == "fraud"
    assert world.engine.outcomes.book.state("t1") == "review:resolved:fraud"
    [label_id] = result.effects
    label = world.engine.recorder.get_event(label_id)
    assert label is not None and (label.label, label.source) == ("fraud", "analyst")
    with pytest.raises(CaseError) as closed:
        world.cases.act(case.case_id, Resolve(verdict="not_fraud"), ANNA)
    assert closed.value.status == 409
    world.cases.act(case.case_id, Reopen(comment="the customer's bank vouched for it"), ANNA)
    world.cases.act(case.case_id, Resolve(verdict="not_fraud"), ANNA)
    assert world.engine.outcomes.book.state("t1") == "review:resolved:not_fraud"


def test_block_stops_the_entitys_next_event_until_unblocked(world: World) -> None:
    transfer(world, "t1", "u1", "12000.00")
    case = only_case(world, "review")
    world.cases.act(case.case_id, Block(comment="account taken over"), ANNA)
    blocked = payment(world, "p1", "u1", "10.00")
    assert blocked.action == "block" and blocked.reasons[0].rule == "case_block"
    assert payment(world, "p2", "u2", "10.00").action == "allow"
    world.cases.act(case.case_id, Unblock(comment="owner verified at the branch"), ANNA)
    assert payment(world, "p3", "u1", "10.00").action == "allow"


def test_a_required_step_up_challenges_the_next_money_out_event_once(world: World) -> None:
    transfer(world, "t1", "u1", "12000.00")
    case = only_case(world, "review")
    world.cases.act(case.case_id, RequireStepUp(), ANNA)
    assert send(world, "l1", "login", "u1", device_id="d-u1").action == "allow"
    challenged = payment(world, "p1", "u1", "10.00")
    assert challenged.action == "challenge" and challenged.reasons[0].rule == "case_step_up"
    offered = challenged.challenge
    assert isinstance(offered, list) and offered and set(offered) <= {"face", "in_app_confirm"}
    assert payment(world, "p2", "u1", "10.00").action == "allow"


def test_a_snoozed_rule_spares_that_entity_only_and_only_for_its_days(world: World) -> None:
    transfer(world, "t1", "u1", "12000.00")
    case = only_case(world, "review")
    snooze = SnoozeRule(rule="big_payment", days=30, comment="pays rent by card monthly")
    world.cases.act(case.case_id, snooze, ANNA)
    assert payment(world, "p1", "u1", "4000.00").action == "allow"
    assert payment(world, "p2", "u2", "4000.00").action == "challenge"
    world.clock.now = T0 + 31 * DAY_MS
    assert payment(world, "p3", "u1", "4000.00", ts=world.clock.now).action == "challenge"
    with pytest.raises(CaseError) as unknown:
        world.cases.act(case.case_id, SnoozeRule(rule="nope", days=1, comment="x"), ANNA)
    assert unknown.value.field == "rule"


def test_claims_respect_the_cap_and_next_case_takes_the_least_time_left(
    store: object, tmp_path: object
) -> None:
    world = World(tmp_path / "d", store, CaseConfig(assignment_cap=2))  # type: ignore[arg-type, operator]
    try:
        for i, user in enumerate(["u1", "u2", "u3"]):
            world.clock.now = T0 + i * HOUR_MS  # later cases are due later
            transfer(world, f"t{i}", user, "12000.00")
        first = world.cases.next_case("review", ANNA)
        assert first is not None and first.entity_id == "u1"
        assert first.status == "investigating" and first.assignee == "user:anna"
        with pytest.raises(CaseError) as taken:
            world.cases.act(first.case_id, Claim(), BO)
        assert taken.value.status == 409
        second = world.cases.next_case("review", ANNA)
        assert second is not None and second.entity_id == "u2"
        with pytest.raises(CaseError) as capped:
            world.cases.next_case("review", ANNA)
        assert capped.value.status == 409 and "cap" in capped.value.reason
        assert world.cases.release(first.case_id, ANNA).status == "open"
        third = world.cases.next_case("review", BO)
        assert third is not None and third.entity_id == "u1"
        assert world.cases.next_case("holds", BO) is None
    finally:
        world.close()


def test_a_failed_strong_step_up_and_a_customer_report_open_their_own_cases(
    world: World,
) -> None:
    assert payment(world, "p1", "u1", "4000.00").action == "challenge"
    send(world, "c1", "challenge_result", "u1", ref_event_id="p1", method="face",
         outcome="failed", device_id="d-u1")  # fmt: skip
    step_up = only_case(world, "step_up")
    assert step_up.entity_id == "u1"
    assert world.cases.get(step_up.case_id).alerts[0].event_id == "p1"
    payment(world, "p2", "u2", "50.00")
    send(world, "r1", "label", "u2", ref_event_id="p2", label="fraud", source="customer")
    report = only_case(world, "customer_reports")
    assert report.entity_id == "u2"
    send(world, "c2", "challenge_result", "u1", ref_event_id="p1", method="sms_otp",
         outcome="failed", device_id="d-u1")  # fmt: skip
    assert world.cases.get(step_up.case_id).case.alerts == 1  # SMS is not a strong method


def test_bulk_needs_a_comment_and_reports_each_case(world: World) -> None:
    for i in range(3):
        transfer(world, f"t{i}", f"u{i}", "12000.00")
    ids = [c.case_id for c in world.cases.find(CaseQuery(queue="review")).cases]
    with pytest.raises(CaseError) as bare:
        world.cases.bulk(ids, Resolve(verdict="not_fraud"), " ", ANNA)
    assert bare.value.field == "comment"
    world.cases.act(ids[0], Resolve(verdict="fraud"), ANNA)
    results = world.cases.bulk(ids, Resolve(verdict="not_fraud"), "payroll run", ANNA)
    assert isinstance(results[0], CaseError) and results[0].status == 409
    assert all(not isinstance(r, CaseError) for r in results[1:])
    comments = [e.after["comment"] for e in world.audit.find(action="case.resolve")]
    assert comments.count("payroll run") == 2


def test_snooze_puts_a_case_aside_until_its_time(world: World) -> None:
    transfer(world, "t1", "u1", "12000.00")
    case = only_case(world, "review")
    world.cases.act(case.case_id, Snooze(until_ts=T0 + HOUR_MS), ANNA)
    assert world.cases.find(CaseQuery(status="open")).cases == []
    with pytest.raises(CaseError):
        world.cases.act(case.case_id, Snooze(until_ts=T0 + 181 * DAY_MS), ANNA)
    world.clock.now = T0 + HOUR_MS
    assert [c.case_id for c in world.cases.find(CaseQuery(status="open")).cases] == [case.case_id]


def test_notes_and_attachments_are_kept_with_the_case(world: World) -> None:
    transfer(world, "t1", "u1", "12000.00")
    case = only_case(world, "review")
    note = world.cases.add_note(case.case_id, "customer confirmed by phone", ANNA)
    data = b"%PDF-1.4 letter"
    meta = world.cases.attach_file(case.case_id, "letter.pdf", "application/pdf", data, ANNA)
    detail = world.cases.get(case.case_id)
    assert detail.notes == [note] and detail.attachments == [meta]
    assert world.cases.attachment(case.case_id, meta.attachment_id) == (meta, data)
    too_big = b"x" * (MAX_ATTACHMENT_BYTES + 1)
    with pytest.raises(CaseError) as refused:
        world.cases.attach_file(case.case_id, "big.bin", "application/octet-stream", too_big, ANNA)
    assert refused.value.status == 413
    with pytest.raises(CaseError) as clear:
        world.cases.act(case.case_id, AddNote(text=f"card {PAN} stolen"), ANNA)
    assert clear.value.field == "text"
    assert [r.action for r in detail.history] == ["note", "attach"]


def test_the_str_export_names_tokens_and_yuan_strings_never_clear_numbers(world: World) -> None:
    transfer(world, "t1", "u1", "12000.00", card={"number": PAN})
    transfer(world, "t2", "u1", "15000.50", card={"number": PAN})
    case = only_case(world, "review")
    world.cases.add_note(case.case_id, "two large transfers to new payees", ANNA)
    report = msgspec.json.decode(world.cases.export_str(case.case_id, "json", institution="X"))
    assert report["reporting_institution"] == "X"
    assert report["total_amount"] == "27000.50" and report["currency"] == "CNY"
    assert [t["amount"] for t in report["transactions"]] == ["12000.00", "15000.50"]
    assert report["cards"] == [world.tokenizer.pan(PAN)[0]]
    assert report["subject_token"] == "u1" and "two large transfers" in report["narrative"]
    text = world.cases.export_str(case.case_id, "csv", institution="X")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["tx_amount"] for r in rows] == ["12000.00", "15000.50"]
    assert rows[0]["reporting_institution"] == "X"
    for exported in (text, msgspec.json.encode(report).decode()):
        assert PAN not in exported and PAN[-10:] not in exported


def test_the_alerts_of_one_commit_are_filed_in_one_transaction(world: World) -> None:
    """One fsync for what a group commit raises, not one per alert: the intake runs on
    the event loop's thread (issue 16)."""
    store = world.cases.store
    assert isinstance(store, SqlCaseStore)
    if store._dialect.name != "sqlite":
        pytest.skip("counts the statements SQLite's trace callback sees")
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    for event_id, user, yuan in (("t1", "u1", "12000.00"), ("t2", "u1", "15000.00")):
        body = {
            "event_id": event_id,
            "type": "transfer",
            "ts": world.clock.now,
            "user_id": user,
            "amount": yuan,
            "device_id": f"d-{user}",
            "payee": {"id": f"payee-{event_id}"},
        }
        decision, _ = world.engine.process(world.engine.decoder.decode(msgspec.json.encode(body)))
        assert decision.action == "review"
    world.engine.flush()
    store._db.set_trace_callback(None)
    assert [s for s in statements if s in ("BEGIN", "COMMIT")] == ["BEGIN", "COMMIT"]
    assert only_case(world, "review").alerts == 2
