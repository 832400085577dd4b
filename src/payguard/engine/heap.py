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
- while serving: no automatic full collection (`NO_FULL_COLLECTION`); every
  `FREEZE_EVERY` recorded events the young generations are collected
  (which reclaims the request path's short-lived cycles: exceptions with their
  tracebacks, finished asyncio tasks) and what survived is frozen too. Generation 2 then
  never holds more than about one interval's survivors, so no automatic collection
  traverses more than that;
- when serving begins (the app's start-up, `HeapPolicy.serving`): what start-up
  imported is frozen too, and the heap is moved onto huge pages in a thread (`HugePages`:
  the snapshot's fork then copies 512 times fewer page-table entries);
- a snapshot is taken in a forked child (durability.SnapshotWriter), frozen first so
  the child's collector does not touch (and copy) the parent's pages;
- `Engine.close` unfreezes: the state is going away and its cycles, if any, with it.

Pauses are watched by cause (`STALLS`): the event loop's lag, the snapshot's fork, a
synchronous settle of the group commit and what follows a commit on the loop; `/metrics`
shows the longest of each since serving began and how many exceeded 50 ms
(`payguard_stall_*`).

The price: a cycle that becomes garbage after it was frozen (a connection object that
lived through a freeze and then closed) is reclaimed only by a full collection after
`unfreeze`, i.e. at shutdown. `WATCH` records every collection's duration
(`gc.callbacks`) so `/metrics` shows the longest one and the frozen count
(`payguard_gc_*`), since serving began (`HeapPolicy.serving`).
"""

import contextlib
import ctypes
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("payguard")

FREEZE_EVERY = 1_024
"""Recorded events between two young collections + freezes; at 4,000 events/s that is
four a second, each well under a millisecond (a young collection of ~1,000 events'
survivors, and a freeze, which only splices lists)."""


NO_FULL_COLLECTION = 2**31 - 1
"""Generation 2's threshold while serving: no automatic full collection at all. Under
the default (10) one ran whenever the survivors since the last full collection reached a
quarter of its survivors, 8 times in two minutes of load on the 20k × 90-day state,
each traversing what had reached generation 2 since the last freeze (up to 92,000 tuples:
143 ms of CPU, 0.43 s of wall time, shared VM, issue 16). Nothing is lost by it: every
`FREEZE_EVERY` events the young generations are collected and all that survived is frozen,
where no full collection would look anyway."""
DEFAULT_FULL_THRESHOLD = 10


class CollectorWatch:
    """Every collection's duration, process-wide (one `gc.callbacks` entry however many
    engines a process opens: the collector's pauses are the process's, not an engine's)."""

    def __init__(self) -> None:
        self._started_ns = 0
        self.longest_pause_s = 0.0
        self.collections = [0, 0, 0]
        """Collections per generation since the process started watching."""
        self.longest_by_generation = [0.0, 0.0, 0.0]
        """The longest collection of each generation since `reset` (or the start)."""

    def reset(self) -> None:
        """Forget the longest pauses (serving begins: the start-up's imports and
        recovery are not the request path's); the counts stay."""
        self.longest_pause_s = 0.0
        self.longest_by_generation = [0.0, 0.0, 0.0]

    def observe(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_ns = time.perf_counter_ns()
            return
        took = (time.perf_counter_ns() - self._started_ns) / 1e9
        generation = info["generation"]
        self.longest_pause_s = max(self.longest_pause_s, took)
        self.longest_by_generation[generation] = max(self.longest_by_generation[generation], took)
        self.collections[generation] += 1


WATCH = CollectorWatch()
gc.callbacks.append(WATCH.observe)

STALL_S = 0.05
"""A stop of the loop thread longer than this counts as a stall (issue 16's bound on
any pause of the request path)."""


class StallWatch:
    """How long the loop thread was stopped, by cause: the event loop's own lag (a
    monitor task, api.loop_watch) and the steps known to block it (the snapshot's fork,
    a synchronous settle of the group commit, what follows a commit, the hold expiry).
    Wall-clock, so a busy machine inflates them; read them beside the load average."""

    def __init__(self) -> None:
        self.longest: dict[str, float] = {}
        self.stalls: dict[str, int] = {}
        """Stops longer than `STALL_S`, per cause."""

    def record(self, cause: str, seconds: float) -> None:
        self.longest[cause] = max(self.longest.get(cause, 0.0), seconds)
        if seconds > STALL_S:
            self.stalls[cause] = self.stalls.get(cause, 0) + 1
        else:
            self.stalls.setdefault(cause, 0)

    @contextmanager
    def timed(self, cause: str) -> Iterator[None]:
        """Record how long the block took under `cause`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.record(cause, time.perf_counter() - started)

    def reset(self) -> None:
        self.longest.clear()
        self.stalls.clear()

    def gauges(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for cause, seconds in sorted(self.longest.items()):
            out[f"payguard_stall_{cause}_longest_seconds"] = seconds
            out[f"payguard_stall_{cause}_over_50ms_total"] = self.stalls.get(cause, 0)
        return out


STALLS = StallWatch()


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
    def serving() -> None:
        """Serving begins (the app's start-up, its imports done): freeze what start-up
        left in the young generations, so that the first automatic full collection does
        not traverse the modules just imported (55 ms of CPU, 0.3 s of wall time on the
        shared VM), start the pause gauges from here, and move the heap onto huge pages
        in the background (`HUGE_PAGES`: what makes the snapshot's fork cheap)."""
        gc.collect(1)
        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, NO_FULL_COLLECTION)
        WATCH.reset()
        STALLS.reset()
        HUGE_PAGES.start()

    @staticmethod
    def release() -> None:
        """Give the collector back every frozen object and its full collections (the
        engine is closing)."""
        gc.unfreeze()
        young, middle, full = gc.get_threshold()
        if full == NO_FULL_COLLECTION:
            gc.set_threshold(young, middle, DEFAULT_FULL_THRESHOLD)

    @staticmethod
    def gauges() -> dict[str, float]:
        """The process's longest collection so far, its full collections, and how many
        objects are frozen (for `/metrics`)."""
        gauges = {
            "payguard_gc_longest_pause_seconds": WATCH.longest_pause_s,
            "payguard_gc_full_collections_total": WATCH.collections[2],
            "payguard_gc_young_collections_total": WATCH.collections[0] + WATCH.collections[1],
            "payguard_gc_full_longest_pause_seconds": WATCH.longest_by_generation[2],
            "payguard_gc_frozen_objects": gc.get_freeze_count(),
        }
        gauges["payguard_heap_huge_page_bytes"] = HUGE_PAGES.promoted
        return gauges | STALLS.gauges()


_MADV_HUGEPAGE = 14
_MADV_COLLAPSE = 25
"""Linux ≥ 6.1: collapse the range into transparent huge pages now, synchronously."""
_HUGE = 2 << 20
_STEP = 8 << 20
"""Bytes per madvise call: the kernel locks the range it collapses, so in steps (short
ones: a step holds the process's memory map while the loop may fault on it)."""

COLLAPSE_NICE = 19
"""The collapsing thread's nice value (Linux sets it per thread): see
`HugePages._promote_at_low_priority`."""


class HugePages:
    """Moves the process's anonymous heap onto 2 MiB transparent huge pages, in a thread.

    Why: the snapshot's fork copies the page tables of the whole process while it holds
    the GIL, and every decision waits: 210–330 ms for 1.8–2 GiB of small Python objects
    on 4 KiB pages on the shared VM, 20–35 ms once they sit on huge pages (512 times
    fewer entries to copy; /tmp probe in docs/benchmarks.md). The kernel here only gives
    huge pages to ranges that ask (`madvise` mode), and pymalloc's arenas never ask, so
    after start-up every anonymous read-write mapping is marked (`MADV_HUGEPAGE`) and
    collapsed (`MADV_COLLAPSE`), 64 MiB per call, in a daemon thread: ctypes releases
    the GIL, so the loop goes on serving meanwhile. Best effort: on another system, an
    older kernel or with huge pages off, the calls fail and nothing changes. After a
    fork, a write to a shared huge page splits it and copies 4 KiB as before."""

    def __init__(self) -> None:
        self.promoted = 0
        """Bytes the latest collapse left on huge pages."""
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin in the background (once per process)."""
        if self._thread is None and sys.platform.startswith("linux"):
            self._collapse_in_background()

    def again(self) -> None:
        """Collapse once more, in a new thread, if the heap was moved before (serving) and
        no collapse runs: a snapshot child has exited, and while it lived every write of
        the parent to a shared huge page split it (1,324 → 954 MiB on huge pages after
        two sweep rounds, and the next fork 160 ms instead of 43; collapsed again, 21 ms:
        docs/benchmarks.md)."""
        if self._thread is not None and not self._thread.is_alive():
            self._collapse_in_background()

    def _collapse_in_background(self) -> None:
        self._thread = threading.Thread(
            target=self._promote_at_low_priority, name="payguard-huge-pages", daemon=True
        )
        self._thread.start()

    def _promote_at_low_priority(self) -> None:
        """`promote` on this thread at the lowest CPU priority: the kernel's copying into
        huge pages (seconds of CPU for a 2 GiB heap) runs in this thread's name, on the
        loop's core if the server is pinned to one, and at equal priority it halved the
        loop's share for as long (3.8 s of requests up to 559 ms late after each
        snapshot at 1,000 req/s, docs/benchmarks.md); at the lowest it takes the idle time."""
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), COLLAPSE_NICE)
        self.promote()

    @property
    def collapsing(self) -> bool:
        """Whether the collapse is still under way: a fork now would copy the page tables
        of 4 KiB pages (200-340 ms at 20k × 90 days against 3-44 ms after; 13-19 s to
        collapse under load, docs/benchmarks.md), so the engine defers its snapshot."""
        return self._thread is not None and self._thread.is_alive()

    def promote(self) -> int:
        """Mark and collapse every anonymous read-write mapping; bytes collapsed."""
        try:
            madvise = ctypes.CDLL(None, use_errno=True).madvise
        except (OSError, AttributeError):
            return 0
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        promoted = failed = 0
        for low, high in anonymous_ranges():
            for start in range(low, high, _STEP):
                length = min(_STEP, high - start)
                madvise(start, length, _MADV_HUGEPAGE)
                if madvise(start, length, _MADV_COLLAPSE) == 0:
                    promoted += length
                else:
                    failed += length
        self.promoted = promoted  # this pass's: a later one covers the heap as it is then
        log.info("heap on huge pages: %d MiB (%d MiB could not be)", promoted >> 20, failed >> 20)
        return promoted


def anonymous_ranges() -> list[tuple[int, int]]:
    """The process's anonymous read-write mappings (the heap, pymalloc's arenas, large
    buffers), trimmed to whole 2 MiB pages."""
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if fields[1] != "rw-p" or (len(fields) > 5 and fields[5] != "[heap]"):
                continue
            low, high = (int(x, 16) for x in fields[0].split("-"))
            low = (low + _HUGE - 1) & ~(_HUGE - 1)
            high &= ~(_HUGE - 1)
            if high > low:
                ranges.append((low, high))
    return ranges


HUGE_PAGES = HugePages()
