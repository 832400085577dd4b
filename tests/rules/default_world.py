"""A real in-memory engine with the default catalog and ruleset, and a local clock, for
tests that decide hand-made event sequences against rules/default.yaml."""

from datetime import datetime, timedelta, timezone
from itertools import count
from pathlib import Path
from typing import Any

from payguard.config import load_settings
from payguard.decision import Decision
from payguard.engine import Engine, compile_ruleset
from payguard.events import Event
from payguard.features import FeatureState, load_catalog
from payguard.store import MemoryRecorder

ROOT = Path(__file__).resolve().parents[2]
LOCAL = timezone(timedelta(hours=8))
DAY0 = int(datetime(2026, 10, 1, tzinfo=LOCAL).timestamp() * 1000)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


class DefaultWorld:
    """One engine and a counter of event ids; `at(day, hour)` is local time (UTC+8)."""

    def __init__(self, live: tuple[str, ...] = ()) -> None:
        """`live`: shadow rules of the default ruleset played live, to test what they
        would do before they act."""
        features = FeatureState(load_catalog())
        text = _played_live((ROOT / "rules" / "default.yaml").read_text(encoding="utf-8"), live)
        self.engine = Engine(
            features=features,
            ruleset=compile_ruleset(text, features),
            recorder=MemoryRecorder(),
            settings=load_settings(env={}),
        )
        self._ids = count()

    @staticmethod
    def at(day: int, hour: float) -> int:
        return DAY0 + day * DAY_MS + int(hour * HOUR_MS)

    def decide(self, type: str, ts: int, **fields: Any) -> tuple[str, Decision]:
        """Decide one event with the next id; the id and the decision."""
        event_id = f"e{next(self._ids)}"
        event = Event(event_id=event_id, type=type, ts=ts, **fields)
        return event_id, self.engine.process(event)[0]


def _played_live(text: str, rule_ids: tuple[str, ...]) -> str:
    """The ruleset text with each named rule's `mode: shadow` line taken out."""
    for rule_id in rule_ids:
        start = text.index(f"  - id: {rule_id}\n")
        end = text.find("\n  - id: ", start + 1)
        end = len(text) if end < 0 else end
        block = text[start:end]
        assert "\n    mode: shadow" in block, f"{rule_id} is not a shadow rule"
        text = text[:start] + block.replace("\n    mode: shadow", "", 1) + text[end:]
    return text
