"""Pauses on the decision path with warm state: the collector and the snapshots.

A fresh process of each code tree opens a copy of the warm data directory (bench.warm_state,
20,000 customers × 90 days) and decides `n` new events one at a time as the HTTP path does
(`process(commit=True)`: each committed before the next), with `snapshot_every` lowered so
that the run takes snapshots (`--snapshot-every`, default 20,000). No HTTP, so what is
left is the engine: per-event wall time (p50 / p99 / p99.9 / max) and, from `gc.callbacks`,
every collection's duration (the longest, and how many full ones). The event log runs
with `synchronous=NORMAL` so that the disk's fsync (about 10 ms a commit on the shared
VM) does not drown what is measured; the snapshots' fsyncs stay.

    python -m bench.pauses [--days 90] [--events 60000] [--compare PATH/TO/OTHER/src]
"""

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from bench.open_loop import templates
from bench.warm_state import CURRENT, History, Tree, last_json_line, run_python

_DRIVE = r"""
import gc, json, sys, time
import msgspec
from payguard.config import load_settings
from payguard.engine import Engine

pauses = []
started = [0]
def watch(phase, info):
    if phase == "start":
        started[0] = time.perf_counter_ns()
    else:
        pauses.append((info["generation"], (time.perf_counter_ns() - started[0]) / 1e6))
gc.callbacks.append(watch)

engine = Engine.open(load_settings())
bodies = [json.loads(line) for line in open(sys.argv[1])]
decode, process = engine.decoder.decode, engine.process
pauses.clear()
costs = []
for body in bodies:
    t = time.perf_counter_ns()
    process(decode(msgspec.json.encode(body)), commit=True)
    costs.append((time.perf_counter_ns() - t) / 1e6)
engine.recorder.close()
costs.sort()
n = len(costs)
full = [ms for gen, ms in pauses if gen == 2]
print(json.dumps({
    "events": n,
    "p50_ms": costs[n // 2], "p99_ms": costs[int(n * 0.99)], "p999_ms": costs[int(n * 0.999)],
    "max_ms": costs[-1],
    "slower_than_50ms": sum(1 for c in costs if c > 50),
    "gc_longest_ms": max((ms for _, ms in pauses), default=0.0),
    "gc_full_collections": len(full),
    "gc_full_longest_ms": max(full, default=0.0),
}))
"""


def events_file(history: History, n: int, path: Path) -> None:
    """`n` new events after the warm state's watermark, 250 ms of event time apart."""
    pool = templates(history)
    start = int(history.info()["watermark_ms"]) + 1_000
    with path.open("w") as fh:
        for i in range(n):
            body = dict(pool[i % len(pool)], event_id=f"pause-{i:07d}", ts=start + i * 250)
            fh.write(json.dumps(body) + "\n")


def drive(tree: Tree, history: History, events: Path, snapshot_every: int) -> dict[str, float]:
    data_dir, tmp = history.scratch_copy(tree)
    config = data_dir.parent / "bench.toml"
    config.write_text(f"snapshot_every = {snapshot_every}\n")
    try:
        stdout = run_python(
            tree,
            data_dir,
            _DRIVE,
            str(events),
            PAYGUARD_MAX_FUTURE_MS=str(10 * 365 * 86_400_000),
            PAYGUARD_SYNCHRONOUS="NORMAL",
            PAYGUARD_CONFIG=str(config),
        )
        return {k: round(v, 2) for k, v in last_json_line(stdout).items()}
    finally:
        tmp.cleanup()


def run(
    days: int = 90,
    n_events: int = 60_000,
    compare: Path | None = None,
    reps: int = 1,
    snapshot_every: int = 20_000,
) -> dict[str, Any]:
    history = History(20_000, days)
    history.build()
    trees = ([Tree("base", compare)] if compare is not None else []) + [CURRENT]
    events = history.root / f"pauses-{n_events}.jsonl"
    if not events.exists():
        events_file(history, n_events, events)
    runs: dict[str, list[dict[str, float]]] = {t.label: [] for t in trees}
    for _ in range(reps):
        for tree in trees:
            runs[tree.label].append(drive(tree, history, events, snapshot_every))
            print(f"  {tree.label}: {runs[tree.label][-1]}", flush=True)
    return {
        label: {k: statistics.median(r[k] for r in results) for k in results[0]}
        for label, results in runs.items()
    }


def flat() -> dict[str, float]:
    """`make bench`: this tree, flattened for the table."""
    return {f"{label} {k}": v for label, f in run().items() for k, v in f.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--compare", type=Path, default=None)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--snapshot-every", type=int, default=20_000)
    args = parser.parse_args()
    result = run(args.days, args.events, args.compare, args.reps, args.snapshot_every)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
