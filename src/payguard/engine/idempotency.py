"""Idempotency memory bounded by a window of event time, backed by the event log.

A repeated `event_id` must be answered with its recorded decision, never decided twice.
The log's unique index on `event_id` is the truth; this memory only spares a query for
the common case, a new event near the watermark. It holds the id (or, restored from a
snapshot, a 64-bit digest of the id) of every recorded event whose `ts` lies within
`WINDOW_MS` of the watermark, in one set per day of event time; a day that falls out of
the window is dropped whole. So its size is the events of about `WINDOW_MS` (two days:
~42,000 ids, a few MB, at 20,000 customers), not of the whole log (147 MiB of ids at
20k × 90 days before, rebuilt at every start).

What is asked of the log (`RecentIds.may_be_recorded` True):
- an event whose `ts` is older than the window: a late copy, a retry from a queue drained
  days later. The log answers exactly (an indexed query, a few µs);
- an id in the window (a repeat), or whose digest is among the restored ones (a repeat,
  or a 2⁻⁶⁴-rare digest collision).
A new event inside the window is known new without a query. The one case the window
cannot see, an id reused with another `ts` whose first record fell out of the window, is
a conflict (another payload): the log's unique index refuses the insert and the engine
answers DuplicateEventError (409) with nothing recorded or changed (`Engine._commit`).

The memory is saved in the snapshot and, after it, rebuilt from the replayed tail, so a
start never reads the log's ids.
"""

import hashlib
from array import array

from payguard.types import DAY_MS

WINDOW_MS = 2 * DAY_MS
"""How far behind the watermark (in event time) a repeat is answered from memory: far
beyond the lateness (10 minutes) and any client's retry policy."""


def digest(event_id: str) -> int:
    """A 64-bit digest of the id, the same in every process (the snapshot keeps them)."""
    raw = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(raw, "little", signed=True)


class RecentIds:
    """The ids of recorded events within `window_ms` of the watermark.

    Ids recorded by this process are kept as they are (a set of strings hashes each id
    once, with the string); only those a snapshot restored are digests, and only they need
    an event's digest to be asked about. The digest of every id cost ~3 % of a replay
    (issue 11): a process that started without a snapshot never computes one on the
    decision path, and one that did stops once the restored days leave the window. The
    snapshot still holds digests (`export`, in the snapshot's forked child)."""

    def __init__(self, window_ms: int = WINDOW_MS) -> None:
        self.window_ms = window_ms
        self._days: dict[int, set[str]] = {}
        """Day of event time (ts // DAY_MS) → ids recorded by this process with it."""
        self._restored: dict[int, set[int]] = {}
        """Day of event time → digests of the ids a snapshot held for it."""
        self._oldest_day = 0
        """Days before this one have been dropped."""

    def __len__(self) -> int:
        recorded = sum(len(ids) for ids in self._days.values())
        return recorded + sum(len(digests) for digests in self._restored.values())

    def may_be_recorded(self, event_id: str, ts: int, watermark: int) -> bool:
        """False only if the id is certainly not recorded yet: `ts` inside the window and
        the id unseen (its digest too, while restored digests are in the window). Any `ts`
        older than the window, or an id or digest seen, says ask the log."""
        if ts // DAY_MS < self._oldest_day or ts < watermark - self.window_ms:
            return True
        for ids in self._days.values():
            if event_id in ids:
                return True
        if self._restored:
            key = digest(event_id)
            for digests in self._restored.values():
                if key in digests:
                    return True
        return False

    def add(self, event_id: str, ts: int, watermark: int) -> None:
        """Remember a recorded event (`watermark` as it is after the event); drop the
        days that fell out of the window."""
        oldest = (watermark - self.window_ms) // DAY_MS
        if oldest > self._oldest_day:
            self._oldest_day = oldest
            for by_day in (self._days, self._restored):
                for day in [d for d in by_day if d < oldest]:
                    del by_day[day]
        day = ts // DAY_MS
        if day >= self._oldest_day:
            ids = self._days.get(day)
            if ids is None:
                ids = self._days[day] = set()
            ids.add(event_id)

    def export(self) -> dict[int, bytes]:
        """Per day, the digests as packed 64-bit integers (for the snapshot), the days in
        the order they were first remembered (restored ones first, as they were). The
        window's oldest day leads, empty if no id fell on it: `restore` takes the oldest
        day it is given as the window's start, and a window whose first days were quiet
        must not start later after a restart (new ids there would be sent to the log)."""
        restored, recorded = self._restored, self._days
        days = [*restored, *(day for day in recorded if day not in restored)]
        out: dict[int, bytes] = {}
        if self._oldest_day and self._oldest_day not in days:
            out[self._oldest_day] = b""
        for day in days:
            digests = set(restored.get(day, ()))
            digests.update(digest(event_id) for event_id in recorded.get(day, ()))
            out[day] = array("q", sorted(digests)).tobytes()
        return out

    def restore(self, days: dict[int, bytes] | None) -> None:
        """Take an `export`; raises ValueError for a snapshot without one (the caller
        then replays the whole log, which rebuilds it)."""
        if days is None:
            raise ValueError("snapshot without the recent event ids")
        restored: dict[int, set[int]] = {}
        for day, packed in days.items():
            digests = array("q")
            digests.frombytes(packed)
            restored[day] = set(digests)
        self._restored = restored
        self._days = {}
        self._oldest_day = min(restored, default=0)
