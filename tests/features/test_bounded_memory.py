"""Memory stays bounded while new entities keep arriving (issue 14, failure 9).

Every event here brings a customer, device, IP, card, phone and merchant payguard has never
seen, for longer than the catalog's longest window (90 days) plus its `memory`; the
engine's periodic sweep must let them leave. Before, each event with a new entity left
about 4.4 KB behind for good. Measured with tracemalloc: the state's traced size once
entities leave as fast as they come must not keep growing.
"""

import tracemalloc

import msgspec

from payguard.events import Card, Event, Merchant
from payguard.features import FeatureState, load_catalog

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
