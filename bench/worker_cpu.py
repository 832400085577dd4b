"""CPU per event of one worker on Redis, for base-beside-branch comparisons (issue 17).

Decides the simulated stream of bench.state_redis (seed 7, 20,000 customers' worth over 10
days, the first N events; the first quarter is warm-up, not timed) on one engine of
`bench.state_redis._engine`, and prints the user and system CPU µs per timed event —
figures that stay meaningful on a loaded machine, where wall clock does not. Run it from
each tree (its `src` and `bench` first on PYTHONPATH), alternating trees:

    PYTHONPATH=TREE/src:TREE python -m bench.worker_cpu single|cluster|none N [BATCH]

BATCH 0 (default): `Engine.process` per event; else `Engine.prefetch` of BATCH events,
`process_queued` of each and a flush, as the HTTP path's group commit decides a batch
(`PAYGUARD_BENCH_PREFETCH=0`: without the prefetch).
"""

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.state_redis import CLUSTER, PREFETCH, SINGLE, _clean, _engine
from payguard.sim import simulate
from payguard.sim.config import SimConfig
from payguard.state.redis import connect


def main(target: str, n: int, batch: int = 0) -> None:
    url = {"single": SINGLE, "cluster": CLUSTER, "none": None}[target]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        simulate(
            SimConfig(users=max(60, 20_000 * 10 // (18 * 10)), days=10, seed=7),
            path,
            Path(tmp) / "l",
        )
        lines = path.read_bytes().splitlines()[:n]
    prefix = f"w{uuid.uuid4().hex[:8]}"
    engine = _engine(url, prefix)
    events = [engine.decoder.decode(line) for line in lines]
    warm = len(events) // 4
    for event in events[:warm]:
        engine.process(event)
    timed = events[warm:]
    before, wall = os.times(), time.perf_counter()
    if batch:
        for start in range(0, len(timed), batch):
            events = timed[start : start + batch]
            if PREFETCH:
                engine.prefetch(events)
            for event in events:
                engine.process_queued(event)
            engine.flush()
    else:
        for event in timed:
            engine.process(event)
    after, wall = os.times(), time.perf_counter() - wall
    k = 1e6 / len(timed)
    print(
        f"{target} batch={batch}: user {(after.user - before.user) * k:.0f} "
        f"sys {(after.system - before.system) * k:.0f} µs/event, wall {wall * k:.0f} µs/event"
    )
    if url is not None:
        _clean(connect(url), prefix)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)
