"""What a queue page, a case page and a list lookup cost with 100,000 cases, in the
embedded SQLite store and in Postgres (127.0.0.1:5432, database `test`, a schema of its
own, dropped after; skipped when unreachable).

    .venv/bin/python -m bench cases

The store is filled with `n` cases over 4 queues and 4 statuses (scores, amounts and
deadlines spread), then each query is timed `rounds` times and the median reported in
milliseconds: the first page of the open review queue in each order, the 50th page by
cursor (keyset: as cheap as the first), one entity's cases, one case with its alerts,
notes and history, and the queue summary (a scan of every case not closed). `contains_us`
is `ListService.contains` (what a rule's `deny_list` costs per event) on a list of
20,000 entries, half the probes listed, in microseconds.
"""

import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from payguard.auth import Actor
from payguard.cases import Alert, Case, CaseQuery, SqlCaseStore
from payguard.events import Tokenizer
from payguard.lists import ListService

PG_DSN = "host=127.0.0.1 port=5432 dbname=test"
T0 = 1_764_000_000_000
QUEUES = ("review", "holds", "step_up", "customer_reports")
STATUSES = ("open", "open", "investigating", "snoozed", "closed")


def _cases(n: int, rng: random.Random) -> list[Case]:
    return [
        Case(
            case_id=f"case_{i:08d}",
            queue=QUEUES[i % len(QUEUES)],
            entity_kind="account",
            entity_id=f"u{i}",
            status=STATUSES[rng.randrange(len(STATUSES))],  # type: ignore[arg-type]
            opened_ts=T0 + i * 1000,
            updated_ts=T0 + i * 1000,
            due_ts=T0 + rng.randrange(86_400_000),
            score=rng.randrange(101),
            amount=rng.randrange(10_000_000),
            alerts=1,
        )
        for i in range(n)
    ]


def _median_ms(call: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return round(statistics.median(times), 2)


def _measure(store: SqlCaseStore, n: int, rounds: int) -> dict[str, float]:
    rng = random.Random(7)
    store.put_many(_cases(n, rng))
    middle = f"case_{n // 2:08d}"
    for k in range(5):
        store.add_alert(middle, Alert(alert_id=f"a{k}", kind="review", event_id=f"e{k}", ts=T0))
    out: dict[str, float] = {}
    for order in ("time_left", "score", "amount"):
        query = CaseQuery(queue="review", status="open", order=order, limit=50)  # type: ignore[arg-type]
        out[f"page1_{order}_ms"] = _median_ms(lambda q=query: store.find(q), rounds)
    query = CaseQuery(queue="review", status="open", limit=50)
    page = store.find(query)
    for _ in range(48):
        page = store.find(msgspec.structs.replace(query, cursor=page.next_cursor))
    deep = msgspec.structs.replace(query, cursor=page.next_cursor)
    out["page50_time_left_ms"] = _median_ms(lambda: store.find(deep), rounds)
    entity = CaseQuery(entity_kind="account", entity_id=f"u{n // 3}")
    out["entity_filter_ms"] = _median_ms(lambda: store.find(entity), rounds)

    def detail() -> None:
        store.get(middle), store.alerts(middle), store.notes(middle), store.history(middle)

    out["case_detail_ms"] = _median_ms(detail, rounds)
    out["queue_summary_ms"] = _median_ms(store.queues, rounds)
    return out


def _contains_us(n: int) -> float:
    with tempfile.TemporaryDirectory(prefix="payguard-lists-") as tmp:
        lists = ListService(Path(tmp) / "lists.db", Tokenizer(b"bench-key-0123456789abcdef"), None)
        actor, now = Actor("bench"), T0
        lists.create("deny", "devices", "device", owner="b", reason="b", actor=actor, now_ms=now)
        for i in range(n):
            lists.add("deny", "devices", f"dev-{i}", reason="b", actor=actor, now_ms=now)
        probes = [f"dev-{i * 7919 % (2 * n)}" for i in range(100_000)]
        start = time.perf_counter_ns()
        for value in probes:
            lists.contains("deny", "devices", "device", value, now)
        elapsed = (time.perf_counter_ns() - start) / len(probes) / 1_000
        lists.close()
    return round(elapsed, 3)


def run(n: int = 100_000, rounds: int = 21) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="payguard-cases-") as tmp:
        store = SqlCaseStore.sqlite(Path(tmp) / "cases.db")
        try:
            results.update({f"sqlite_{k}": v for k, v in _measure(store, n, rounds).items()})
        finally:
            store.close()
    schema = f"cases_bench_{uuid.uuid4().hex[:8]}"
    try:
        store = SqlCaseStore.postgres(PG_DSN, schema=schema)
    except Exception:  # no Postgres here: SQLite figures only
        store = None
    if store is not None:
        try:
            results.update({f"postgres_{k}": v for k, v in _measure(store, n, rounds).items()})
        finally:
            store.close()
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    results["list_contains_us"] = _contains_us(20_000)
    return results
