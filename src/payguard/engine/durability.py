"""What survives a crash: the snapshot file, how it is checked on the way back in, and
the crash tests' fault points.

The event log is the truth; the snapshot only saves replaying it. So a snapshot is
written only right after a flush (it never holds an event the log lacks), atomically
(temporary file, fsync, rename), as checksummed MessagePack (payguard.snapshots), and any
doubt on reading it back (damaged, another format, another catalog, a log that is behind
it, graph and chain state missing or refused) means a warning and a full replay, which
rebuilds every state exactly. There is no pickle anywhere, so nothing to restrict.
"""

import gc
import importlib.metadata
import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from payguard.chains import ChainMatcher
from payguard.engine.compile import GRAPH_CONFIG
from payguard.graph import GraphFeatures
from payguard.holds import SQLiteHoldBook
from payguard.snapshots import FORMAT as SNAPSHOT_FORMAT
from payguard.snapshots import (
    SnapshotBody,
    SnapshotError,
    SnapshotHeader,
    decode_snapshot,
    encode_snapshot,
)
from payguard.store import SQLiteRecorder

log = logging.getLogger("payguard")

SNAPSHOT_FILE = "state.snapshot"
DATABASE_FILE = "payguard.db"
HOLDS_FILE = "holds.db"
OUTCOMES_FILE = "outcomes.db"

RESTORE_ERRORS = (ValueError, KeyError, TypeError, IndexError, msgspec.DecodeError)
"""What a state's `restore` raises on a snapshot it cannot take."""


class StorageError(OSError):
    """The event log could not commit (a full disk, an I/O error): nothing was recorded
    and no state changed (HTTP 503)."""


def snapshot_header(catalog: str, ruleset: str, seq: int) -> SnapshotHeader:
    """The header that says which catalog, ruleset and log position a snapshot holds."""
    return SnapshotHeader(
        format=SNAPSHOT_FORMAT,
        payguard=payguard_version(),
        catalog=catalog,
        ruleset=ruleset,
        seq=seq,
    )


def write_snapshot_file(
    path: Path, header: SnapshotHeader, body: Callable[[], SnapshotBody]
) -> None:
    """Encode and write atomically: a temporary file, synced, then renamed over the old
    one, so a crash leaves the old snapshot or the new one, never half of one. `body`
    builds the states' exports, with the automatic GC paused."""
    with gc_paused():  # exports build a tuple per edge and timeline, none cyclic
        data = encode_snapshot(header, body())
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_snapshot(
    path: Path | None, catalog: str, last_seq: int
) -> tuple[SnapshotHeader, SnapshotBody] | None:
    """The snapshot, if it is intact and fits this catalog and log; None (and a warning
    saying why) for a missing, damaged, foreign or mismatched file."""
    if path is None or not path.exists():
        return None
    try:
        header, body = decode_snapshot(path.read_bytes())
    except (OSError, SnapshotError) as exc:
        log.warning("ignoring state snapshot %s (%s); replaying the whole event log", path, exc)
        return None
    if header.format != SNAPSHOT_FORMAT:
        log.warning("ignoring snapshot of format %d; replaying all", header.format)
        return None
    if header.catalog != catalog or header.seq > last_seq:
        log.warning("ignoring snapshot taken with another catalog or log; replaying all")
        return None
    return header, body


def graph_and_chains(
    body: SnapshotBody, matcher: Callable[[], ChainMatcher]
) -> tuple[GraphFeatures, ChainMatcher] | None:
    """Graph and chain state restored into new objects, so that a snapshot refused
    half-way changes nothing; None (and a warning) if the snapshot cannot provide them:
    written with graph_chains off, with another graph configuration, or with other
    chain patterns. The caller then replays the whole log, which rebuilds all three
    states exactly."""
    if body.graph is None or body.chains is None:
        log.warning("ignoring snapshot without graph and chain state; replaying all")
        return None
    graph, chains = GraphFeatures(GRAPH_CONFIG), matcher()
    try:
        graph.restore(body.graph)
        chains.restore(body.chains)
    except RESTORE_ERRORS as exc:
        log.warning("ignoring snapshot (%s); replaying all", exc)
        return None
    return graph, chains


def hold_book(recorder: SQLiteRecorder, data_dir: Path) -> SQLiteHoldBook:
    """Holds in the event log's database; a separate `holds.db` of the earlier layout is
    copied in once and renamed `holds.db.migrated`."""
    book = SQLiteHoldBook.in_event_log(recorder)
    old = data_dir / HOLDS_FILE
    if old.exists():
        copied = book.migrate_from(old)
        old.rename(old.with_name(HOLDS_FILE + ".migrated"))
        log.info("moved %d hold(s) from %s into the event log's database", copied, old)
    return book


def payguard_version() -> str:
    try:
        return importlib.metadata.version("payguard")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def fault_point(point: str) -> None:
    """Crash tests' hook: with `PAYGUARD_FAULT=<point>` the process kills itself (SIGKILL)
    there, as a power cut would, so a test can show what survives (tests/durability)."""
    if point == _FAULT:
        os.kill(os.getpid(), signal.SIGKILL)


_FAULT = os.environ.get("PAYGUARD_FAULT", "")


@contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic GC inside: building millions of small acyclic objects at once (a
    snapshot's exports) otherwise triggers collections that rescan the whole state."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def batch_gc() -> Iterator[None]:
    """Keep Python's cyclic GC off a batch replay's growing feature state.

    Full collections rescan every timeline ever created and took about 12% of a replay.
    Decisions create no reference cycles worth chasing, so inside this block the automatic
    GC is off and the caller collects only the young generations at each flush
    (`gc.collect(1)`), which still reclaims the rare cycle (a rejected line's traceback)."""
    gc.freeze()
    try:
        with gc_paused():
            yield
    finally:
        gc.unfreeze()
