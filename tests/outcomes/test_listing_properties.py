"""Decision search against a brute-force twin: for any log (memory, SQLite or Postgres),
lifecycle states and query, following `next_cursor` page by page yields exactly the
decisions a plain filter over the whole log yields, newest first, whatever the page size
and however short each request's scan is cut."""

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from payguard.decision import Decision, Reason
from payguard.events import Event
from payguard.holds import MemoryHoldBook
from payguard.outcomes import DecisionSearch, OutcomeBook, OutcomeRecord, Outcomes, search
from payguard.outcomes.lifecycle import initial_state
from payguard.store import MemoryRecorder, Recorder, SQLiteRecorder
from payguard.store.postgres import PostgresRecorder

USERS = ["u0", "u1", "u2"]
ACTIONS = ["allow", "challenge", "review", "block"]
RULES = ["r_a", "r_b", "r_c"]
T0 = 1_700_000_000_000
PG_DSN = os.environ.get("PAYGUARD_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test")


@contextmanager
def postgres_log() -> Iterator[PostgresRecorder]:
    """A Postgres log in a schema of its own (one per example), dropped after."""
    import psycopg

    schema = f"listing_{uuid.uuid4().hex[:12]}"
    log = PostgresRecorder(PG_DSN, schema=schema)
    try:
        yield log
    finally:
        log.close()
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


class Logged(msgspec.Struct):
    event: Event
    decision: Decision
    challenge_state: str | None
    """A challenge result's state filed against it (challenge decisions only)."""


@st.composite
def logs(draw: st.DrawFn) -> list[Logged]:
    out: list[Logged] = []
    for i in range(draw(st.integers(0, 30))):
        kind = draw(st.sampled_from(["payment", "payment", "payment", "label"]))
        event = Event(
            event_id=f"e{i}",
            type=kind,
            ts=T0 + draw(st.integers(0, 50)) * 1000,  # out of order and tied too
            user_id=draw(st.sampled_from(USERS)),
        )
        action = "allow" if kind == "label" else draw(st.sampled_from(ACTIONS))
        rules = [] if action == "allow" else draw(st.lists(st.sampled_from(RULES), max_size=2))
        decision = Decision(
            event_id=event.event_id,
            action=action,
            score=0,
            reasons=[Reason(code=r, rule=r, text=r) for r in rules],
            ruleset="t",
            model=None,
            latency_us=0,
        )
        state = None
        if action == "challenge":
            state = draw(st.sampled_from([None, "challenge:passed", "challenge:failed"]))
        out.append(Logged(event, decision, state))
    return out


@st.composite
def queries(draw: st.DrawFn) -> DecisionSearch:
    since = draw(st.none() | st.integers(0, 50))
    until = draw(st.none() | st.integers(0, 51))
    return DecisionSearch(
        user_id=draw(st.none() | st.sampled_from(USERS)),
        action=draw(st.none() | st.sampled_from(ACTIONS)),
        state=draw(
            st.none()
            | st.sampled_from(["decided", "challenge", "challenge:passed", "review", "review:open"])
        ),
        rule=draw(st.none() | st.sampled_from(RULES)),
        since_ms=None if since is None else T0 + since * 1000,
        until_ms=None if until is None else T0 + until * 1000,
        limit=draw(st.integers(1, 7)),
    )


def fill(recorder: Recorder, book: OutcomeBook, log: list[Logged]) -> None:
    for seq, item in enumerate(log, start=1):
        payload = msgspec.json.encode(item.event)
        recorder.append(item.event, payload, b"h%d" % seq, item.decision)
        if item.challenge_state is not None:
            record = OutcomeRecord(
                event_id=f"res-{seq}", type="challenge_result", ts=0, state=item.challenge_state
            )
            book.file(item.event.event_id, seq, record, "decided", [])
    recorder.flush()


def brute_force(log: list[Logged], q: DecisionSearch) -> list[str]:
    found = []
    for item in reversed(log):
        e, d = item.event, item.decision
        state = item.challenge_state or initial_state(d.action)
        if not (
            e.type == "label"
            or (q.user_id is not None and e.user_id != q.user_id)
            or (q.action is not None and d.action != q.action)
            or (q.since_ms is not None and e.ts < q.since_ms)
            or (q.until_ms is not None and e.ts >= q.until_ms)
            or (q.rule is not None and all(r.rule != q.rule for r in d.reasons))
            or (q.state is not None and state != q.state and not state.startswith(q.state + ":"))
        ):
            found.append(e.event_id)
    return found


def paged(recorder: Recorder, outcomes: Outcomes, q: DecisionSearch, max_scan: int) -> list[Any]:
    seen: list[str] = []
    for _ in range(200):  # a bound, so a cursor that loops fails instead of hanging
        page = search(recorder, outcomes, MemoryHoldBook(), q, now_ms=T0, max_scan=max_scan)
        assert len(page.decisions) <= q.limit
        seen += [d.event_id for d in page.decisions]
        if page.next_cursor is None:
            return seen
        q = msgspec.structs.replace(q, before_seq=int(page.next_cursor))
    raise AssertionError("the cursor never ended")


@settings(max_examples=60, deadline=None)
@given(logs(), st.lists(queries(), min_size=1, max_size=4), st.integers(1, 8))
def test_paged_search_equals_the_brute_force_filter(
    log: list[Logged], qs: list[DecisionSearch], max_scan: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp, postgres_log() as pg:
        recorders: list[Recorder] = [MemoryRecorder(), SQLiteRecorder(Path(tmp) / "log.db"), pg]
        for recorder in recorders:
            book = OutcomeBook()
            fill(recorder, book, log)
            outcomes = Outcomes(book, recorder)
            for q in qs:
                expected = brute_force(log, q)
                assert paged(recorder, outcomes, q, max_scan) == expected
                assert paged(recorder, outcomes, q, 50_000) == expected
            recorder.close()
