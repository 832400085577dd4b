"""In-memory recorder: the same contract as SQLite, for tests and pure-CPU benchmarks."""

from collections.abc import Iterator

from payguard.decision import Decision
from payguard.events import Event
from payguard.store.base import LogFilter, SealedRecords, StoredDecision, as_recorded


class MemoryRecorder:
    on_disk = False
    remote = False

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._by_id: dict[str, tuple[Event, bytes, Decision]] = {}
        self._load_start: int | None = None
        """Where the bulk load under way started (`begin_load`); None: none is."""

    def lookup(self, event_id: str) -> StoredDecision | None:
        found = self._by_id.get(event_id)
        return StoredDecision(found[1], as_recorded(found[2])) if found else None

    def get_event(self, event_id: str) -> Event | None:
        found = self._by_id.get(event_id)
        return found[0] if found else None

    def append(self, event: Event, payload: bytes, payload_hash: bytes, decision: Decision) -> int:
        self._events.append(event)
        self._by_id[event.event_id] = (event, payload_hash, decision)
        return len(self._events)

    def flush(self) -> None:
        return None

    def seal(self) -> SealedRecords:
        """Nothing is queued: every record is kept when it is appended."""
        return SealedRecords([], [], [])

    def commit_sealed(self, sealed: SealedRecords) -> None:
        return None

    def acknowledge(self, sealed: SealedRecords) -> None:
        return None

    def is_pending(self, event_id: str) -> bool:
        return False

    def discard_pending(self) -> None:
        """Nothing is queued: a record is kept when it is appended."""

    def probe_write(self) -> None:
        """Memory always takes a write."""

    def begin_load(self) -> None:
        """Mark where a bulk load starts (see `SQLiteRecorder.begin_load`)."""
        self._load_start = len(self._events)

    def end_load(self, *, commit: bool) -> None:
        """Keep the load's records, or forget them."""
        if self._load_start is None:
            return
        if not commit:
            for event in self._events[self._load_start :]:
                del self._by_id[event.event_id]
            del self._events[self._load_start :]
        self._load_start = None

    def reload(self) -> None:
        """Nothing to read again: no other process can record in this log."""
        return None

    def last_seq(self) -> int:
        return len(self._events) if self._load_start is None else self._load_start

    def events_after(self, seq: int) -> Iterator[tuple[int, Event, str]]:
        for i in range(seq, len(self._events)):
            event = self._events[i]
            yield i + 1, event, self._by_id[event.event_id][2].action

    def newest(
        self, before_seq: int | None, filters: LogFilter
    ) -> Iterator[tuple[int, Event, Decision]]:
        top = self.last_seq() if before_seq is None else min(before_seq - 1, self.last_seq())
        for seq in range(top, 0, -1):
            event = self._events[seq - 1]
            decision = self._by_id[event.event_id][2]
            if _kept(event, decision, filters):
                yield seq, event, as_recorded(decision)

    def close(self) -> None:
        return None


def _kept(event: Event, decision: Decision, f: LogFilter) -> bool:
    return not (
        (f.user_id is not None and event.user_id != f.user_id)
        or (f.action is not None and decision.action != f.action)
        or (f.since_ms is not None and event.ts < f.since_ms)
        or (f.until_ms is not None and event.ts >= f.until_ms)
        or event.type in f.exclude_types
    )
