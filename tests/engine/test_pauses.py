"""What keeps pauses off the loop (issue 16), asserted by structure, not by timing: the
snapshot is written by another process at the lowest CPU priority, synced in steps; a
snapshot falling due while one is written does not settle the group commit; serving
starts with everything alive frozen; the stall watch counts by cause."""

import gc
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest
from engine_state import EXAMPLE_LINES, example_settings

from payguard.engine import Engine, core, durability
from payguard.engine.heap import (
    COLLAPSE_NICE,
    DEFAULT_FULL_THRESHOLD,
    HUGE_PAGES,
    NO_FULL_COLLECTION,
    STALLS,
    WATCH,
    HeapPolicy,
    HugePages,
    StallWatch,
    anonymous_ranges,
)
from payguard.events import EventError
from payguard.snapshots import SnapshotBody, decode_snapshot


def _engine(data_dir: Path, lines: int = 1_000) -> Engine:
    engine = Engine.open(example_settings(data_dir))
    for line in EXAMPLE_LINES[:lines]:
        try:
            engine.process(engine.decoder.decode(line))
        except EventError:
            continue
    engine.flush()
    return engine


def _frozen(obj: object) -> bool:
    """Tracked, yet in no generation a collection traverses."""
    return gc.is_tracked(obj) and not any(o is obj for o in gc.get_objects())


def test_the_snapshot_is_written_by_another_process_at_the_lowest_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "child.json"
    written = durability.write_snapshot_file

    def spy(path: Path, header: Any, body: Any, **options: Any) -> None:
        facts = {"pid": os.getpid(), "nice": os.nice(0), "sync_every": options["sync_every"]}
        seen.write_bytes(msgspec.json.encode(facts))
        written(path, header, body, **options)

    monkeypatch.setattr(durability, "write_snapshot_file", spy)  # the child inherits it
    engine = _engine(tmp_path / "data")
    engine.write_snapshot(background=True)
    assert engine._snapshots is not None
    seq = engine._snapshots.poll(wait=True)
    assert seq == engine.recorder.last_seq()
    facts = msgspec.json.decode(seen.read_bytes())
    assert facts["pid"] != os.getpid()  # not this process, so not its loop
    assert facts["nice"] == min(19, os.nice(0) + durability.CHILD_NICE)
    assert facts["sync_every"] == durability.CHILD_SYNC_BYTES
    assert STALLS.longest["fork"] >= 0.0  # the parent timed its fork
    monkeypatch.undo()
    engine.close()


def test_a_snapshot_synced_in_steps_is_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tmp_path / "data")
    header = durability.snapshot_header("c", "r", 7)
    durability.write_snapshot_file(tmp_path / "whole", header, engine._snapshot_body)
    syncs: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: syncs.append(fd) or real(fd))
    durability.write_snapshot_file(
        tmp_path / "steps", header, engine._snapshot_body, sync_every=4_096
    )
    size = (tmp_path / "steps").stat().st_size
    assert (tmp_path / "steps").read_bytes() == (tmp_path / "whole").read_bytes()
    assert len(syncs) >= size // 4_096  # each half in 4 KiB steps, each synced
    _, body = decode_snapshot((tmp_path / "steps").read_bytes())
    assert isinstance(body, SnapshotBody)
    engine.close()


def test_a_snapshot_due_while_one_is_written_is_skipped_without_settling(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path / "data")
    engine.write_snapshot(background=True)
    writer = engine._snapshots
    assert writer is not None and writer.busy
    child = writer._child
    engine.snapshot_wanted = True
    if engine.snapshot_busy():  # the child has not finished yet: skipped, asked no more
        assert not engine.snapshot_wanted
        assert writer._child == child
    writer.poll(wait=True)
    assert not engine.snapshot_busy()
    engine.close()


