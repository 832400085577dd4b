"""Group commit: many requests' events in one commit (one fsync), each answered after it.

The policy (docs/security.md, "Durability"; figures in docs/benchmarks.md):

- **Decide at once, in order.** A request's event is decided on the event loop as soon as
  it arrives (`Engine.process_queued`), so its decision sees every event decided before it,
  as one sequential process would; its record is queued and the state takes it.
- **One commit at a time, on a writer thread.** The queue is sealed and committed in one
  transaction (one fsync with `synchronous=FULL`) by a dedicated thread; SQLite releases
  the GIL while it writes and syncs, so the loop keeps accepting and deciding requests,
  whose records form the next batch. **Max wait: none** — a lone request is committed at
  once; a batch is whatever arrived during the previous commit. **Max batch:**
  `MAX_BATCH_EVENTS` events: a request that finds the queue that full waits before it is
  decided (a batch request joins whole: it is all or nothing).
- **Answered after its commit.** A request is answered only once the commit holding its
  event succeeded. Commits are acknowledged in order, so an answered decision rests only
  on durable events; a repeat of an event still in flight waits for its commit too.
- **A failed commit changes nothing.** Its requests and every request decided after them
  (their decisions read state that held the failed events) are answered 503; their
  records are discarded and the state is rebuilt from the log (`Engine.rebuild_state`).
- **Synchronous commits settle first.** Whatever commits on the loop thread (the OTP
  routes, a hold's resolution, a snapshot, shutdown) calls `Engine.settle`, which waits
  for the commit under way and then commits the queue, blocking the loop meanwhile.
"""

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from functools import partial
from typing import Final

from payguard.decision import Decision
from payguard.engine import DuplicateEventError, Engine, StorageError, fault_point
from payguard.engine.heap import STALLS
from payguard.events import Event, EventError
from payguard.store import SealedRecords

log = logging.getLogger("payguard.api")

MAX_BATCH_EVENTS: Final = 1_000
"""Events decided but not yet handed to a commit before new requests wait to be decided:
bounds a commit's size and so the wait of the requests behind it."""


class _Commit:
    """One batch: its requests share `outcome`, set once its commit is known."""

    __slots__ = ("done", "events", "outcome", "sealed", "work")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.outcome: asyncio.Future[None] = loop.create_future()
        self.events = 0
        self.sealed: SealedRecords | None = None
        self.work: Future[None] | None = None
        self.done = False


