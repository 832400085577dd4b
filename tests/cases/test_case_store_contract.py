"""The case store's contract, run over SQLite and a real Postgres (conftest `store`):
what one writes the other reads back the same way, pages walk every case exactly once in
order (checked against a sorted list, the brute-force reference), one open case per
entity and queue, a claim only on an unclaimed case."""

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payguard.cases import (
    ActionRecord,
    Alert,
    Attachment,
    Case,
    CaseError,
    CaseQuery,
    Control,
    Note,
    SqlCaseStore,
)

T0 = 1_764_000_000_000


def case(n: int, **changes: object) -> Case:
    base = Case(
        case_id=f"case_{n:04d}",
        queue="review",
        entity_kind="account",
        entity_id=f"u{n}",
        status="open",
        opened_ts=T0 + n,
        updated_ts=T0 + n,
        due_ts=T0 + 1000 - n,
        score=n % 7,
        amount=(n * 37) % 11 * 100,
    )
    return msgspec.structs.replace(base, **changes)


def test_a_case_reads_back_as_written(store: SqlCaseStore) -> None:
    written = case(1, assignee="key:a", held=500, verdict=None, snoozed_until=None)
    store.put(written)
    assert store.get("case_0001") == written
    assert store.get("nope") is None
    assert store.open_case("review", "account", "u1") == written
    assert store.open_case("holds", "account", "u1") is None


def test_one_open_case_per_entity_and_queue(store: SqlCaseStore) -> None:
    store.put(case(1))
    with pytest.raises(CaseError) as refused:
        store.put(case(2, entity_id="u1"))
    assert refused.value.status == 409
    store.put(case(1, status="closed"))
    store.put(case(2, entity_id="u1"))  # the first is closed now: a second may open
    assert store.open_case("review", "account", "u1") == case(2, entity_id="u1")
    assert [c.case_id for c in store.cases_of("account", "u1")] == ["case_0001", "case_0002"]


def test_a_claim_takes_only_an_unclaimed_case(store: SqlCaseStore) -> None:
    store.put(case(1))
    mine = case(1, assignee="key:a", status="investigating")
    assert store.claim("case_0001", "key:a", mine)
    assert not store.claim("case_0001", "key:b", case(1, assignee="key:b"))
    assert store.get("case_0001") == mine
    assert store.assigned("key:a") == 1 and store.assigned("key:b") == 0


def test_alerts_are_filed_once(store: SqlCaseStore) -> None:
    alert = Alert(alert_id="review:e1", kind="review", event_id="e1", ts=T0, amount=100)
    assert store.add_alert("case_0001", alert)
    assert not store.add_alert("case_0001", alert)
    later = msgspec.structs.replace(alert, alert_id="hold:e2", ts=T0 + 1)
    store.add_alert("case_0001", later)
    assert store.alerts("case_0001") == [alert, later]


def test_notes_attachments_history_and_controls(store: SqlCaseStore) -> None:
    note = Note("n1", "case_0001", "key:a", T0, "called the customer")
    store.add_note(note)
    assert store.notes("case_0001") == [note]
    data = bytes(range(256)) * 4
    meta = Attachment("a1", "case_0001", "letter.pdf", "application/pdf", len(data), "x", "k", T0)
    store.add_attachment(meta, data)
    assert store.attachments("case_0001") == [meta]
    assert store.attachment_data("case_0001", "a1") == data
    assert store.attachment_data("case_0002", "a1") is None
    records = [
        ActionRecord("case_0001", name, "key:a", T0, None, {}, {"n": i})
        for i, name in enumerate(["claim", "note", "resolve"])
    ]
    for record in records:
        store.add_history(record)
    assert store.history("case_0001") == records
    control = Control("c1", "block", "account", "u1", "case_0001", T0)
    store.put_control(control)
    store.put_control(msgspec.structs.replace(control, until_ts=T0 + 5))
    assert store.controls() == [msgspec.structs.replace(control, until_ts=T0 + 5)]
    store.delete_control("c1")
    assert store.controls() == []


