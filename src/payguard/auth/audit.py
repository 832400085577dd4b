"""The audit log: an append-only, hash-chained record of every change of state that is
not an event — ruleset publish, hold release and revoke, key create and revoke, labels
and case actions once their routes record them.

Each entry says who (`actor`: `key:<key_id>` or `cli:<login>`, with the key's name), what
(`action`, `target`), the state `before` and `after` (small JSON values chosen by the
caller: versions, states, scopes — never clear card, ID or phone numbers) and when
(wall-clock epoch ms). Rows live in the `audit` table of `auth.db`; SQLite triggers refuse
UPDATE and DELETE, and each row carries `hash = SHA-256(prev_hash ‖ canonical JSON of
the row)`, so `verify()` finds any row changed, inserted or removed in the middle by
someone who went around the triggers. Cutting rows off the *end* leaves a valid shorter
chain: compare `head()` with a copy kept elsewhere (an export, a monitoring scrape) to
catch that.
"""

import csv
import hashlib
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

import msgspec

from payguard.auth.keys import connect
from payguard.types import EpochMs

GENESIS: Final = "0" * 64
"""The `prev_hash` of the first entry."""
ExportFormat = Literal["jsonl", "csv"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq        INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    before     TEXT NOT NULL,
    after      TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_action ON audit (action, seq);
CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor, seq);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
_COLUMNS = "seq, at_ms, actor, actor_name, action, target, before, after, prev_hash, hash"
_canonical = msgspec.json.Encoder(order="sorted").encode


class Actor(NamedTuple):
    """Who changes something, as the audit log names them: `id` is `key:<key_id>`,
    `user:<login>` or `cli:<login>`, `name` the key's or person's display name."""

    id: str
    name: str = ""


class AuditEntry(msgspec.Struct, frozen=True):
    seq: int
    at_ms: EpochMs
    actor: str
    actor_name: str
    action: str
    target: str
    before: Any
    after: Any
    prev_hash: str
    hash: str


class ChainBreak(msgspec.Struct, frozen=True):
    """The first entry whose hash or link does not match: the log was altered there."""

    seq: int
    reason: str


def entry_hash(
    prev_hash: str,
    seq: int,
    at_ms: EpochMs,
    actor: str,
    actor_name: str,
    action: str,
    target: str,
    before: Any,
    after: Any,
) -> str:
    """SHA-256 over the previous hash and the entry's canonical JSON (sorted keys)."""
    body = _canonical([seq, at_ms, actor, actor_name, action, target, before, after])
    return hashlib.sha256(prev_hash.encode() + b"\n" + body).hexdigest()


def _row_entry(row: tuple[Any, ...]) -> AuditEntry:
    seq, at_ms, actor, actor_name, action, target, before, after, prev_hash, digest = row
    return AuditEntry(
        seq,
        at_ms,
        actor,
        actor_name,
        action,
        target,
        msgspec.json.decode(before),
        msgspec.json.decode(after),
        prev_hash,
        digest,
    )


class AuditLog:
    """The `audit` table of `auth.db`. Appends are serialised by `BEGIN IMMEDIATE`, so the
    server and a CLI command writing at the same time still form one chain."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path)
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(_SCHEMA)

    def record(
        self,
        actor: str,
        action: str,
        target: str,
        before: Any,
        after: Any,
        *,
        at_ms: EpochMs,
        actor_name: str = "",
    ) -> AuditEntry:
        """Append one entry and return it (with its seq and hash)."""
        before_json, after_json = _canonical(before), _canonical(after)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                last = self._db.execute(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (1, GENESIS) if last is None else (int(last[0]) + 1, str(last[1]))
                fields = (at_ms, actor, actor_name, action, target)
                digest = entry_hash(prev, seq, *fields, before, after)
                self._db.execute(
                    f"INSERT INTO audit ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (seq, *fields, before_json.decode(), after_json.decode(), prev, digest),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return AuditEntry(
            seq, at_ms, actor, actor_name, action, target, before, after, prev, digest
        )

    def find(
        self,
        *,
        action: str | None = None,
        actor: str | None = None,
        since_ms: EpochMs | None = None,
        until_ms: EpochMs | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries oldest first with seq > `after_seq` (the page cursor), at_ms in
        [since_ms, until_ms), matching `action` (exact, or a prefix ending in `.`) and
        `actor` (exact)."""
        clauses: list[str] = ["seq > ?"]
        args: list[object] = [after_seq]
        if action is not None:
            if action.endswith("."):
                clauses.append("substr(action, 1, ?) = ?")
                args += [len(action), action]
            else:
                clauses.append("action = ?")
                args.append(action)
        if actor is not None:
            clauses.append("actor = ?")
            args.append(actor)
        if since_ms is not None:
            clauses.append("at_ms >= ?")
            args.append(since_ms)
        if until_ms is not None:
            clauses.append("at_ms < ?")
            args.append(until_ms)
        sql = f"SELECT {_COLUMNS} FROM audit WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [_row_entry(row) for row in rows]

    def entries(self) -> Iterator[AuditEntry]:
        """Every entry, oldest first, a page at a time."""
        after = 0
        while page := self.find(after_seq=after, limit=1000):
            yield from page
            after = page[-1].seq

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest entry; (0, GENESIS) for an empty log."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))

    def verify(self) -> ChainBreak | None:
        """Recompute the chain from the first entry; the first mismatch, or None."""
        prev, expected_seq = GENESIS, 1
        for entry in self.entries():
            if entry.seq != expected_seq:
                return ChainBreak(entry.seq, f"expected seq {expected_seq}: rows missing")
            if entry.prev_hash != prev:
                return ChainBreak(entry.seq, "prev_hash does not match the previous entry")
            digest = entry_hash(
                prev,
                entry.seq,
                entry.at_ms,
                entry.actor,
                entry.actor_name,
                entry.action,
                entry.target,
                entry.before,
                entry.after,
            )
            if digest != entry.hash:
                return ChainBreak(entry.seq, "content does not match its hash")
            prev, expected_seq = entry.hash, entry.seq + 1
        return None

    def close(self) -> None:
        with self._lock:
            self._db.close()


_CSV_FIELDS: Final = ("seq", "at_ms", "actor", "actor_name", "action", "target", "before", "after")
_CSV_FIELDS_CHAIN: Final = (*_CSV_FIELDS, "prev_hash", "hash")


def export_lines(entries: Iterator[AuditEntry], fmt: ExportFormat) -> Iterator[str]:
    """Each entry as one JSON line, or CSV with a header (before/after as JSON text)."""
    if fmt == "jsonl":
        for entry in entries:
            yield msgspec.json.encode(entry).decode() + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_FIELDS_CHAIN)
    for entry in entries:
        row = msgspec.structs.asdict(entry)
        for field in ("before", "after"):
            row[field] = _canonical(row[field]).decode()
        writer.writerow([row[field] for field in _CSV_FIELDS_CHAIN])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()