class GroupCommitter:
    """Decides events on the loop and makes them durable in group commits (see the module
    docstring). One per engine; it installs itself as `engine.settle`."""

    def __init__(self, engine: Engine, *, max_batch: int = MAX_BATCH_EVENTS) -> None:
        self._engine = engine
        self._recorder = engine.recorder
        self._max_batch = max_batch
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="payguard-commit")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: _Commit | None = None
        """Requests decided since the last seal: the next commit."""
        self._running: _Commit | None = None
        """The commit the writer thread is doing, if any."""
        self._start_scheduled = False
        self._room: asyncio.Event | None = None
        self._settling = False
        engine.settle = self.settle

    # -- the request path ---------------------------------------------------------------

    async def process(self, event: Event) -> tuple[Decision, bool]:
        """Decide and record one event; return (decision, was_repeat) once it is durable.
        Raises what `Engine.process_queued` raises when it refuses the event (nothing is
        recorded then), and StorageError when the commit fails (no state holds it)."""
        await self._wait_for_room()
        try:
            decision, repeat = self._engine.process_queued(event)
        except (DuplicateEventError, EventError):
            raise  # refused before anything was queued
        except Exception as exc:
            self._abandon(exc)
            raise
        if not repeat or self._recorder.is_pending(event.event_id):
            await asyncio.shield(self._join(0 if repeat else 1))
        return decision, repeat

    async def process_all(self, events: list[Event]) -> list[tuple[Decision, bool]]:
        """Decide and record checked events in order, all in one commit; return once it
        is durable (or raise StorageError: then none of them is recorded)."""
        await self._wait_for_room()
        process = self._engine.process_queued
        try:
            self._engine.prefetch(events)  # a shared state: the batch's reads in one trip
            processed = [process(event) for event in events]
        except Exception as exc:  # the batch was checked: whatever it is, undo it
            self._abandon(exc)
            raise
        await asyncio.shield(self._join(sum(not repeat for _, repeat in processed)))
        return processed

    async def _wait_for_room(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # the first request (or a test's new loop)
            assert self._open is None and self._running is None, "one loop at a time"
            self._loop, self._room = loop, asyncio.Event()
        assert self._room is not None
        while self._open is not None and self._open.events >= self._max_batch:
            self._room.clear()
            await self._room.wait()

    def _join(self, records: int) -> "asyncio.Future[None]":
        """The outcome of the commit that will hold everything queued so far, the
        `records` just queued included."""
        loop = self._loop
        assert loop is not None
        commit = self._open
        if records:
            if commit is None:
                commit = self._open = _Commit(loop)
            commit.events += records
            if self._running is None and not self._start_scheduled:
                self._start_scheduled = True
                loop.call_soon(self._start)  # requests ready now join this batch
        commit = commit or self._running
        if commit is None:  # a repeat whose commit just finished
            done: asyncio.Future[None] = loop.create_future()
            done.set_result(None)
            return done
        return commit.outcome

    # -- the commit pipeline ------------------------------------------------------------

    def _start(self) -> None:
        """Seal the open batch and hand it to the writer thread (if it is free)."""
        self._start_scheduled = False
        commit = self._open
        if self._running is not None or commit is None:
            return
        self._open = None
        if self._engine.state.shared:  # the batch's state writes land before its answers
            self._engine.send_state()
        commit.sealed = self._recorder.seal()
        self._running = commit
        commit.work = self._writer.submit(self._recorder.commit_sealed, commit.sealed)
        commit.work.add_done_callback(partial(self._wake, commit))
        if self._room is not None:
            self._room.set()

    def _wake(self, commit: _Commit, _work: "Future[None]") -> None:
        """On the writer thread: have the loop finish the commit."""
        loop = self._loop
        try:
            if loop is not None:
                loop.call_soon_threadsafe(self._finish, commit)
        except RuntimeError:  # the loop is closed: `settle` finished it
            pass

    def _finish(self, commit: _Commit, *, start_next: bool = True) -> None:
        """On the loop: the commit is done; answer its requests (once), start the next."""
        if commit.done:
            return
        commit.done = True
        self._running = None
        assert commit.work is not None and commit.sealed is not None
        error = commit.work.exception()
        if error is None:
            self._committed(commit, commit.sealed)
        else:
            self._failed(commit, error)
        if start_next and self._open is not None:
            self._start()

    def _committed(self, commit: _Commit, sealed: SealedRecords) -> None:
        engine = self._engine
        self._recorder.acknowledge(sealed)
        engine.metrics.group_commits += 1
        engine.metrics.group_committed_events += commit.events
        fault_point("after-event-log-commit")
        try:
            with STALLS.timed("after_commit"):
                engine.after_commit()
        except Exception:  # the events are durable: recovery files what is missing
            log.exception("writing what follows a commit failed")
        _settle(commit.outcome, None)
        if engine.snapshot_wanted and not self._settling:
            if engine.snapshot_busy():
                return  # the previous child still writes: the next one due covers this
            with STALLS.timed("snapshot_settle"):
                self.settle()  # the snapshot holds what the log holds
            engine.write_snapshot(background=True)  # a forked child writes it

    def _failed(self, commit: _Commit, error: BaseException) -> None:
        """Answer 503 to the failed commit's requests and to every request decided after
        them, and put the state back to what the log holds."""
        self._engine.metrics.storage_errors += 1
        failed = [commit] if self._open is None else [commit, self._open]
        self._open = None
        count = sum(c.events for c in failed)
        log.error(
            "event log commit failed, %d event(s) not recorded (answered 503): %s", count, error
        )
        for each in failed:
            each.done = True
            _settle(each.outcome, StorageError(str(error)))
        if self._room is not None:
            self._room.set()
        self._engine.rebuild_state()

    def _abandon(self, error: Exception) -> None:
        """A bug while deciding: the commit under way is finished as it stands (its
        events were decided before), then everything queued is dropped and the state
        rebuilt; the requests queued with it are answered 503, this one 500."""
        running = self._running
        if running is not None and running.work is not None:
            wait_for([running.work])
            self._finish(running, start_next=False)
        abandoned, self._open = self._open, None
        log.error("deciding an event failed; dropping what is queued: %r", error)
        if abandoned is not None:
            abandoned.done = True
            _settle(abandoned.outcome, StorageError("abandoned after a failure"))
        self._engine.rebuild_state()

    def settle(self) -> None:
        """Finish the commit under way, then commit everything queued, waiting on the
        calling thread (`Engine.settle`: before anything commits synchronously)."""
        if self._settling:
            return
        self._settling = True
        try:
            while self._running is not None or self._open is not None:
                if self._running is None:
                    self._start()
                running = self._running
                assert running is not None and running.work is not None
                wait_for([running.work])
                self._finish(running, start_next=False)
        finally:
            self._settling = False

    def close(self) -> None:
        """Settle and stop the writer thread (at shutdown, before the engine closes)."""
        self.settle()
        self._writer.shutdown(wait=True)


def _settle(outcome: "asyncio.Future[None]", error: BaseException | None) -> None:
    if outcome.done():
        return
    if error is None:
        outcome.set_result(None)
    else:
        outcome.set_exception(error)
        outcome.exception()  # marks it retrieved: requests that gave up need not see it
