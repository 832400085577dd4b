"""Memory stays bounded while new entities keep arriving (issue 14, failure 9).

Every event here brings a customer, device, IP, card, phone and merchant payguard has never
seen, for longer than the catalog's longest window (90 days) plus its `memory`; the
engine's periodic sweep must let them leave. Before, each event with a new entity left
about 4.4 KB behind for good. Measured with tracemalloc: the state's traced size once
entities leave as fast as they come must not keep growing.
"""

import tracemalloc
from pathlib import Path

import msgspec
import pytest

from payguard.config import load_settings
from payguard.engine import Engine
from payguard.engine import core as engine_core
from payguard.events import Card, Event, Merchant
from payguard.features import FeatureState, load_catalog
from payguard.graph import GraphConfig, GraphFeatures

DAY = 86_400_000
EVENTS_PER_DAY = 48
SWEEP_EVERY = 1_000
T0 = 1_700_000_000_000


def _newcomer(i: int) -> list[Event]:
    """A customer seen once: a login and a payment, every entity new."""
    ts = T0 + i * DAY // EVENTS_PER_DAY
    common = {
        "user_id": f"u{i}",
        "device_id": f"d{i}",
        "ip": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
        "phone": f"+86137{i:08d}",
        "city": f"c{i % 50}",
        "channel": "app",
    }
    return [
        Event(event_id=f"l{i}", type="login", ts=ts, success=True, **common),  # type: ignore[arg-type]
        Event(
            event_id=f"p{i}",
            type="payment",
            ts=ts + 1_000,
            amount=1_000 + i % 977,
            card=Card(token=f"card{i}"),
            merchant=Merchant(id=f"m{i}", category="ecommerce"),
            **common,  # type: ignore[arg-type]
        ),
    ]


def _traced_after(state: FeatureState, first: int, last: int) -> int:
    for i in range(first, last):
        for event in _newcomer(i):
            state.update(event)
        if i % SWEEP_EVERY == 0:
            state.sweep()
    state.sweep()
    return tracemalloc.get_traced_memory()[0]


def test_new_entities_leave_memory_after_the_windows_and_memory() -> None:
    catalog = msgspec.structs.replace(load_catalog(), memory="30d")
    state = FeatureState(catalog)
    steady = (90 + 30 + 5) * EVENTS_PER_DAY  # longest window + memory + a few days
    tracemalloc.start()
    try:
        at_steady = _traced_after(state, 0, steady)
        later = _traced_after(state, steady, steady + 60 * EVENTS_PER_DAY)
    finally:
        tracemalloc.stop()
    assert state.updates == 2 * (steady + 60 * EVENTS_PER_DAY)
    # 60 more days brought 2,880 new customers (12 MB at 4.4 KB each before)
    assert later < at_steady * 1.05
    users = state.entities[[k.by for k in state.kinds].index("user")]
    assert len(users) < 200 * EVENTS_PER_DAY  # about window + memory worth of customers
    assert "u0" not in users and "u0" not in state.watch.registered


ROOT = Path(__file__).resolve().parents[2]
ENGINE_SWEEP_EVERY = 1_000
"""The engine's stages sweep every 50,000 events; here every 1,000, so that a few months
of newcomers at 48 a day see the sweeps the real rate would bring."""


def _engine_with_short_horizons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The embedded engine on SQLite, default rules, with 30 days of entity memory and a
    graph whose links expire after 30 (standing: 60) days."""
    catalog = tmp_path / "features.yaml"
    text = (ROOT / "src/payguard/features/default.yaml").read_text()
    catalog.write_text(f"{text}\nmemory: 30d\n")
    settings = load_settings(
        env={
            "PAYGUARD_DATA_DIR": str(tmp_path / "data"),
            "PAYGUARD_FEATURES": str(catalog),
            "PAYGUARD_RULESET": str(ROOT / "rules/default.yaml"),
        }
    )
    (tmp_path / "data").mkdir()
    monkeypatch.setattr(engine_core, "SWEEP_EVERY", ENGINE_SWEEP_EVERY)
    engine = Engine.open(settings)
    short = GraphConfig(
        horizon="30d", standing_horizon="60d", sweep_every=ENGINE_SWEEP_EVERY, max_refs=0
    )
    engine.graph = GraphFeatures(short)
    if engine.chains is not None:
        engine.chains.sweep_every = ENGINE_SWEEP_EVERY
    return engine


def _engine_traced_after(engine: Engine, first: int, last: int) -> int:
    for i in range(first, last):
        for event in _newcomer(i):
            engine.process(event)
        if i % 500 == 0:
            engine.flush()
    engine.flush()
    return tracemalloc.get_traced_memory()[0]


def test_the_whole_engine_stays_bounded_while_new_entities_arrive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14, failure 9, as the server met it: every stage an event with new entities
    passes through (features, identity graph, chains, idempotency ids, outcomes, holds)
    lets them go once their horizons pass; the event log keeps them on disk."""
    engine = _engine_with_short_horizons(tmp_path, monkeypatch)
    steady = 6_000  # 125 days: the longest window (90 days), memory (30 days) and 5 more
    more = 3_000  # 62.5 days; both counts end right after a sweep (2 events a newcomer)
    tracemalloc.start()
    try:
        at_steady = _engine_traced_after(engine, 0, steady)
        later = _engine_traced_after(engine, steady, steady + more)
    finally:
        tracemalloc.stop()
        engine.close()
    assert engine.recorder.last_seq() == 2 * (steady + more)
    # 3,000 more newcomers: 13 MB at the 4.4 KB each the server kept before
    assert later < at_steady * 1.05, (at_steady, later)
