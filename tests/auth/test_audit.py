"""The audit log: append-only, hash-chained, tamper found by verify, exported whole."""

import csv
import io
import itertools
import json
import sqlite3
import threading
from pathlib import Path

import pytest

from payguard.auth import AUTH_DB, AuditLog, export_lines

T = 1_765_000_000_000


def _fill(log: AuditLog, n: int = 5) -> None:
    for i in range(n):
        log.record(
            f"key:k{i % 2}",
            "hold.release" if i % 2 else "ruleset.publish",
            f"target-{i}",
            {"state": "held", "i": i},
            {"state": "released", "nested": {"b": 1, "a": [i]}},
            at_ms=T + i,
            actor_name=f"name {i}",
        )


def _raw(path: Path) -> sqlite3.Connection:
    """Someone with the file, going around the triggers."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    return db


def test_entries_chain_and_verify(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / AUTH_DB)
    assert log.verify() is None
    _fill(log)
    entries = list(log.entries())
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == "0" * 64
    for earlier, later in itertools.pairwise(entries):
        assert later.prev_hash == earlier.hash
    assert log.verify() is None
    assert log.head() == (5, entries[-1].hash)
    assert entries[3].after == {"state": "released", "nested": {"b": 1, "a": [3]}}


def test_updates_and_deletes_are_refused(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / AUTH_DB)
    _fill(log, 2)
    db = sqlite3.connect(tmp_path / AUTH_DB, isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET actor = 'key:other' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 2")
    assert log.verify() is None


@pytest.mark.parametrize(
    ("sql", "seq", "reason"),
    [
        ('UPDATE audit SET after = \'{"state":"revoked"}\' WHERE seq = 3', 3, "content"),
        ("UPDATE audit SET actor = 'key:k9' WHERE seq = 1", 1, "content"),
        ("UPDATE audit SET at_ms = at_ms + 1 WHERE seq = 5", 5, "content"),
        ("DELETE FROM audit WHERE seq = 2", 3, "rows missing"),
        ("UPDATE audit SET hash = '" + "a" * 64 + "' WHERE seq = 2", 2, "content"),
    ],
)
def test_tampering_is_found_where_it_happened(
    tmp_path: Path, sql: str, seq: int, reason: str
) -> None:
    log = AuditLog(tmp_path / AUTH_DB)
    _fill(log)
    _raw(tmp_path / AUTH_DB).execute(sql)
    broken = log.verify()
    assert broken is not None
    assert (broken.seq, reason in broken.reason) == (seq, True), broken


def test_a_rewritten_row_with_a_recomputed_hash_breaks_the_next_link(tmp_path: Path) -> None:
    from payguard.auth.audit import entry_hash

    log = AuditLog(tmp_path / AUTH_DB)
    _fill(log)
    e = next(x for x in log.entries() if x.seq == 2)
    forged = entry_hash(e.prev_hash, 2, e.at_ms, "key:k9", "", e.action, e.target, None, None)
    _raw(tmp_path / AUTH_DB).execute(
        "UPDATE audit SET actor='key:k9', actor_name='', before='null', after='null', hash=? "
        "WHERE seq=2",
        (forged,),
    )
    broken = log.verify()
    assert broken is not None and broken.seq == 3
    assert "prev_hash" in broken.reason


def test_two_writers_form_one_chain(tmp_path: Path) -> None:
    """The server and a CLI command appending at once (two connections, two threads)."""
    a, b = AuditLog(tmp_path / AUTH_DB), AuditLog(tmp_path / AUTH_DB)

    def write(log: AuditLog, who: str) -> None:
        for i in range(50):
            log.record(who, "key.create", f"{who}-{i}", None, {"i": i}, at_ms=T + i)

    threads = [threading.Thread(target=write, args=(log, w)) for log, w in ((a, "x"), (b, "y"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert a.verify() is None
    assert a.head()[0] == 100


def test_find_filters_and_pages(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / AUTH_DB)
    _fill(log, 7)
    assert [e.seq for e in log.find(action="hold.release")] == [2, 4, 6]
    assert [e.seq for e in log.find(action="hold.")] == [2, 4, 6]
    assert [e.seq for e in log.find(actor="key:k0")] == [1, 3, 5, 7]
    assert [e.seq for e in log.find(since_ms=T + 2, until_ms=T + 5)] == [3, 4, 5]
    first = log.find(limit=3)
    second = log.find(after_seq=first[-1].seq, limit=3)
    assert [e.seq for e in first + second] == [1, 2, 3, 4, 5, 6]


def test_export_jsonl_and_csv_hold_every_entry(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / AUTH_DB)
    _fill(log, 3)
    lines = "".join(export_lines(log.entries(), "jsonl")).splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3]
    assert json.loads(lines[1])["before"] == {"state": "held", "i": 1}
    rows = list(csv.DictReader(io.StringIO("".join(export_lines(log.entries(), "csv")))))
    assert [row["seq"] for row in rows] == ["1", "2", "3"]
    assert json.loads(rows[2]["after"])["nested"] == {"a": [2], "b": 1}
    assert rows[2]["hash"] == log.head()[1]
    empty = AuditLog(tmp_path / "empty.db")
    assert "".join(export_lines(empty.entries(), "csv")).startswith("seq,at_ms,actor")
