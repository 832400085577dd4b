"""Hold expiry as the server runs it: every second, holds whose release time has passed
are recorded as released by expiry and announced once (`Engine.expire_holds`).

A hold past its `release_ts` already reads as released; what this adds is the moment:
its stored state, an `outcome.changed` webhook (`hold:released`, `resolved_by: expiry`)
and the outcome listeners, each once — also across a restart, whose first run catches up
on the holds that came due while the server was down. It runs on the event loop, where
every route runs the engine (synchronous handlers), so it never races a request.
"""

import asyncio
import logging
from collections.abc import Callable

from payguard.api.background import cancel
from payguard.engine import Engine
from payguard.engine.heap import STALLS

log = logging.getLogger("payguard.api")

EVERY_S = 1.0
"""Seconds between two looks for due holds (a hold is announced at most this late)."""


class HoldExpiry:
    """`start` (on startup) runs once at once, then every `every_s`; `stop` ends it."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], int],
        every_s: float | None = None,
        before: Callable[[int], object] | None = None,
    ) -> None:
        """`before(now)` runs first each time: the cases' SLA, whose `revoke` breach
        action must take the money back before expiry pays it out."""
        self.engine = engine
        self.before = before
        self.clock = clock
        self.every_s = EVERY_S if every_s is None else every_s
        self._task: asyncio.Task[None] | None = None

    def run_once(self) -> int:
        """Expire what is due now; a storage error is logged and tried again next time."""
        try:
            now = self.clock()
            if self.before is not None:
                self.before(now)
            expired = self.engine.expire_holds(now)
        except Exception:
            log.exception("hold expiry failed; trying again in %.0f s", self.every_s)
            return 0
        if expired:
            log.info("%d hold(s) released by expiry", len(expired))
        return len(expired)

    async def start(self) -> None:
        self.run_once()
        self._task = asyncio.create_task(self._loop(), name="payguard-hold-expiry")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            with STALLS.timed("hold_expiry"):  # on the loop, once a second
                self.run_once()

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
