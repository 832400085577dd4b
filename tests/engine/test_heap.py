"""The collector policy (engine.heap): recovered state is frozen out of every collection,
and the request path freezes its survivors every FREEZE_EVERY events."""

import gc
from pathlib import Path

from payguard.config import load_settings
from payguard.engine import Engine
from payguard.engine.heap import WATCH, HeapPolicy

ROOT = Path(__file__).resolve().parents[2]


def _tracked(obj: object) -> bool:
    """Whether a collection would traverse `obj` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


def test_recovered_state_is_frozen_until_the_engine_closes(tmp_path: Path) -> None:
    env = {"PAYGUARD_DATA_DIR": str(tmp_path), "PAYGUARD_RULESET": str(ROOT / "rules/default.yaml")}
    engine = Engine.open(load_settings(env=env))
    assert gc.is_tracked(engine.features)
    assert not _tracked(engine.features)
    engine.close()
    assert _tracked(engine.features)


def test_every_interval_the_survivors_are_frozen() -> None:
    policy = HeapPolicy(every=3)
    gc.unfreeze()
    survivor = [[1, 2], [3]]
    policy.tick()
    policy.tick()
    assert _tracked(survivor)
    policy.tick()
    assert not _tracked(survivor)
    policy.release()
    assert _tracked(survivor)


def test_collections_are_timed() -> None:
    before = WATCH.collections[2]
    gc.collect()
    assert WATCH.collections[2] == before + 1
    assert HeapPolicy.gauges()["payguard_gc_longest_pause_seconds"] > 0
