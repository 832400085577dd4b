"""The recorder interface: an append-only event log plus the decision for each event.

The engine's crash safety rests on one rule: an event and its decision are written in the
same transaction, and in-memory feature state is only ever persisted as a snapshot taken
right after a flush. A crash therefore loses either both or neither, and a restart rebuilds
state from the last snapshot plus the events recorded after it — nothing counted twice.
"""

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import msgspec

from payguard.decision import Decision
from payguard.events import Event


class RecordError(Exception):
    """A recorder other than SQLite could not read or write its log (Postgres: the
    server is unreachable, a statement failed). SQLite raises sqlite3.Error as it is."""


class DuplicateRecordError(RecordError):
    """A commit met event ids the log already holds (another worker recorded them first:
    the unique index on `event_id` answers duplicates across workers). Nothing of the
    commit is durable; `lookup` answers the recorded decisions."""

    def __init__(self, event_ids: list[str]) -> None:
        super().__init__(f"already recorded: {', '.join(event_ids[:5])}")
        self.event_ids = event_ids


class StoredDecision(msgspec.Struct, frozen=True):
    payload_hash: bytes
    decision: Decision
    """As recorded, with `features` in name order."""


class SealedRecords:
    """Records handed to one commit (`SQLiteRecorder.seal`): events with their decisions,
    the feature sets they first used, and the companions' writers. Read-only once made,
    so the writer thread can write them while the event loop appends new ones."""

    __slots__ = ("companions", "feature_sets", "ids", "rows")

    def __init__(
        self,
        rows: list[tuple[Any, ...]],
        feature_sets: list[tuple[int, bytes]],
        companions: list[Callable[[Any], None]],
        ids: dict[str, int] | None = None,
    ) -> None:
        self.rows = rows
        self.feature_sets = feature_sets
        self.companions = companions
        self.ids = {row[1]: index for index, row in enumerate(rows)} if ids is None else ids
        """event_id → index in `rows`, for lookups while the commit is under way: the
        recorder's own index of its queue, handed over (`ids`), not built again."""

    @property
    def last_seq(self) -> int:
        return int(self.rows[-1][0]) if self.rows else 0


class PendingRows:
    """What a batching recorder (SQLite, Postgres) answers about events it has queued or
    sealed but not yet made durable: their rows, kept in `_rows` (indexed by
    `_pending_ids`) and in each sealed batch."""

    _rows: list[tuple[Any, ...]]
    _pending_ids: dict[str, int]
    _sealed: list[SealedRecords]

    def _pending_row(self, event_id: str) -> tuple[Any, ...] | None:
        """The queued or sealed (not yet durable) row of an event, if any."""
        index = self._pending_ids.get(event_id)
        if index is not None:
            return self._rows[index]
        for sealed in self._sealed:
            index = sealed.ids.get(event_id)
            if index is not None:
                return sealed.rows[index]
        return None

    def is_pending(self, event_id: str) -> bool:
        """Whether the event is queued or sealed, i.e. recorded but not yet durable."""
        return self._pending_row(event_id) is not None

    def _commit_in_order(self) -> None:
        """Seal what is queued, then commit and acknowledge every sealed batch, oldest
        first (a synchronous flush: the batches a writer thread had not yet taken)."""
        if self._rows:
            self.seal()
        while self._sealed:
            sealed = self._sealed[0]
            self.commit_sealed(sealed)
            self.acknowledge(sealed)

    def seal(self) -> SealedRecords:
        raise NotImplementedError

    def commit_sealed(self, sealed: SealedRecords) -> None:
        raise NotImplementedError

    def acknowledge(self, sealed: SealedRecords) -> None:
        raise NotImplementedError


class Recorder(Protocol):
    """Everything the engine, the OTP service and the decision listing need of an event
    log; nobody looks behind it for a concrete class."""

    on_disk: bool
    """Whether records outlive the process. Stores kept beside the event log (OTP codes,
    the OTP outbox) are files when it is, in memory when it is not."""

    remote: bool
    """Whether a read is a round trip to a server (Postgres), not a local index (SQLite,
    memory): the engine then asks it only what its recent ids cannot answer."""

    def lookup(self, event_id: str) -> StoredDecision | None:
        """The payload hash and decision of an event already recorded."""
        ...

    def get_event(self, event_id: str) -> Event | None:
        """A recorded (tokenized) event, for feedback that references it."""
        ...

    def append(self, event: Event, payload: bytes, payload_hash: bytes, decision: Decision) -> int:
        """Queue an event with its decision; returns its sequence number. `payload` is the
        event's JSON, already encoded by the engine to hash it, so it is not encoded twice."""
        ...

    def flush(self) -> None:
        """Make every queued record durable, atomically."""
        ...

    def seal(self) -> SealedRecords:
        """Hand the queued records to one commit (`commit_sealed`) and start a new queue;
        they stay visible to `lookup` and `get_event` until acknowledged or discarded."""
        ...

    def commit_sealed(self, sealed: SealedRecords) -> None:
        """Commit sealed records atomically; safe on a writer thread while the owner
        appends and reads. Raises on failure (nothing of them is then durable)."""
        ...

    def acknowledge(self, sealed: SealedRecords) -> None:
        """The oldest sealed records were committed: they are durable now."""
        ...

    def is_pending(self, event_id: str) -> bool:
        """Whether the event is recorded but not yet durable (queued or sealed)."""
        ...

    def discard_pending(self) -> None:
        """Forget the records queued or sealed since the last flush: they belong to
        requests that are not answered with a decision."""
        ...

    def probe_write(self) -> None:
        """Raise (sqlite3.Error, OSError) when the log cannot take a write now: the
        readiness check's question. A log that cannot fail to write does nothing."""
        ...

    def begin_load(self) -> None:
        """Start a bulk load: records appended until `end_load` become durable together
        (`last_seq` does not move before), or not at all."""
        ...

    def end_load(self, *, commit: bool) -> None:
        """Make the load durable (`commit`) or discard every record it appended."""
        ...

    def reload(self) -> None:
        """Read the log again after another process recorded in it (a warm-up's checker):
        `last_seq`, `lookup` and `append` then follow on from what it wrote."""
        ...

    def last_seq(self) -> int:
        """Sequence number of the newest durable record (0 when empty)."""
        ...

    def events_after(self, seq: int) -> Iterator[tuple[int, Event, str]]:
        """Durable events with a larger sequence number, in sequence order, each with
        the action it was decided with (recovery files declined money as declined)."""
        ...

    def newest(
        self, before_seq: int | None, filters: "LogFilter"
    ) -> Iterator[tuple[int, Event, Decision]]:
        """Durable records newest first, from just below `before_seq` (None: the newest),
        narrowed by `filters` (decision listing, payguard.outcomes.listing)."""
        ...

    def close(self) -> None: ...


class LogFilter(msgspec.Struct, frozen=True):
    """What a recorder can narrow a newest-first scan by before decoding a record (the
    listing applies the rest): one account, one action, event time in [since, until)."""

    user_id: str | None = None
    action: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    exclude_types: frozenset[str] = frozenset()


def as_recorded(decision: Decision) -> Decision:
    """The decision as a lookup returns it: features in name order (recorders keep them
    in the order the engine read them, which is not the same)."""
    features = decision.features
    if isinstance(features, msgspec.UnsetType):
        return decision
    return msgspec.structs.replace(decision, features=dict(sorted(features.items())))
