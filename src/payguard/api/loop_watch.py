"""The event loop's lag, watched from inside: every decision runs on the loop, so any stop
of the loop thread (a collection, a fork, an fsync, a long computation) delays every
request that falls due meanwhile.

A task sleeps `EVERY_S` at a time and records by how much each wake-up came late
(`engine.heap.STALLS`, cause `loop_lag`: `/metrics` shows the longest and how many were
over 50 ms). A busy loop also wakes it late (its turn waits for the callbacks ahead of
it), so at saturation the lag is queueing too; on a loop that keeps up it is the longest
stop. Costs one wake-up per `EVERY_S` (100 a second).
"""

import asyncio

from payguard.api.background import cancel
from payguard.engine.heap import STALLS

EVERY_S = 0.01


class LoopWatch:
    """`start` (on startup) begins watching, `stop` (on shutdown) ends it."""

    def __init__(self, every_s: float = EVERY_S) -> None:
        self.every_s = every_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="payguard-loop-watch")

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.every_s
            await asyncio.sleep(self.every_s)
            STALLS.record("loop_lag", max(0.0, loop.time() - due))

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
