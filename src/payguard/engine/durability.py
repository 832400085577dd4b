"""What survives a crash: the snapshot file, how it is checked on the way back in, and
the crash tests' fault points.

The event log is the truth; the snapshot only saves replaying it. So a snapshot is
written only right after a flush (it never holds an event the log lacks), atomically
(temporary file, fsync, rename), as checksummed MessagePack (payguard.snapshots), and any
doubt on reading it back (damaged, another format, another catalog, a log that is behind
it, graph and chain state missing or refused) means a warning and a full replay, which
rebuilds every state exactly. There is no pickle anywhere, so nothing to restrict.
"""

import contextlib
import ctypes
import gc
import importlib.metadata
import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import msgspec

from payguard.chains import ChainMatcher
from payguard.config import Settings
from payguard.datadir import drop_inherited_locks
from payguard.engine.compile import GRAPH_CONFIG
from payguard.engine.heap import STALLS
from payguard.graph import GraphFeatures
from payguard.holds import PostgresHoldBook, SQLiteHoldBook
from payguard.snapshots import FORMAT as SNAPSHOT_FORMAT
from payguard.snapshots import (
    SnapshotBody,
    SnapshotError,
    SnapshotHeader,
    decode_snapshot,
    encode_snapshot,
)
from payguard.store import Recorder, SQLiteRecorder

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


CHILD_SYNC_BYTES = 8 << 20
"""A snapshot child syncs its file every this many bytes. Written whole and synced once,
a snapshot of a 20k × 90-day state is hundreds of MB of dirty pages that the next fsync
of the event log, on the same ext4 journal, may wait behind for seconds: every request
of that group commit waits with it. Synced in steps, a commit waits for one step at most."""


def write_snapshot_file(
    path: Path,
    header: SnapshotHeader,
    body: Callable[[], SnapshotBody],
    *,
    fault: str = "snapshot-mid-write",
    sync_every: int | None = None,
) -> None:
    """Encode and write atomically: a temporary file of this process, synced, then
    renamed over the old one, so a crash leaves the old snapshot or the new one, never
    half of one. `body` builds the states' exports, with the automatic GC paused.
    `fault` names the crash tests' fault point half-way through the bytes; `sync_every`
    (bytes) syncs the file in steps while it is written (CHILD_SYNC_BYTES)."""
    with gc_paused():  # exports build a tuple per edge and timeline, none cyclic
        data = memoryview(encode_snapshot(header, body()))
    tmp = _temporary(path, os.getpid())
    try:
        with tmp.open("wb") as fh:
            half = len(data) // 2
            _write_in_steps(fh, data[:half], sync_every)
            fault_point(fault)
            _write_in_steps(fh, data[half:], sync_every)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _sync_directory(path.parent)


def _write_in_steps(fh: BinaryIO, data: memoryview, sync_every: int | None) -> None:
    """Write `data`, synced every `sync_every` bytes (None: flushed only)."""
    step = sync_every or max(1, len(data))
    for start in range(0, len(data), step):
        fh.write(data[start : start + step])
        fh.flush()
        if sync_every:
            os.fdatasync(fh.fileno())


def _temporary(path: Path, pid: int) -> Path:
    """The temporary file a process writes a snapshot to before the rename."""
    return path.with_name(f"{path.name}.{pid}.tmp")


def _sync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX: the directory entry is data too)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SnapshotWriter:
    """Writes snapshots without stopping decisions: a forked child encodes and writes
    the state as it was at the fork (copy-on-write), while the parent keeps deciding.

    The crash guarantees are the synchronous write's: the child writes its own temporary
    file, syncs it and renames it over the old snapshot, so a kill -9 of the child (or of
    the parent, or a power cut) at any point leaves the previous snapshot or the new one.
    The snapshot's sequence is the log's at the fork, taken right after a flush, so it
    never holds an event the log lacks. One child at a time: a snapshot falling due
    while one is written is skipped (the next one covers it).

    The child touches nothing but the state and its file: no database, no logging (a
    lock another thread held at the fork stays held in the child), and it leaves with
    `os._exit`, running no atexit or finaliser of the parent's objects."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._child: tuple[int, int] | None = None
        """(pid, seq) of the child writing, if any."""

    @property
    def busy(self) -> bool:
        return self._child is not None

    def start(self, header: SnapshotHeader, body: Callable[[], SnapshotBody]) -> bool:
        """Fork a child that writes the snapshot; False (nothing started) if one is still
        writing. Call right after a flush, with the state in the header's position."""
        if self._child is not None:
            return False
        gc.freeze()  # the child's collector then traverses (and copies) none of the state
        parent = os.getpid()
        with STALLS.timed("fork"):  # copies the page tables: grows with the process
            pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which leaves by os._exit
            _child_writes(self.path, header, body, parent)
        self._child = (pid, header.seq)
        return True

    def poll(self, *, wait: bool = False) -> int | None:
        """The sequence of the snapshot a child finished writing since the last call
        (None: none finished, or it failed, which is logged). `wait`: block until the
        child in flight, if any, has exited."""
        if self._child is None:
            return None
        pid, seq = self._child
        try:
            done, status = os.waitpid(pid, 0 if wait else os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: its outcome is unknown
            done, status = pid, 1 << 8
        if done == 0:
            return None
        self._child = None
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            return seq
        _temporary(self.path, pid).unlink(missing_ok=True)
        log.warning("state snapshot at seq %d failed in its child (exit %d)", seq, code)
        return None


CHILD_NICE = 19
"""The snapshot child runs at the lowest CPU priority: it shares the cores with the
parent's event loop (on the same core if the server is pinned to one), and seconds of
encoding at equal priority would halve the loop's share of its core for as long, so
that the requests falling due meanwhile queue up (issue 16's multi-second tail)."""


def _child_writes(
    path: Path, header: SnapshotHeader, body: Callable[[], SnapshotBody], parent: int
) -> None:  # pragma: no cover - runs in the forked child
    """The forked child's whole life: write the snapshot, exit 0; any failure exits 1."""
    code = 1
    try:
        drop_inherited_locks()
        _die_with(parent)
        gc.disable()
        os.nice(CHILD_NICE)
        write_snapshot_file(
            path, header, body, fault="snapshot-child-mid-write", sync_every=CHILD_SYNC_BYTES
        )
        code = 0
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:  # pragma: no cover - runs in the forked child
    """Have the kernel kill this child when its parent dies (Linux `PR_SET_PDEATHSIG`),
    and leave now if the parent already has: a restarted engine must not race an orphan
    renaming an older snapshot over its own. A half-written temporary file is all an
    orphan leaves, and the previous snapshot stays whole (the crash guarantee above)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        raise ChildProcessError("the parent died before the snapshot began")


PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal the kernel sends this process when its parent dies."""


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


def open_log(settings: Settings) -> tuple[Recorder, SQLiteHoldBook]:
    """The event log and the hold book of `Engine.open`: SQLite in the data directory,
    holds committed in the log's transactions; or, with `log_dsn`, the Postgres log that
    scaled-out workers share, holds in a table beside it, committed in its transactions
    alike (docs/scale.md)."""
    data_dir = settings.data_dir
    if settings.log_dsn:  # psycopg is imported only here: a fifth of a second otherwise
        from payguard.store.postgres import PostgresRecorder

        shared = PostgresRecorder(settings.log_dsn)
        return shared, PostgresHoldBook.in_postgres_log(shared)
    recorder = SQLiteRecorder(data_dir / DATABASE_FILE, synchronous=settings.synchronous)
    return recorder, hold_book(recorder, data_dir)


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