def test_the_heap_is_collapsed_again_only_once_it_was_and_not_twice_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A snapshot child's life splits the huge pages the parent writes to: `again` runs
    the collapse once more, but only in a process that moved its heap (serving), and
    never beside a collapse still running."""
    import threading

    release, runs = threading.Event(), []
    pages = HugePages()
    monkeypatch.setattr(pages, "promote", lambda: runs.append(1) or (release.wait(5) and 0))
    pages.again()
    assert runs == [] and not pages.collapsing  # never moved: nothing to do
    pages.start()
    pages.again()  # the first collapse still runs
    release.set()
    assert pages._thread is not None
    pages._thread.join(5)
    pages.again()
    assert pages._thread is not None
    pages._thread.join(5)
    assert runs == [1, 1]


def test_the_collapse_runs_at_the_lowest_priority_and_leaves_the_caller_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kernel's copying runs in the collapsing thread's name: that thread, and only
    it, is niced (Linux keeps a nice value per thread)."""
    import threading

    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    caller, seen = priority(), []
    pages = HugePages()
    monkeypatch.setattr(pages, "promote", lambda: seen.append(priority()) or 0)
    pages.start()
    assert pages._thread is not None
    pages._thread.join(5)
    assert seen == [COLLAPSE_NICE] != [caller]
    assert priority() == caller


def test_no_snapshot_is_forked_while_the_heap_moves_onto_huge_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forking before the collapse is done copies 4 KiB page tables (hundreds of ms at
    20k × 90 days): the snapshot due then is skipped, asked no more, and none is forked."""
    engine = _engine(tmp_path / "data", lines=100)
    monkeypatch.setattr(type(HUGE_PAGES), "collapsing", property(lambda self: True))
    engine.snapshot_wanted = True
    assert engine.snapshot_busy()
    assert not engine.snapshot_wanted
    assert engine._snapshots is not None and not engine._snapshots.busy
    monkeypatch.undo()
    assert not engine.snapshot_busy()
    engine.close()


def test_serving_freezes_what_start_up_left_and_restarts_the_gauges(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "data", lines=200)
    built_at_start_up = [{"k": [1, 2]}]
    gc.collect()
    STALLS.record("fork", 9.0)
    HeapPolicy.serving()
    assert _frozen(built_at_start_up)
    assert _frozen(engine.features)
    assert WATCH.longest_pause_s == 0.0
    assert "fork" not in STALLS.longest
    assert gc.get_threshold()[2] == NO_FULL_COLLECTION  # no automatic full collection
    engine.close()
    assert gc.get_threshold()[2] == DEFAULT_FULL_THRESHOLD


def test_stalls_are_counted_by_cause_over_50_ms() -> None:
    watch = StallWatch()
    watch.record("loop_lag", 0.01)
    watch.record("loop_lag", 0.2)
    watch.record("fork", 0.001)
    gauges = watch.gauges()
    assert gauges["payguard_stall_loop_lag_longest_seconds"] == 0.2
    assert gauges["payguard_stall_loop_lag_over_50ms_total"] == 1
    assert gauges["payguard_stall_fork_over_50ms_total"] == 0


def test_the_heap_moves_onto_huge_pages_where_the_kernel_gives_them() -> None:
    """The snapshot's fork copies page tables: 512 times fewer on 2 MiB pages."""
    mode = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not mode.exists() or "[never]" in mode.read_text():
        pytest.skip("no transparent huge pages here")
    heap = [[i] for i in range(1_000_000)]  # ~100 MiB of small objects in pymalloc arenas
    assert anonymous_ranges()
    promoted = HugePages().promote()
    if promoted == 0:
        pytest.skip("this kernel collapses nothing on request (MADV_COLLAPSE is 6.1+)")
    rollup = Path("/proc/self/smaps_rollup").read_text()
    huge_kib = int(rollup.split("AnonHugePages:")[1].split()[0])
    assert huge_kib * 1024 >= 2 << 20
    assert heap[-1] == [999_999]  # the objects are where they were


def test_the_sweep_of_the_whole_state_is_timed_as_a_stall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every SWEEP_EVERY events a sweep round begins and each event then runs one slice
    of it on the loop (the whole sweep was the longest stop of a warm server, issue 16):
    /metrics shows the longest slice by name."""
    monkeypatch.setattr(core, "SWEEP_EVERY", 100)
    STALLS.reset()
    engine = _engine(tmp_path / "data", lines=300)
    assert "sweep" in STALLS.longest
    engine.close()
