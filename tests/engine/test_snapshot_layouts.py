"""State snapshots round-trip, and a snapshot in the earlier layout still restores.

The earlier layout pickled one dict of `Timeline` objects per stream; the current one
holds per-entity records as one msgpack blob. A restart must accept either without
replaying the whole log, and end with exactly the state a clean run has. A snapshot of an
earlier format (before watched history) is ignored and the log replayed.
"""

import pickle
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

import payguard.features.timeline as timeline_module
from payguard.config import load_settings
from payguard.engine import SNAPSHOT_FILE, Engine
from payguard.features import FeatureState
from payguard.features.timeline import LegacyTimeline

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "examples" / "events.jsonl"


def _open(data_dir: Path) -> Engine:
    return Engine.open(
        load_settings(
            env={
                "PAYGUARD_DATA_DIR": str(data_dir),
                "PAYGUARD_RULESET": str(ROOT / "rules" / "default.yaml"),
            }
        )
    )


@pytest.fixture
def replayed(tmp_path: Path) -> tuple[Path, list[Any]]:
    """A store with 3,000 example events and a snapshot of them; the state's digest."""
    engine = _open(tmp_path)
    with EVENTS.open("rb") as lines:
        for line in islice(lines, 3_000):
            engine.process(engine.decoder.decode(line))
    engine.close()
    return tmp_path, engine.features.digest_items()


def test_snapshot_round_trips(replayed: tuple[Path, list[Any]]) -> None:
    data_dir, digest = replayed
    engine = _open(data_dir)
    try:
        assert engine.recover() == 0  # nothing left to replay after the snapshot
        assert engine.features.digest_items() == digest
    finally:
        engine.recorder.close()


def test_snapshot_in_the_per_stream_layout_restores(
    replayed: tuple[Path, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, digest = replayed
    engine = _open(data_dir)
    saved = pickle.loads((data_dir / SNAPSHOT_FILE).read_bytes())
    saved["state"] = _per_stream_layout(engine.features)
    engine.recorder.close()
    monkeypatch.setattr(timeline_module, "Timeline", _OldTimeline)
    (data_dir / SNAPSHOT_FILE).write_bytes(pickle.dumps(saved))
    monkeypatch.undo()

    reopened = _open(data_dir)
    try:
        assert reopened.recover() == 0
        assert reopened.features.digest_items() == digest
    finally:
        reopened.recorder.close()


class _OldTimeline(LegacyTimeline):
    """Pickles as `payguard.features.timeline.Timeline`, as timelines used to."""

    __slots__ = ()

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.ts, self.values, self.totals, self.running, self.first_ts)


_OldTimeline.__module__ = "payguard.features.timeline"
_OldTimeline.__qualname__ = "Timeline"


def _per_stream_layout(state: FeatureState) -> dict[str, Any]:
    timelines: list[dict[str, _OldTimeline]] = []
    for idx in range(len(state.streams)):
        by_key = {}
        for key, tl in state.timelines(idx).items():
            old = _OldTimeline.__new__(_OldTimeline)
            old.__setstate__((tl.ts, tl.values, tl.totals, tl.running, tl.first_ts))
            by_key[key] = old
        timelines.append(by_key)
    exported = state.export()
    return {
        "timelines": timelines,
        **{k: exported[k] for k in ("phone_users", "watermark", "late_events", "updates", "watch")},
    }


def test_snapshot_of_an_earlier_format_is_ignored(replayed: tuple[Path, list[Any]]) -> None:
    """A snapshot written before watched history was kept (format 1) has none to restore:
    the engine ignores it and replays the whole log, which rebuilds every state."""
    data_dir, digest = replayed
    saved = pickle.loads((data_dir / SNAPSHOT_FILE).read_bytes())
    del saved["format"]
    del saved["state"]["watch"]
    (data_dir / SNAPSHOT_FILE).write_bytes(pickle.dumps(saved))
    reopened = _open(data_dir)
    try:
        assert reopened.recorder.last_seq() == 3_000
        assert reopened.features.digest_items() == digest
        assert reopened.features.watch.registered  # rebuilt from the log
    finally:
        reopened.recorder.close()