def test_queue_summaries(store: SqlCaseStore) -> None:
    store.put(case(1, held=700))
    store.put(case(2, status="investigating", assignee="k"))
    store.put(case(3, queue="holds", status="snoozed", snoozed_until=T0 + 9))
    store.put(case(4, status="closed", held=999))
    summary = {q.queue: q for q in store.queues()}
    assert summary["review"].open == 1 and summary["review"].investigating == 1
    assert summary["review"].held == 700 and summary["review"].oldest_open_ts == T0 + 1
    assert summary["holds"].snoozed == 1 and summary["holds"].oldest_open_ts is None
    assert [c.case_id for c in store.due_snoozed(T0 + 9)] == ["case_0003"]
    assert store.due_snoozed(T0 + 8) == []


def test_holding_money_due_is_exactly_the_due_cases_that_hold_money(store: SqlCaseStore) -> None:
    store.put(case(1, held=500, due_ts=T0 + 10))  # due, holds money
    store.put(case(2, held=500, due_ts=T0 + 5, status="investigating", assignee="k"))
    store.put(case(3, held=500, due_ts=T0 + 7, queue="holds", status="snoozed"))
    store.put(case(4, held=0, due_ts=T0 + 1))  # no money held
    store.put(case(5, held=500, due_ts=T0 + 11))  # due after the horizon
    store.put(case(6, held=500, due_ts=T0 + 2, status="closed"))
    due = [c.case_id for c in store.holding_money_due(T0 + 10)]
    assert due == ["case_0002", "case_0003", "case_0001"]  # earliest first
    assert store.holding_money_due(T0) == []


def test_a_foreign_cursor_is_refused_naming_it(store: SqlCaseStore) -> None:
    with pytest.raises(CaseError) as refused:
        store.find(CaseQuery(cursor="not-a-cursor!"))
    assert refused.value.field == "cursor"


_ORDER_KEYS = {  # (key, reverse): ties are broken by case_id in the key's direction
    "time_left": (lambda c: (c.due_ts, c.case_id), False),
    "score": (lambda c: (c.score, c.case_id), True),
    "amount": (lambda c: (c.amount, c.case_id), True),
    "newest": (lambda c: (c.opened_ts, c.case_id), True),
}


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 3), st.sampled_from(["open", "closed"])),
        min_size=0,
        max_size=30,
    ),
    order=st.sampled_from(sorted(_ORDER_KEYS)),
    limit=st.integers(1, 7),
    status=st.sampled_from([None, "open", "closed"]),
)
def test_pages_walk_every_matching_case_once_in_order(
    store: SqlCaseStore,
    rows: list[tuple[int, int, str]],
    order: str,
    limit: int,
    status: str | None,
) -> None:
    """Ties in the order key are common here (scores and amounts from a few values), so
    the keyset cursor's tie-break on case_id is what keeps a page from skipping or
    repeating a case. The reference is Python's sort of every matching case."""
    for found in store.find(CaseQuery(limit=500)).cases:  # hypothesis reuses the store
        store.put(msgspec.structs.replace(found, status="closed", queue=f"old-{found.case_id}"))
    written = [
        case(i, score=score, amount=amount * 100, status=state, queue="q", due_ts=T0 + score)
        for i, (score, amount, state) in enumerate(rows)
    ]
    for item in written:
        store.put(item)
    key, reverse = _ORDER_KEYS[order]
    expected = sorted(
        (c for c in written if status is None or c.status == status), key=key, reverse=reverse
    )
    seen: list[Case] = []
    cursor = None
    while True:
        query = CaseQuery(queue="q", status=status, order=order, limit=limit, cursor=cursor)  # type: ignore[arg-type]
        page = store.find(query)
        assert len(page.cases) <= limit
        seen += page.cases
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [c.case_id for c in seen] == [c.case_id for c in expected]
