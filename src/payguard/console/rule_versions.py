"""Ruleset versions published from the console: who, when, the YAML, and the diff to the
one before, so a lead can read what changed and roll back to any earlier version.

The engine keeps only the active ruleset; this table (`rule_versions` in
`<data_dir>/console.db`) keeps every one the console published, plus the ruleset the
server started with (recorded as `author = "startup"` the first time the console sees
it). Rolling back publishes an earlier version's text again as a new row, so the history
stays append-only.
"""

import difflib
import sqlite3
import threading
from pathlib import Path
from typing import Final

import msgspec

from payguard.types import EpochMs

CONSOLE_DB: Final = "console.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_versions (
    number       INTEGER PRIMARY KEY,
    version      TEXT NOT NULL,
    author       TEXT NOT NULL,
    at_ms        INTEGER NOT NULL,
    note         TEXT NOT NULL,
    source       TEXT NOT NULL,
    rolled_back_to INTEGER
);
"""


class RuleVersion(msgspec.Struct, frozen=True):
    number: int
    version: str
    author: str
    at_ms: EpochMs
    note: str
    source: str
    rolled_back_to: int | None = None


class RuleVersions:
    """The version history, oldest first by `number`."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(_SCHEMA)

    def add(
        self,
        version: str,
        source: str,
        *,
        author: str,
        at_ms: EpochMs,
        note: str = "",
        rolled_back_to: int | None = None,
    ) -> RuleVersion:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO rule_versions (version, author, at_ms, note, source, rolled_back_to)"
                " VALUES (?,?,?,?,?,?)",
                (version, author, at_ms, note, source, rolled_back_to),
            )
        number = int(cursor.lastrowid or 0)
        return RuleVersion(number, version, author, at_ms, note, source, rolled_back_to)

    def ensure_current(self, version: str, source: str, *, at_ms: EpochMs) -> None:
        """Record the running ruleset as `startup` unless the newest row already is it
        (a restart, or the first visit of a fresh console)."""
        newest = self.newest()
        if newest is None or newest.version != version:
            self.add(version, source, author="startup", at_ms=at_ms)

    def newest(self) -> RuleVersion | None:
        listed = self.list(limit=1)
        return listed[0] if listed else None

    def list(self, limit: int = 100) -> list[RuleVersion]:
        """Newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT number, version, author, at_ms, note, source, rolled_back_to"
                " FROM rule_versions ORDER BY number DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [RuleVersion(*row) for row in rows]

    def get(self, number: int) -> RuleVersion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT number, version, author, at_ms, note, source, rolled_back_to"
                " FROM rule_versions WHERE number = ?",
                (number,),
            ).fetchone()
        return None if row is None else RuleVersion(*row)

    def previous(self, number: int) -> RuleVersion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT number FROM rule_versions WHERE number < ? ORDER BY number DESC LIMIT 1",
                (number,),
            ).fetchone()
        return None if row is None else self.get(int(row[0]))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> list[str]:
    """The change between two rulesets' YAML, line by line."""
    return list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), old_name, new_name, lineterm="", n=2
        )
    )
