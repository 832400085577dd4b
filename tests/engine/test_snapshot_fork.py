"""Snapshots written by a forked child (durability.SnapshotWriter): the parent keeps
deciding while the child writes the state as it was at the fork, and a kill -9 of the
child half-way through its file leaves the previous snapshot valid and used."""

import logging
from pathlib import Path

import msgspec
import pytest
from engine_state import EXAMPLE_LINES, example_settings, whole_state

from payguard.engine import DuplicateEventError, Engine, durability
from payguard.events import EventError
from payguard.snapshots import decode_snapshot


def _process(engine: Engine, lines: list[bytes]) -> None:
    """As `payguard replay` does (rejected lines skipped), then flush."""
    for line in lines:
        try:
            engine.process(engine.decoder.decode(line))
        except (EventError, DuplicateEventError):
            continue
    engine.flush()


def _snapshot_seq(data_dir: Path) -> int:
    header, _ = decode_snapshot((data_dir / "state.snapshot").read_bytes())
    return header.seq


def test_the_child_writes_the_state_at_the_fork_while_the_parent_goes_on(
    tmp_path: Path,
) -> None:
    engine = Engine.open(example_settings(tmp_path / "live"))
    _process(engine, EXAMPLE_LINES[:3_000])
    at_fork = engine.recorder.last_seq()
    engine.write_snapshot(background=True)
    _process(engine, EXAMPLE_LINES[3_000:5_000])  # decided while the child writes
    assert engine.recorder.last_seq() > at_fork
    assert engine._snapshots is not None
    engine._snapshots.poll(wait=True)
    assert _snapshot_seq(tmp_path / "live") == at_fork

    reference = Engine.open(example_settings(tmp_path / "reference"))
    _process(reference, EXAMPLE_LINES[:3_000])
    _, body = decode_snapshot((tmp_path / "live" / "state.snapshot").read_bytes())
    assert body == reference._snapshot_body()
    engine.close()
    reference.close()


def test_snapshots_falling_due_are_forked_and_a_restart_uses_them(tmp_path: Path) -> None:
    settings = msgspec.structs.replace(example_settings(tmp_path), snapshot_every=1_000)
    engine = Engine.open(settings)
    _process(engine, EXAMPLE_LINES[:4_500])
    assert engine._snapshots is not None
    engine._snapshots.poll(wait=True)
    # A snapshot due while the previous child still writes is skipped (the next one due
    # covers it); the child runs at nice 19, so on a loaded machine it may still be
    # writing the first one when the later ones fall due.
    assert _snapshot_seq(tmp_path) in (1_000, 2_000, 3_000, 4_000)
    state = whole_state(engine)
    engine.recorder.close()  # a crash: no snapshot at close

    restarted = Engine.open(settings)
    assert whole_state(restarted) == state
    restarted.close()


def test_kill_9_of_the_child_mid_write_leaves_the_previous_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = example_settings(tmp_path)
    first = Engine.open(settings)
    _process(first, EXAMPLE_LINES[:2_000])
    first.close()
    previous = _snapshot_seq(tmp_path)

    engine = Engine.open(settings)
    _process(engine, EXAMPLE_LINES[2_000:3_500])
    monkeypatch.setattr(durability, "_FAULT", "snapshot-child-mid-write")
    engine.write_snapshot(background=True)
    assert engine._snapshots is not None
    with caplog.at_level(logging.WARNING, logger="payguard"):
        assert engine._snapshots.poll(wait=True) is None
    assert "failed in its child (exit -9)" in caplog.text  # SIGKILL, half-way through
    assert _snapshot_seq(tmp_path) == previous
    assert not list(tmp_path.glob("*.tmp"))
    state = whole_state(engine)
    engine.recorder.close()  # and now the parent dies too, before any other snapshot

    monkeypatch.setattr(durability, "_FAULT", "")
    restarted = Engine.open(settings)
    assert restarted._snapshot_seq == previous  # the previous snapshot, then the tail
    assert whole_state(restarted) == state
    restarted.close()


_ORPHAN_PARENT = """
import sys, time
from pathlib import Path
from payguard.datadir import lock_data_dir
from payguard.engine.durability import SnapshotWriter
from payguard.snapshots import SnapshotHeader

data_dir = Path(sys.argv[1])
lock_data_dir(data_dir)
writer = SnapshotWriter(data_dir / "state.snapshot")
header = SnapshotHeader(format=0, payguard="test", catalog="c", ruleset="r", seq=1)
writer.start(header, lambda: time.sleep(120))  # a child still writing when we die
print(writer._child[0], flush=True)
time.sleep(120)
"""


def test_a_snapshot_child_dies_with_its_killed_parent_and_frees_the_data_dir(
    tmp_path: Path,
) -> None:
    """kill -9 of the engine while its snapshot child writes: the restart must find the
    directory free at once (an orphan holding the inherited lock refused it, and could
    later rename an older snapshot over the new engine's)."""
    import signal
    import subprocess
    import sys
    import time

    from payguard.datadir import lock_data_dir

    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_PARENT, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 30  # liveness bound, not a speed figure
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the snapshot child outlived its parent"
    lock_data_dir(tmp_path).release()


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie awaiting its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
