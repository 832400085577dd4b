"""Publishing to every worker: rulesets and lists reach all workers of a scaled-out
server within a second (docs/scale.md, "Publishing").

A worker that publishes (a `PUT /v1/ruleset`, a console publish or roll back, any list
change) takes the change at once, then posts a notice on the board the workers share
(payguard.board: a row in Postgres or a hash in Redis): the ruleset's YAML, or "lists
changed". Every worker polls the board's versions every `EVERY_S` (one small read, on a
thread) and takes what is newer on the event loop, where every route runs the engine, so
a swap never races a decision: a new ruleset is compiled and swapped in (`set_ruleset`),
the lists are read again. A worker that starts takes the board's ruleset, if one was
published, instead of its configured file: a published ruleset outlives every restart.

The board being unreachable changes no decision: the worker keeps its ruleset and lists,
logs once, and catches up when the board answers again.
"""

import asyncio
import logging
from typing import Final

from payguard.api.background import cancel
from payguard.board import Board, BoardError
from payguard.board.base import LISTS, RULESET
from payguard.cel import RuleError
from payguard.engine import Engine
from payguard.lists import ListService
from payguard.ruleset import Ruleset

log = logging.getLogger("payguard.api")

EVERY_S: Final = 0.1
"""Seconds between two polls: a notice reaches every worker within this plus one poll's
read and the swap (a ruleset's compile, tens of ms), well inside a second."""


class Publication:
    """One worker's side of the board: `announce` what is published here, `start` the
    poller that takes what others published."""

    def __init__(
        self, engine: Engine, lists: ListService | None, board: Board, every_s: float = EVERY_S
    ) -> None:
        self.engine = engine
        self.lists = lists
        self.board = board
        self.every_s = every_s
        self.seen: dict[str, int] = {}
        """Topic → the newest version this worker has taken (or posted)."""
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        engine.ruleset_published = self.announce_ruleset
        if lists is not None:
            lists.changed = self.announce_lists

    def adopt(self) -> None:
        """At start: take the board's ruleset (if any) and note every version."""
        try:
            versions = self.board.versions()
        except BoardError as exc:
            log.error("publication board unreachable at start (%s): configured ruleset", exc)
            return
        self.apply(versions)

    def announce_ruleset(self, ruleset: Ruleset) -> None:
        """A ruleset was published here: post it for the others."""
        self._post(RULESET, ruleset.source.encode())

    def announce_lists(self) -> None:
        """A list changed here (its file holds it): tell the others to read theirs."""
        self._post(LISTS, b"")

    def _post(self, topic: str, body: bytes) -> None:
        try:
            version = self.board.post(topic, body)
        except BoardError as exc:
            log.error("publication board unreachable: %s not announced (%s)", topic, exc)
            return
        self.seen[topic] = max(self.seen.get(topic, 0), version)

    def apply(self, versions: dict[str, int]) -> list[str]:
        """Take every topic whose version is newer than the one seen; returns them."""
        taken = []
        for topic, version in versions.items():
            if version <= self.seen.get(topic, 0):
                continue
            if topic == RULESET:
                self._take_ruleset()
            elif topic == LISTS and self.lists is not None:
                self.lists.reload()
            self.seen[topic] = version
            taken.append(topic)
        return taken

    def _take_ruleset(self) -> None:
        notice = self.board.read(RULESET)
        if notice is None or notice.body.decode() == self.engine.ruleset.source:
            return
        try:
            ruleset = self.engine.parse_ruleset(notice.body.decode())
        except (RuleError, ValueError, TypeError) as exc:  # checked where it was published
            log.error("published ruleset v%d refused here: %s", notice.version, exc)
            return
        previous = self.engine.ruleset.version
        self.engine.set_ruleset(ruleset)
        log.warning("ruleset taken from the board: %s -> %s", previous, ruleset.version)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="payguard-publication")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                versions = await asyncio.to_thread(self.board.versions)
            except BoardError as exc:
                if not self._failing:
                    log.error("publication board unreachable (%s); retrying", exc)
                self._failing = True
                continue
            self._failing = False
            try:
                self.apply(versions)
            except BoardError as exc:
                log.error("publication board read failed (%s); retrying", exc)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        self.board.close()
