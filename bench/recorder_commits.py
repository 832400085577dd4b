"""What the event log's commit costs: the embedded SQLite recorder (`synchronous=FULL`)
beside the Postgres recorder of scaled-out workers (127.0.0.1:5432, database `test`, a
schema of its own, dropped after; skipped when unreachable).

    .venv/bin/python -m bench recorder

Real decisions first: the first 2,000 events of examples/events.jsonl are decided by an
in-memory engine on the default ruleset (with their features, as `--explain` records
them). Then, for each batch size (events per commit: 1, 10, 100, 1,000 — what a group
commit holds under light to heavy load), the records are appended under fresh event ids
and committed every batch: commits/s and events/s by the wall clock, and the recording
process's CPU µs per event (Postgres' own CPU is in its server processes, not counted).
`postgres_2w_*`: two recorders (two workers) committing batches of 100 at once from two
threads, into one log.
"""

import tempfile
import threading
import time
import uuid
from itertools import islice
from pathlib import Path
from typing import Any

import msgspec

from payguard.config import Settings
from payguard.decision import Decision
from payguard.engine import Engine, compile_ruleset
from payguard.events import Event
from payguard.features import FeatureState, load_catalog
from payguard.store import Recorder, SQLiteRecorder
from payguard.store.postgres import PostgresRecorder

PG_DSN = "host=127.0.0.1 port=5432 dbname=test"
REPO = Path(__file__).resolve().parents[1]
BATCHES = (1, 10, 100, 1_000)
COMMITS = {1: 300, 10: 200, 100: 60, 1_000: 10}
"""Commits timed per batch size (bounded so one size takes seconds, not minutes)."""


def _decided(n: int = 2_000) -> list[tuple[Event, bytes, Decision]]:
    settings = Settings(ruleset=REPO / "rules" / "default.yaml")
    features = FeatureState(load_catalog(settings.features), settings.utc_offset)
    ruleset = compile_ruleset(settings.ruleset.read_text(), features)
    engine = Engine.in_memory(settings, features, ruleset)
    out = []
    with (REPO / "examples" / "events.jsonl").open("rb") as lines:
        for line in islice(lines, n):
            event = engine.decoder.decode(line)
            decision, _ = engine.process(event)
            out.append((event, msgspec.json.encode(event), decision.public(True)))
    return out


def _fill(
    log: Recorder, decided: list[tuple[Event, bytes, Decision]], count: int, tag: str
) -> None:
    for i in range(count):
        event, payload, decision = decided[i % len(decided)]
        event_id = f"{tag}-{i}"
        log.append(
            msgspec.structs.replace(event, event_id=event_id),
            payload,
            b"h",
            msgspec.structs.replace(decision, event_id=event_id),
        )


def _measure(
    log: Recorder, decided: list[tuple[Event, bytes, Decision]], batch: int
) -> dict[str, float]:
    commits = COMMITS[batch]
    tag = uuid.uuid4().hex[:8]
    wall = cpu = 0.0
    for c in range(commits):
        _fill(log, decided, batch, f"{tag}-{c}")
        w, p = time.perf_counter(), time.process_time()
        log.flush()
        wall += time.perf_counter() - w
        cpu += time.process_time() - p
    events = commits * batch
    return {
        "commits_per_s": round(commits / wall, 1),
        "events_per_s": round(events / wall),
        "cpu_us_per_event": round(cpu / events * 1e6, 1),
    }


def _two_writers(
    dsn: str, schema: str, decided: list[tuple[Event, bytes, Decision]]
) -> dict[str, float]:
    logs = [PostgresRecorder(dsn, schema=schema) for _ in range(2)]
    commits, batch = 60, 100

    def run(index: int) -> None:
        for c in range(commits):
            _fill(logs[index], decided, batch, f"w{index}-{uuid.uuid4().hex[:6]}-{c}")
            logs[index].flush()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    for log in logs:
        log.close()
    return {
        "commits_per_s": round(2 * commits / wall, 1),
        "events_per_s": round(2 * commits * batch / wall),
    }


def run() -> dict[str, Any]:
    decided = _decided()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="payguard-recorder-") as tmp:
        lite = SQLiteRecorder(Path(tmp) / "events.db", synchronous="FULL")
        for batch in BATCHES:
            for k, v in _measure(lite, decided, batch).items():
                results[f"sqlite_b{batch}_{k}"] = v
        lite.close()
    schema = f"recorder_bench_{uuid.uuid4().hex[:8]}"
    try:
        pg = PostgresRecorder(PG_DSN, schema=schema)
    except Exception:  # no Postgres here: SQLite figures only
        return results
    try:
        for batch in BATCHES:
            for k, v in _measure(pg, decided, batch).items():
                results[f"postgres_b{batch}_{k}"] = v
        pg.close()
        for k, v in _two_writers(PG_DSN, schema, decided).items():
            results[f"postgres_2w_b100_{k}"] = v
    finally:
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
