"""The app's start-up hands the loop to the pause policy (issue 16): what start-up left
is frozen before the first request, and the event loop's lag is watched from then on
(`/metrics`: payguard_stall_loop_lag_*)."""

import gc
import time
from pathlib import Path

import msgspec
from apiserver import DEFAULT_RULESET
from litestar.testing import TestClient

from payguard.api import create_app
from payguard.auth import Access
from payguard.config import load_settings
from payguard.engine import Engine
from payguard.engine.compile import EVENT_TYPES
from payguard.engine.heap import STALLS


def test_start_up_freezes_and_the_loop_is_watched(tmp_path: Path) -> None:
    loaded = load_settings(env={"PAYGUARD_DATA_DIR": str(tmp_path)})
    engine = Engine.open(msgspec.structs.replace(loaded, ruleset=DEFAULT_RULESET))
    access = Access.open(tmp_path, rate_per_s=1_000, burst=1_000)
    app = create_app(engine, access=access)
    before_start = [{"built": "before serving"}]
    gc.collect()
    assert any(o is before_start for o in gc.get_objects())
    STALLS.reset()
    with TestClient(app) as client:
        assert not any(o is before_start for o in gc.get_objects())  # frozen at start-up
        deadline = time.monotonic() + 10
        while "loop_lag" not in STALLS.longest and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "loop_lag" in STALLS.longest  # the watch woke at least once
        assert client.app is app
    engine.close()
    access.close()


def test_start_up_compiles_every_event_type_before_the_first_request(tmp_path: Path) -> None:
    """Plans and feature update code are built at start-up, not on each type's first
    event (up to 24 ms for a payment, which every request queued behind it waited for)."""
    loaded = load_settings(env={"PAYGUARD_DATA_DIR": str(tmp_path)})
    engine = Engine.open(msgspec.structs.replace(loaded, ruleset=DEFAULT_RULESET))
    access = Access.open(tmp_path, rate_per_s=1_000, burst=1_000)
    app = create_app(engine, access=access)
    assert not engine._plans and not engine.features._filers
    with TestClient(app):
        assert set(engine._plans) == set(EVENT_TYPES)
        assert set(engine.features._filers) == set(EVENT_TYPES)
        compiled = {t: engine.generated_code(t) for t in EVENT_TYPES}
        engine.prepare()  # again: nothing is rebuilt
        assert {t: engine.generated_code(t) for t in EVENT_TYPES} == compiled
    engine.close()
    access.close()
