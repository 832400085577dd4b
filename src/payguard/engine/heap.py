"""Keeping Python's cyclic garbage collector off the decision path.

The feature, graph and chain state is millions of small GC-tracked containers (lists,
dicts, tuples) and none of them is part of a reference cycle: reference counting frees
them. Under the default policy a full collection nevertheless traverses all of them, and
its pause grows with the state: 1.3–1.5 s per full collection on a server with 20,000
customers × 90 days of history (issue 16), and 2.25 s added to every restore.

The policy here (measured in docs/benchmarks.md, "pauses, memory and start-up on warm state"):

- after recovery, a restore or a bulk load (run with the automatic GC off):
  `gc.freeze()` moves every object alive into the permanent generation, which no
  collection traverses (`HeapPolicy.settle`; no collection first, see there);
- while serving: every `FREEZE_EVERY` recorded events the young generations are collected
  (which reclaims the request path's short-lived cycles: exceptions with their
  tracebacks, finished asyncio tasks) and what survived is frozen too. Generation 2 then
  never holds more than about one interval's survivors, so no automatic collection
  traverses more than that;
- a snapshot is taken in a forked child (durability.SnapshotWriter), frozen first so
  the child's collector does not touch (and copy) the parent's pages;
- `Engine.close` unfreezes: the state is going away and its cycles, if any, with it.

The price: a cycle that becomes garbage after it was frozen (a connection object that
lived through a freeze and then closed) is reclaimed only by a full collection after
`unfreeze`, i.e. at shutdown. `WATCH` records every collection's duration
(`gc.callbacks`) so `/metrics` shows the longest one and the frozen count
(`payguard_gc_*`).
"""

import gc
import time
from typing import Any

FREEZE_EVERY = 1_024
"""Recorded events between two young collections + freezes; at 4,000 events/s that is
four a second, each well under a millisecond (a young collection of ~1,000 events'
survivors, and a freeze, which only splices lists)."""


class CollectorWatch:
    """Every collection's duration, process-wide (one `gc.callbacks` entry however many
    engines a process opens: the collector's pauses are the process's, not an engine's)."""

    def __init__(self) -> None:
        self._started_ns = 0
        self.longest_pause_s = 0.0
        self.collections = [0, 0, 0]
        """Collections per generation since the process started watching."""

    def observe(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_ns = time.perf_counter_ns()
            return
        took = (time.perf_counter_ns() - self._started_ns) / 1e9
        self.longest_pause_s = max(self.longest_pause_s, took)
        self.collections[info["generation"]] += 1


WATCH = CollectorWatch()
gc.callbacks.append(WATCH.observe)


class HeapPolicy:
    """When an engine collects and freezes."""

    def __init__(self, every: int = FREEZE_EVERY) -> None:
        self._every = every
        self._since = 0

    @staticmethod
    def settle() -> None:
        """After recovery, a restore or a bulk load: freeze everything alive, without a
        collection first. Those run with the automatic GC off, so all they built is still
        in the young generation: collecting it would traverse the whole state (11 s on
        the shared VM at 20k × 90 days) to find no garbage, the state being acyclic."""
        gc.freeze()

    def tick(self) -> None:
        """One event recorded: every `FREEZE_EVERY` of them, collect the young
        generations (the request path's short-lived cycles: at most one interval's
        objects) and freeze what survived."""
        self._since += 1
        if self._since >= self._every:
            self._since = 0
            gc.collect(1)
            gc.freeze()

    @staticmethod
    def release() -> None:
        """Give the collector back every frozen object (the engine is closing)."""
        gc.unfreeze()

    @staticmethod
    def gauges() -> dict[str, float]:
        """The process's longest collection so far, its full collections, and how many
        objects are frozen (for `/metrics`)."""
        return {
            "payguard_gc_longest_pause_seconds": WATCH.longest_pause_s,
            "payguard_gc_full_collections_total": WATCH.collections[2],
            "payguard_gc_frozen_objects": gc.get_freeze_count(),
        }
