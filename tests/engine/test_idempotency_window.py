"""The idempotency memory (engine.idempotency): bounded by a window of event time, backed
by the event log beyond it. Both sides of the boundary, over a real SQLite log, and the
window against a brute-force reference that remembers every id forever."""

import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from payguard.config import load_settings
from payguard.engine import DuplicateEventError, Engine
from payguard.engine.idempotency import WINDOW_MS, RecentIds
from payguard.events import Event
from payguard.types import DAY_MS, HOUR_MS

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_790_000_000_000


def _engine(data_dir: Path) -> Engine:
    env = {"PAYGUARD_DATA_DIR": str(data_dir), "PAYGUARD_RULESET": str(ROOT / "rules/default.yaml")}
    return Engine.open(load_settings(env=env))


def _login(engine: Engine, event_id: str, ts: int, user: str = "u1") -> Event:
    body: dict[str, Any] = {
        "event_id": event_id,
        "type": "login",
        "ts": ts,
        "user_id": user,
        "device_id": f"d-{user}",
        "ip": "10.1.2.3",
        "channel": "app",
        "method": "password",
        "success": True,
    }
    return engine.decoder.decode(msgspec.json.encode(body))


def _rows(data_dir: Path, event_id: str) -> int:
    with sqlite3.connect(data_dir / "payguard.db") as db:
        query = "SELECT COUNT(*) FROM events WHERE event_id = ?"
        return int(db.execute(query, (event_id,)).fetchone()[0])


class _CountingLookups:
    """Counts the engine's questions to the log."""

    def __init__(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = engine.recorder.lookup

        def lookup(event_id: str) -> Any:
            self.calls += 1
            return real(event_id)

        monkeypatch.setattr(engine.recorder, "lookup", lookup)


def test_inside_the_window_a_new_event_needs_no_query_and_a_repeat_is_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tmp_path)
    lookups = _CountingLookups(engine, monkeypatch)
    first, repeat = engine.process(_login(engine, "e1", T0), commit=True)
    assert (repeat, lookups.calls) == (False, 0)
    again, repeat = engine.process(_login(engine, "e1", T0), commit=True)
    assert (again, repeat, lookups.calls) == (first, True, 1)
    engine.close()


def test_beyond_the_window_a_repeat_is_found_in_the_log_not_decided_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tmp_path)
    old, _ = engine.process(_login(engine, "old", T0), commit=True)
    for hour in range(0, 3 * 24, 6):  # the watermark moves three days on
        engine.process(_login(engine, f"later-{hour}", T0 + DAY_MS + hour * HOUR_MS), commit=True)
    assert engine.features.watermark - WINDOW_MS > T0
    assert "old" not in _ids_in_memory(engine, ["old"])
    lookups = _CountingLookups(engine, monkeypatch)
    seq = engine.recorder.last_seq()
    again, repeat = engine.process(_login(engine, "old", T0), commit=True)
    assert (again, repeat, lookups.calls) == (old, True, 1)
    assert engine.recorder.last_seq() == seq
    assert _rows(tmp_path, "old") == 1
    engine.close()


def test_an_id_reused_with_a_time_inside_the_window_is_a_conflict_not_a_new_event(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    engine.process(_login(engine, "old", T0), commit=True)
    engine.process(_login(engine, "later", T0 + 3 * DAY_MS), commit=True)
    seq, state = engine.recorder.last_seq(), engine.features.digest_items()
    reused = _login(engine, "old", T0 + 3 * DAY_MS + 1, user="u2")
    with pytest.raises(DuplicateEventError):
        engine.process(reused, commit=True)
    assert engine.recorder.last_seq() == seq
    assert engine.features.digest_items() == state
    assert _rows(tmp_path, "old") == 1
    engine.close()


def test_a_restart_takes_the_window_from_the_snapshot_and_the_tail(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    for i in range(40):
        engine.process(_login(engine, f"e{i}", T0 + i * 3 * HOUR_MS), commit=True)
    engine.close()  # snapshot
    engine = _engine(tmp_path)
    for i in range(40, 50):
        engine.process(_login(engine, f"e{i}", T0 + i * 3 * HOUR_MS), commit=True)
    before = engine.recent.export()
    engine.recorder.close()  # a crash: the last ten are only in the log

    restarted = _engine(tmp_path)
    assert restarted._snapshot_seq == 40
    assert restarted.recent.export() == before
    horizon_day = (T0 + 49 * 3 * HOUR_MS - WINDOW_MS) // DAY_MS  # whole days are kept
    kept = [i for i in range(50) if (T0 + i * 3 * HOUR_MS) // DAY_MS >= horizon_day]
    assert len(restarted.recent) == len(kept) < 50
    restarted.close()


def _ids_in_memory(engine: Engine, ids: list[str]) -> list[str]:
    """Which of `ids` the window would vouch for at the current watermark, were they
    new events at its edge (a digest kept)."""
    edge = engine.features.watermark
    return [i for i in ids if engine.recent.may_be_recorded(i, edge, edge)]


# -- against a reference that never forgets ------------------------------------------------

_STEPS = st.lists(
    st.tuples(st.integers(0, 40), st.integers(-3 * DAY_MS, 12 * HOUR_MS)), min_size=1, max_size=80
)


@settings(max_examples=300, deadline=None)
@given(
    steps=_STEPS,
    probes=st.lists(st.tuples(st.integers(0, 60), st.integers(-4 * DAY_MS, 0))),
    restart_at=st.none() | st.integers(0, 80),
)
# Found by hypothesis: a window whose first day held no id started at its first id's day
# after a restart, so a new id just before that day was sent to the log.
@example(steps=[(0, 0), (0, 0)], probes=[(0, -51_200_001)], restart_at=1)
def test_a_repeat_is_never_taken_for_new_and_inside_the_window_new_is_known_new(
    steps: list[tuple[int, int]], probes: list[tuple[int, int]], restart_at: int | None
) -> None:
    """Events arrive with times scattered around a moving watermark (late ones too). The
    reference remembers every id with its time forever. After each event: a repeat of
    any recorded event (same id, same time) must be sent to the log; an unrecorded id
    inside the window must be known new (no query). An id reused with another time is
    the log's unique index's to refuse (see the conflict test above), not checked here.
    At `restart_at` the memory goes through a snapshot (`export`, `restore`: ids kept by
    the process become digests), which must change none of its answers, nor its export."""
    recent, recorded, watermark = RecentIds(), dict[str, int](), T0
    for step, (ident, offset) in enumerate(steps):
        if step == restart_at:
            exported = recent.export()
            recent = RecentIds()
            recent.restore(exported)
            assert recent.export() == exported
        ts = watermark + offset
        watermark = max(watermark, ts)
        event_id = f"e{ident}"
        if event_id not in recorded:
            recorded[event_id] = ts
            recent.add(event_id, ts, watermark)
        for seen, at in recorded.items():
            assert recent.may_be_recorded(seen, at, watermark), seen
        for probe_id, probe_offset in probes:
            probe, at = f"new{probe_id}", watermark + probe_offset
            if at >= watermark - WINDOW_MS:
                assert not recent.may_be_recorded(probe, at, watermark), probe


def test_memory_is_bounded_by_the_window() -> None:
    recent, watermark = RecentIds(), T0
    for i in range(20 * 24):  # twenty days, one event an hour
        watermark = T0 + i * HOUR_MS
        recent.add(f"e{i}", watermark, watermark)
    assert len(recent) <= (WINDOW_MS // HOUR_MS) + 24


def test_a_snapshot_without_the_window_is_refused() -> None:
    with pytest.raises(ValueError, match="recent event ids"):
        RecentIds().restore(None)
