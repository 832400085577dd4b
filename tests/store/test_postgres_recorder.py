"""The Postgres recorder as workers use it: several processes committing into one log at
once, and a worker killed (SIGKILL) mid-load losing nothing it had answered."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import msgspec

from payguard.decision import Decision
from payguard.events import Event
from payguard.store.postgres import SEQ_BLOCK, PostgresRecorder

T0 = 1_700_000_000_000
WORKER = """
import sys, msgspec
from payguard.decision import Decision
from payguard.events import Event
from payguard.store.postgres import PostgresRecorder
log = PostgresRecorder(sys.argv[1], schema=sys.argv[2])
i = 0
while True:
    batch = []
    for _ in range(25):
        i += 1
        e = Event(event_id=f"k{i}", type="payment", ts=1_700_000_000_000 + i, user_id="u")
        d = Decision(event_id=e.event_id, action="allow", score=0, reasons=[], ruleset="v",
                     model=None, latency_us=0, features={"n": i})
        log.append(e, msgspec.json.encode(e), b"h", d)
        batch.append(e.event_id)
    log.flush()
    print(" ".join(batch), flush=True)  # answered: only after the commit returned
"""


def _decision(event_id: str) -> Decision:
    return Decision(
        event_id=event_id,
        action="allow",
        score=0,
        reasons=[],
        ruleset="v",
        model=None,
        latency_us=0,
        features={"n": 1},
    )


def test_workers_commit_at_once_with_unique_numbers(pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    workers = [PostgresRecorder(dsn, schema=schema) for _ in range(3)]

    def run(index: int, log: PostgresRecorder) -> None:
        for batch in range(20):
            for j in range(30):
                e = Event(event_id=f"w{index}-{batch}-{j}", type="payment", ts=T0, user_id="u")
                log.append(e, msgspec.json.encode(e), b"h", _decision(e.event_id))
            log.flush()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reader = PostgresRecorder(dsn, schema=schema)
    rows = list(reader.events_after(0))
    assert len(rows) == 3 * 20 * 30
    seqs = [seq for seq, _, _ in rows]
    assert len(set(seqs)) == len(seqs) == len({e.event_id for _, e, _ in rows})
    for log in workers:  # each worker's numbers come from its own blocks
        assert log.last_seq() > 0
    assert reader.last_seq() == max(seqs) < 3 * 2 * SEQ_BLOCK + SEQ_BLOCK
    for log in [*workers, reader]:
        log.close()


def test_a_killed_worker_loses_nothing_it_answered(pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", WORKER, dsn, schema], stdout=subprocess.PIPE, env=env, text=True
    )
    assert child.stdout is not None
    answered: list[str] = []
    while len(answered) < 200:
        line = child.stdout.readline()
        assert line, "the worker stopped before it was killed"
        answered += line.split()
    child.send_signal(signal.SIGKILL)
    child.wait()
    answered += child.stdout.read().split()  # whatever it printed before it died
    log = PostgresRecorder(dsn, schema=schema)
    recorded = [e.event_id for _, e, _ in log.events_after(0)]
    assert set(answered) <= set(recorded)
    assert len(recorded) == len(set(recorded))
    # batches are atomic: the log holds whole batches of 25, never part of one
    assert len(recorded) % 25 == 0
    log.close()


def test_a_dropped_connection_fails_one_commit_and_the_next_reconnects(
    pg_schema: tuple[str, str],
) -> None:
    """A Postgres restart or failover drops the worker's connections: a commit that
    meets it fails (RecordError: its requests answer 503, nothing recorded) and the next
    one opens a new connection; a read is tried again on a new one at once. No worker
    restart."""
    import psycopg
    import pytest

    from payguard.store.base import RecordError

    dsn, schema = pg_schema
    log = PostgresRecorder(dsn, schema=schema)
    e = Event(event_id="r1", type="payment", ts=T0, user_id="u")
    log.append(e, msgspec.json.encode(e), b"h", _decision("r1"))
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)",
            ([log.connection.info.backend_pid, log._writer.info.backend_pid],),
        )
    with pytest.raises(RecordError):
        log.flush()
    log.flush()  # the sealed batch is committed on a new connection
    found = log.lookup("r1")  # its connection was dropped too: read again on a new one
    assert found is not None and found.decision.event_id == "r1"
    log.close()
