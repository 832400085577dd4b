"""Bytes of feature state per entity after replaying a simulated month.

Measured with tracemalloc around the replay of in-memory state (no SQLite), divided by
the number of (stream, entity) timelines alive at the end, and by distinct accounts.
"""

import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

from payguard.config import load_settings
from payguard.engine import Engine, compile_ruleset
from payguard.events import Event
from payguard.features import FeatureState, load_catalog
from payguard.sim import SimConfig, simulate
from payguard.store import MemoryRecorder

ROOT = Path(__file__).resolve().parents[1]


def run(users: int = 3_000, days: int = 30) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        events_path, labels_path = Path(tmp) / "events.jsonl", Path(tmp) / "labels.jsonl"
        simulate(SimConfig(users=users, days=days, seed=3), events_path, labels_path)
        settings = load_settings(env={})
        features = FeatureState(load_catalog())
        ruleset = compile_ruleset((ROOT / "rules/default.yaml").read_text(), features)
        engine = Engine(
            features=features, ruleset=ruleset, recorder=MemoryRecorder(), settings=settings
        )
        events = [engine.decoder.decode(line) for line in events_path.open("rb")]
        engine.recorder = _ForgetfulRecorder()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for event in events:
            engine.process(event)
        features.sweep()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    state_bytes = after - before
    accounts = len({e.user_id for e in events if e.user_id})
    return {
        "events": len(events),
        "timelines": features.entity_count(),
        "accounts": accounts,
        "state_mib": state_bytes / 2**20,
        "bytes_per_timeline": state_bytes / max(features.entity_count(), 1),
        "bytes_per_account": state_bytes / max(accounts, 1),
    }


class _ForgetfulRecorder(MemoryRecorder):
    """Keeps only what feedback lookups need, so the measurement is feature state alone."""

    def append(self, event: Event, *record: Any, **fields: Any) -> int:
        self._by_id[event.event_id] = (event, None)  # type: ignore[assignment]
        return len(self._by_id)


if __name__ == "__main__":
    print(run())
