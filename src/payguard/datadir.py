"""The data directory: writable, and used by one payguard process at a time.

Two processes on one data directory each keep their own in-memory state over one event log
and corrupt each other (issue 14, failure 9). `serve`, `replay`, `decide` and `warm-up`
therefore take an exclusive `flock` on `payguard.lock` in the directory for as long as they
run; the kernel drops it when the process ends, even by kill -9, so no stale lock is ever
left behind. The file holds the holder's pid, for the error message. `Engine.open` itself
does not lock: embedding code (and the tests) own that choice. The lock is per process:
taking it again in the process that holds it returns the held lock (commands run in one
test process, one after the other, share it).
"""

import fcntl
import os
from pathlib import Path

LOCK_FILE = "payguard.lock"


class DataDirError(Exception):
    """The data directory cannot be used: one line for the operator, naming it."""


class DataDirLock:
    """An exclusive lock on one data directory, held until `release` or process exit."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


_HELD: dict[Path, DataDirLock] = {}
"""The data directories this process holds, by resolved path."""


def lock_data_dir(path: Path) -> DataDirLock:
    """Create the directory if needed, check that it is writable and lock it; raises
    DataDirError if it is not writable or another process holds it."""
    held = _HELD.get(path.resolve())
    if held is not None and held.held:
        return held
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DataDirError(f"data directory {path} is not writable: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DataDirError(
            f"data directory {path} is in use by another payguard process (pid {holder}); "
            "stop it first or use another --data-dir"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        raise DataDirError(f"data directory {path} is not writable: {exc.strerror}") from None
    held = _HELD[path.resolve()] = DataDirLock(path, fd)
    return held


def drop_inherited_locks() -> None:
    """In a forked child: close the lock descriptors inherited from the parent. The
    parent keeps its locks (a flock belongs to the open file, which the parent's own
    descriptor keeps open); without this a child outliving a killed parent would keep
    the directory locked and refuse the restart."""
    for lock in _HELD.values():
        lock.release()
