"""The outcome book: each decision's lifecycle state, the outcomes that moved it, and the
causes strong step-ups cleared; in memory, optionally journalled to SQLite.

Outcomes are events in the event log first (so replay, recovery and backtests see them);
the book is the index the engine and the API read them through. It is held in memory
(it grows with the number of outcomes, not of decisions) and, with a `path`, written to
its own SQLite file at the engine's flush, right after the event log, in one transaction.
A snapshot is written only after both, so recovery re-files exactly the outcomes the
book may have missed; filing is idempotent by the outcome's event_id.

Listeners (`subscribe`) hear each lifecycle change once, after it is durable, and never
while recovery re-files old outcomes.
"""

import logging
import sqlite3
from pathlib import Path

import msgspec

from payguard.outcomes.lifecycle import ANY_DEVICE
from payguard.outcomes.types import Clearance, LifecycleState, OutcomeListener, OutcomeRecord
from payguard.store.sqlite import add_missing_columns

log = logging.getLogger("payguard.outcomes")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    event_id     TEXT PRIMARY KEY,
    ref_event_id TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    body         BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS clearances (
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    rule        TEXT NOT NULL,
    until_ts    INTEGER NOT NULL,
    by_event_id TEXT NOT NULL,
    since_ts    INTEGER NOT NULL DEFAULT 0,
    max_fen     INTEGER,
    PRIMARY KEY (user_id, device_id, rule)
);
"""
_ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("since_ts", "INTEGER NOT NULL DEFAULT 0"),
    ("max_fen", "INTEGER"),
)
"""Clearance columns a book written before releases were scoped lacks (added on open;
its old releases keep no scope, as they were filed: `since_ts` is their end)."""


class OutcomeBook:
    """Lifecycle states, outcome histories and clearances (see the module docstring)."""

    def __init__(self, path: Path | None = None) -> None:
        self._states: dict[str, LifecycleState] = {}
        """decision event_id → state, for decisions some outcome has moved."""
        self._history: dict[str, list[OutcomeRecord]] = {}
        self._filed: set[str] = set()
        self._cleared: dict[str, dict[tuple[str, str], Clearance]] = {}
        """user_id → (device_id, rule) → clearance."""
        self._queued: list[tuple[str, str, int, bytes]] = []
        self._queued_clearances: list[Clearance] = []
        self._changes: list[tuple[str, str, str]] = []
        self._listeners: list[OutcomeListener] = []
        self.notifying = True
        """False while recovery re-files outcomes that were already announced."""
        self._encode = msgspec.msgpack.Encoder().encode
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = _open(path)
            self._load(self._db)

    # -- reading ----------------------------------------------------------------------------

    def state(self, event_id: str) -> LifecycleState | None:
        """The state an outcome moved the decision to, or None if none has."""
        return self._states.get(event_id)

    def history(self, event_id: str) -> list[OutcomeRecord]:
        """The outcomes filed against a decision, in the order they were filed."""
        return list(self._history.get(event_id, ()))

    def verdicts(self) -> dict[str, str]:
        """decision event_id → the latest label's verdict (`fraud` or `not_fraud`)."""
        found: dict[str, str] = {}
        for ref_event_id, records in self._history.items():
            labels = [r.label for r in records if r.label is not None]
            if labels:
                found[ref_event_id] = labels[-1]
        return found

    def is_filed(self, outcome_event_id: str) -> bool:
        return outcome_event_id in self._filed

    def cleared(
        self,
        user_id: str,
        device_id: str,
        rule: str,
        at_ms: int,
        amount: int | None = None,
        last_stop_ms: int | None = None,
    ) -> bool:
        """Whether a step-up cleared `rule` for this account and device at `at_ms`, or a
        label released it on every device (`lifecycle.ANY_DEVICE`) for an event of this
        `amount`, the account's latest stop being at `last_stop_ms` (`Clearance.covers`)."""
        mine = self._cleared.get(user_id, {})
        if device_id != ANY_DEVICE:
            found = mine.get((device_id, rule))
            if found is not None and at_ms < found.until_ts:
                return True
        anywhere = mine.get((ANY_DEVICE, rule))
        return anywhere is not None and anywhere.covers(at_ms, amount, last_stop_ms)

    def clears_any(self, user_id: str | None) -> bool:
        """Whether the account has any clearance (the decision path's cheap first test)."""
        return user_id is not None and user_id in self._cleared

    # -- writing ----------------------------------------------------------------------------

    def file(
        self,
        ref_event_id: str,
        seq: int,
        record: OutcomeRecord,
        old_state: LifecycleState,
        clearances: list[Clearance],
    ) -> None:
        """File one outcome (a repeat of its event_id is ignored); durable at `flush`."""
        if record.event_id in self._filed:
            return
        self._filed.add(record.event_id)
        self._history.setdefault(ref_event_id, []).append(record)
        self._states[ref_event_id] = record.state
        if record.state != old_state and self.notifying:
            self._changes.append((ref_event_id, old_state, record.state))
        for clearance in clearances:
            self._clear(clearance)
        if self._db is not None:
            self._queued.append((record.event_id, ref_event_id, seq, self._encode(record)))
            self._queued_clearances.extend(clearances)

    def _clear(self, clearance: Clearance) -> None:
        by_device_rule = self._cleared.setdefault(clearance.user_id, {})
        key = (clearance.device_id, clearance.rule)
        current = by_device_rule.get(key)
        if current is None or current.until_ts < clearance.until_ts:
            by_device_rule[key] = clearance

    def announce(self, ref_event_id: str, old_state: str, new_state: str) -> None:
        """Queue a change made elsewhere (a hold revoked or released in the hold book) for
        the listeners, told at the next `flush` (not while recovery re-files)."""
        if self.notifying:
            self._changes.append((ref_event_id, old_state, new_state))

    def subscribe(self, listener: OutcomeListener) -> None:
        """Call `listener(decision_event_id, old_state, new_state)` on each change."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: OutcomeListener) -> None:
        """Stop calling `listener` (a no-op when it is not subscribed)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def flush(self) -> None:
        """Write queued outcomes and clearances in one transaction, then tell listeners."""
        db = self._db
        if db is not None and (self._queued or self._queued_clearances):
            with db:
                db.execute("BEGIN")
                db.executemany("INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?, ?)", self._queued)
                db.executemany(
                    "INSERT INTO clearances (user_id, device_id, rule, until_ts, by_event_id, "
                    "since_ts, max_fen) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (user_id, device_id, rule) DO UPDATE SET "
                    "until_ts = excluded.until_ts, by_event_id = excluded.by_event_id, "
                    "since_ts = excluded.since_ts, max_fen = excluded.max_fen "
                    "WHERE excluded.until_ts > clearances.until_ts",
                    [msgspec.structs.astuple(c) for c in self._queued_clearances],
                )
            self._queued.clear()
            self._queued_clearances.clear()
        changes, self._changes = self._changes, []
        for ref_event_id, old, new in changes:
            for listener in self._listeners:
                try:
                    listener(ref_event_id, old, new)
                except Exception:  # a listener's bug must not undo a durable outcome
                    log.exception(
                        "outcome listener failed on %s (%s -> %s)", ref_event_id, old, new
                    )

    def reload(self) -> None:
        """Forget what is in memory and queued, and read the book back from its file (an
        engine putting its state back after a failed commit; the caller re-files the
        log's outcomes after the snapshot, which is idempotent)."""
        self._states.clear()
        self._history.clear()
        self._filed.clear()
        self._cleared.clear()
        self._queued.clear()
        self._queued_clearances.clear()
        self._changes.clear()
        if self._db is not None:
            self._load(self._db)

    def close(self) -> None:
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None

    def _load(self, db: sqlite3.Connection) -> None:
        decode = msgspec.msgpack.Decoder(OutcomeRecord).decode
        for ref_event_id, body in db.execute(
            "SELECT ref_event_id, body FROM outcomes ORDER BY seq, rowid"
        ):
            record = decode(body)
            self._filed.add(record.event_id)
            self._history.setdefault(ref_event_id, []).append(record)
            self._states[ref_event_id] = record.state
        for row in db.execute(
            "SELECT user_id, device_id, rule, until_ts, by_event_id, since_ts, max_fen "
            "FROM clearances"
        ):
            self._clear(Clearance(*row))


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    if "since_ts" in add_missing_columns(db, "clearances", _ADDED_COLUMNS):
        db.execute("UPDATE clearances SET since_ts = until_ts")  # unscoped: any stop before
    return db
