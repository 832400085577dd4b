"""`ListService`: allow and deny lists, kept in SQLite and answered from memory.

Every change (a list created, an entry added or removed) is written to `lists.db` in the
data directory and to the audit log (who, why, before/after) before it is answered, and
is in the in-memory index at once, so the next event the engine decides sees it: no
restart, no reload. The engine reads the index through `contains` (rules.ListReader),
which costs one dict lookup per list a rule names.

Clear card, phone and ID numbers are tokenized with the events' own tokenizer on the way
in (`add(value=...)`): the token is what is stored, audited and shown.
"""

import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

import msgspec

from payguard.auth import Actor, AuditLog
from payguard.events import EventError, Tokenizer
from payguard.events.tokenize import clear_pii_in
from payguard.lists.types import (
    LIST_KINDS,
    LIST_SUBJECTS,
    TOKENIZED_SUBJECTS,
    ListEntry,
    ListError,
    ListInfo,
    ListKind,
    ListSubject,
)
from payguard.types import EpochMs

LISTS_DB: Final = "lists.db"
MAX_VALUE_CHARS: Final = 256
_TOKEN_PREFIX: Final[dict[ListSubject, str]] = {
    "card": "pan_",
    "phone": "tel_",
    "id_number": "idn_",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lists (
    kind TEXT NOT NULL, name TEXT NOT NULL, subject TEXT NOT NULL, owner TEXT NOT NULL,
    reason TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS list_entries (
    entry_id TEXT PRIMARY KEY, kind TEXT NOT NULL, list_name TEXT NOT NULL,
    body BLOB NOT NULL, removed_ms INTEGER
);
CREATE INDEX IF NOT EXISTS list_entries_list ON list_entries (kind, list_name);
"""


class ListService:
    """The lists of one data directory (`open`) or of one SQLite file."""

    def __init__(self, path: Path, tokenizer: Tokenizer, audit: AuditLog | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._tokenizer = tokenizer
        self._audit = audit
        self._lists: dict[tuple[str, str], ListInfo] = {}
        self._entries: dict[tuple[str, str], dict[str, ListEntry]] = {}
        """(kind, name) → entry_id → live-or-expired entry (removed ones are dropped)."""
        self._index: dict[tuple[str, str, str], dict[str, ListEntry]] = {}
        """(kind, name, value) → entry_id → entry: what `contains` reads."""
        self.changed: Callable[[], None] = _nothing
        """Called after every change is stored: scaled-out workers post a notice so the
        others `reload` (payguard.api.publication)."""
        self._load()

    def reload(self) -> None:
        """Read the lists again from the file: another worker changed them."""
        with self._lock:
            self._lists.clear()
            self._entries.clear()
            self._index.clear()
            self._load()

    @classmethod
    def open(cls, data_dir: Path, tokenizer: Tokenizer, audit: AuditLog | None) -> "ListService":
        return cls(data_dir / LISTS_DB, tokenizer, audit)

    # -- reading ---------------------------------------------------------------------------

    def contains(self, kind: str, name: str, subject: str, value: str, at_ms: int) -> bool:
        """rules.ListReader: whether `value` is live on list (kind, name) at `at_ms`. A list
        of another subject than the rule asks about never contains it."""
        found = self._index.get((kind, name, value))
        if not found:
            return False
        info = self._lists.get((kind, name))
        if info is None or info.subject != subject:
            return False
        return any(entry.live(at_ms) for entry in found.values())

    def lists(self) -> list[ListInfo]:
        """Every list, by kind then name, with its count of entries not expired now."""
        return [self._counted(info) for _, info in sorted(self._lists.items())]

    def get(self, kind: str, name: str) -> ListInfo:
        return self._counted(self._info(kind, name))

    def entries(
        self, kind: str, name: str, *, now_ms: EpochMs, include_expired: bool = False
    ) -> list[ListEntry]:
        """The list's entries, newest first (ListError 404 for an unknown list)."""
        self._info(kind, name)
        found = self._entries.get((kind, name), {}).values()
        shown = [e for e in found if include_expired or e.live(now_ms)]
        return sorted(shown, key=lambda e: (-e.added_ms, e.entry_id))

    def token_of(self, subject: ListSubject, value: str) -> str:
        """`value` as a list stores it: the token of a clear card, phone or ID number (a
        token of the right kind passes as it is), the id itself otherwise. ListError
        naming `value` for what cannot be one."""
        value = value.strip()
        if not value or len(value) > MAX_VALUE_CHARS:
            raise ListError("value", f"1 to {MAX_VALUE_CHARS} characters")
        if subject not in TOKENIZED_SUBJECTS:
            return value
        if value.startswith(_TOKEN_PREFIX[subject]):
            return value
        try:
            if subject == "card":
                return self._tokenizer.pan(value)[0]
            if subject == "phone":
                return self._tokenizer.phone(value)
            return self._tokenizer.id_number(value)
        except EventError as exc:
            raise ListError("value", f"not a {subject.replace('_', ' ')}: {exc.reason}") from None

    # -- changing --------------------------------------------------------------------------

    def create(
        self,
        kind: ListKind,
        name: str,
        subject: ListSubject,
        *,
        owner: str,
        reason: str,
        actor: Actor,
        now_ms: EpochMs,
    ) -> ListInfo:
        """A new, empty list (ListError 409 if (kind, name) exists), audited."""
        _check_choice("kind", kind, LIST_KINDS)
        _no_clear_pii("reason", reason)
        _check_choice("subject", subject, LIST_SUBJECTS)
        info = ListInfo(name, kind, subject, owner, reason, now_ms)
        with self._lock:
            if (kind, name) in self._lists:
                raise ListError("name", f"a {kind} list named {name!r} exists already", 409)
            self._db.execute(
                "INSERT INTO lists VALUES (?,?,?,?,?,?)",
                (kind, name, subject, owner, reason, now_ms),
            )
            self._lists[(kind, name)] = info
        self._record(actor, "list.create", f"{kind}:{name}", None, _info_json(info), now_ms)
        return info

    def add(
        self,
        kind: str,
        name: str,
        value: str,
        *,
        reason: str,
        actor: Actor,
        now_ms: EpochMs,
        expires_ms: EpochMs | None = None,
        case_id: str | None = None,
    ) -> ListEntry:
        """Put `value` (clear or token for cards, phones and ID numbers) on the list, live
        from now until `expires_ms` (None: until removed). Audited with the token only."""
        info = self._info(kind, name)
        _no_clear_pii("reason", reason)
        if expires_ms is not None and expires_ms <= now_ms:
            raise ListError("expires_ms", "must be in the future")
        token = self.token_of(info.subject, value)
        entry = ListEntry(
            entry_id=f"le_{secrets.token_hex(8)}",
            list_name=name,
            kind=info.kind,
            subject=info.subject,
            value=token,
            reason=reason,
            owner=actor.name or actor.id,
            added_ms=now_ms,
            expires_ms=expires_ms,
            case_id=case_id,
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO list_entries VALUES (?,?,?,?,NULL)",
                (entry.entry_id, entry.kind, name, msgspec.json.encode(entry)),
            )
            self._index_entry(entry)
        after = {"entry_id": entry.entry_id, "value": token, "expires_ms": expires_ms}
        self._record(actor, "list.add", f"{kind}:{name}", None, {**after, "reason": reason}, now_ms)
        return entry

    def remove(
        self, kind: str, name: str, entry_id: str, *, reason: str, actor: Actor, now_ms: EpochMs
    ) -> ListEntry:
        """Take one entry off the list (ListError 404 if it is not on it), audited."""
        self._info(kind, name)
        with self._lock:
            entry = self._entries.get((kind, name), {}).get(entry_id)
            if entry is None:
                raise ListError("entry_id", f"no entry {entry_id!r} on {kind} list {name!r}", 404)
            self._db.execute(
                "UPDATE list_entries SET removed_ms = ? WHERE entry_id = ?", (now_ms, entry_id)
            )
            self._unindex_entry(entry)
        before = {"entry_id": entry_id, "value": entry.value}
        self._record(actor, "list.remove", f"{kind}:{name}", before, {"reason": reason}, now_ms)
        return entry

    def remove_value(
        self, kind: str, name: str, value: str, *, reason: str, actor: Actor, now_ms: EpochMs
    ) -> list[ListEntry]:
        """Take every entry of `value` (clear or token) off the list; what was removed."""
        info = self._info(kind, name)
        token = self.token_of(info.subject, value)
        found = list(self._index.get((kind, name, token), {}).values())
        for entry in found:
            self.remove(kind, name, entry.entry_id, reason=reason, actor=actor, now_ms=now_ms)
        return found

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- internals -------------------------------------------------------------------------

    def _info(self, kind: str, name: str) -> ListInfo:
        info = self._lists.get((kind, name))
        if info is None:
            raise ListError("name", f"no {kind} list named {name!r}", 404)
        return info

    def _counted(self, info: ListInfo) -> ListInfo:
        entries = self._entries.get((info.kind, info.name), {})
        return msgspec.structs.replace(info, entries=len(entries))

    def _load(self) -> None:
        for row in self._db.execute(
            "SELECT kind, name, subject, owner, reason, created_ms FROM lists"
        ):
            kind, name, subject, owner, reason, created = row
            self._lists[(kind, name)] = ListInfo(name, kind, subject, owner, reason, created)
        rows = self._db.execute("SELECT body FROM list_entries WHERE removed_ms IS NULL")
        for (body,) in rows:
            self._index_entry(msgspec.json.decode(body, type=ListEntry))

    def _index_entry(self, entry: ListEntry) -> None:
        self._entries.setdefault((entry.kind, entry.list_name), {})[entry.entry_id] = entry
        key = (entry.kind, entry.list_name, entry.value)
        self._index.setdefault(key, {})[entry.entry_id] = entry

    def _unindex_entry(self, entry: ListEntry) -> None:
        self._entries.get((entry.kind, entry.list_name), {}).pop(entry.entry_id, None)
        key = (entry.kind, entry.list_name, entry.value)
        found = self._index.get(key)
        if found is not None:
            found.pop(entry.entry_id, None)
            if not found:
                del self._index[key]

    def _record(
        self, actor: Actor, action: str, target: str, before: object, after: object, now: int
    ) -> None:
        if self._audit is not None:
            self._audit.record(
                actor.id, action, target, before, after, at_ms=now, actor_name=actor.name
            )
        self.changed()


def _info_json(info: ListInfo) -> dict[str, object]:
    return {"subject": info.subject, "owner": info.owner, "reason": info.reason}


def _no_clear_pii(field: str, text: str) -> None:
    if kind := clear_pii_in(text):
        raise ListError(field, f"holds {kind} in clear: the reason is audited as written")


def _check_choice(field: str, value: str, allowed: Iterable[str]) -> None:
    if value not in allowed:
        raise ListError(field, f"{value!r} is not one of: {', '.join(allowed)}")


def _nothing() -> None:
    """No one to tell of a change (one process)."""
