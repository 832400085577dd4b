"""What a restart costs the first events after it, with idle records on (issue 16).

A serving engine (`Engine.open(serving=True)`, `encode_idle_after=auto`) on a copy of the
20k × 90-day warm state decides N1 of the open loop's events in process (a sweep round
encodes the idle records again), closes (its snapshot), opens again from that snapshot
and decides N2 more. Per block of 10,000 events after the restart it prints the CPU µs
per event and how many records were decoded (`FeatureState.thaw`), and the times to
close and to open again. Pinned to the first core; run it from each tree, one after the
other:

    python -m bench.restart_thaw [N1] [N2] [PATH/TO/OTHER/src]
"""

import sys
import time
from pathlib import Path
from typing import Any

from bench.warm_state import CURRENT, History, Tree
from bench.worker_floor import open_loop_bodies, run_on_warm_copy

BLOCK = 10_000


def _probe(n1: int, n2: int) -> None:
    """`python -m bench.restart_thaw probe N1 N2`, in the tree's environment on a scratch
    copy of the warm state."""
    from payguard.config import load_settings
    from payguard.engine import Engine
    from payguard.features.state import FeatureState

    thaws = [0]
    thaw = FeatureState.thaw

    def counted(self: FeatureState, *args: Any) -> Any:
        thaws[0] += 1
        return thaw(self, *args)

    FeatureState.thaw = counted  # type: ignore[method-assign,assignment]
    bodies = open_loop_bodies(History(20_000, 90), n1 + n2, "restart")

    def decide(engine: Engine, chunk: list[bytes], label: str) -> None:
        started, thaws[0] = time.process_time(), 0
        for i, body in enumerate(chunk):
            engine.process_queued(engine.decoder.decode(body))
            if i % 10 == 9:
                engine.flush()
            if i % BLOCK == BLOCK - 1:
                cpu_us = (time.process_time() - started) / BLOCK * 1e6
                print(f"{label} {i + 1}: {cpu_us:.1f} µs/event, {thaws[0]} records decoded")
                started, thaws[0] = time.process_time(), 0

    engine = Engine.open(load_settings(), serving=True)
    decide(engine, bodies[:n1], "before the restart")
    started = time.perf_counter()
    engine.close()
    print(f"close (snapshot): {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    engine = Engine.open(load_settings(), serving=True)
    engine.prepare()
    print(f"open from the snapshot: {time.perf_counter() - started:.2f} s")
    decide(engine, bodies[n1:], "after the restart")
    engine.close()


def run(tree: Tree, n1: int, n2: int) -> None:
    args = ["bench.restart_thaw", "probe", str(n1), str(n2)]
    run_on_warm_copy(History(20_000, 90), tree, args, PAYGUARD_ENCODE_IDLE_AFTER="auto")


def main() -> None:
    if sys.argv[1:2] == ["probe"]:
        _probe(int(sys.argv[2]), int(sys.argv[3]))
        return
    n1 = int(sys.argv[1]) if len(sys.argv) > 1 else 60_000
    n2 = int(sys.argv[2]) if len(sys.argv) > 2 else 30_000
    tree = Tree("base", Path(sys.argv[3])) if len(sys.argv) > 3 else CURRENT
    History(20_000, 90).build()
    run(tree, n1, n2)


if __name__ == "__main__":
    main()
