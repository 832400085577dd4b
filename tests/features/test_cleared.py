"""An analyst's or a bank's `not_fraud` label clears a merchant, card or payee of the fraud
reports it collected up to the label's time (features.cleared); the brute-force twin is
held to the same in tests/features/test_point_in_time.py."""

from typing import Any

import msgspec
import pytest

from payguard.events import Card, Event, Merchant
from payguard.features import FeatureState, load_catalog

MIN = 60_000
FEATURES = [
    "count_fraud_label_by_merchant_30d",
    "distinct_user_fraud_label_by_merchant_7d",
    "count_fraud_label_by_card_90d",
    "count_fraud_label_by_user_90d",
    "count_fraud_label_by_device_90d",
]


def _pay(event_id: str, ts: int, user: str = "u1", merchant: str = "m1") -> Event:
    return Event(
        event_id=event_id,
        type="payment",
        ts=ts,
        user_id=user,
        device_id=f"{user}-phone",
        amount=10_000,
        merchant=Merchant(id=merchant, category="food"),
        card=Card(token=f"pan_{user}"),
    )


def _report(event_id: str, ts: int, ref: str) -> Event:
    return Event(event_id=event_id, type="fraud_report", ts=ts, user_id="u1", ref_event_id=ref)


def _label(event_id: str, ts: int, ref: str, verdict: str, source: str | None) -> Event:
    return Event(
        event_id=event_id,
        type="label",
        ts=ts,
        user_id="u1",
        ref_event_id=ref,
        label=verdict,
        source=source,
    )


class World:
    """A feature state with the default catalog, fed as the engine feeds it."""

    def __init__(self) -> None:
        self.state = FeatureState(load_catalog())
        self.plan = self.state.plan(FEATURES)
        self.seen: dict[str, Event] = {}

    def send(self, event: Event) -> None:
        referenced = self.seen.get(event.ref_event_id) if event.ref_event_id else None
        self.state.update(event, referenced)
        self.seen.setdefault(event.event_id, event)

    def read(self, event: Event) -> dict[str, Any]:
        return self.state.snapshot(event, self.plan)


@pytest.fixture
def world() -> World:
    """Two customers paid merchant m1 and reported it; then u1's payment is labelled."""
    w = World()
    w.send(_pay("p1", 0))
    w.send(_pay("p2", MIN, user="u2"))
    w.send(_report("r1", 10 * MIN, "p1"))
    w.send(_report("r2", 11 * MIN, "p2"))
    return w


@pytest.mark.parametrize("source", ["analyst", "bank"])
def test_an_analysts_not_fraud_clears_the_merchant_and_card(world: World, source: str) -> None:
    before = world.read(_pay("q0", 20 * MIN))
    assert before["count_fraud_label_by_merchant_30d"] == 2
    assert before["count_fraud_label_by_card_90d"] == 1
    world.send(_label("l1", 30 * MIN, "p1", "not_fraud", source))
    after = world.read(_pay("q1", 31 * MIN))
    assert after["count_fraud_label_by_merchant_30d"] == 0
    assert after["distinct_user_fraud_label_by_merchant_7d"] == 0
    assert after["count_fraud_label_by_card_90d"] == 0
    # the customer's own history is not the merchant's: it stays
    assert after["count_fraud_label_by_user_90d"] == 1
    assert after["count_fraud_label_by_device_90d"] == 1


def test_an_event_dated_before_the_label_still_sees_the_reports(world: World) -> None:
    world.send(_label("l1", 30 * MIN, "p1", "not_fraud", "analyst"))
    late = world.read(_pay("late", 29 * MIN))  # arrives after the label, dated before it
    assert late["count_fraud_label_by_merchant_30d"] == 2


def test_a_report_after_the_label_counts_again(world: World) -> None:
    world.send(_label("l1", 30 * MIN, "p1", "not_fraud", "analyst"))
    world.send(_pay("p3", 40 * MIN, user="u3"))
    world.send(_report("r3", 50 * MIN, "p3"))
    world.send(_label("l2", 51 * MIN, "p3", "fraud", "bank"))  # a fraud label is a report
    after = world.read(_pay("q", 60 * MIN))
    assert after["count_fraud_label_by_merchant_30d"] == 2
    assert after["distinct_user_fraud_label_by_merchant_7d"] == 1


@pytest.mark.parametrize(("verdict", "source"), [("not_fraud", "customer"), ("not_fraud", None)])
def test_a_customers_word_clears_nothing(world: World, verdict: str, source: str | None) -> None:
    world.send(_label("l1", 30 * MIN, "p1", verdict, source))
    assert world.read(_pay("q", 31 * MIN))["count_fraud_label_by_merchant_30d"] == 2


def test_another_merchant_is_not_cleared(world: World) -> None:
    world.send(_pay("o1", 2 * MIN, merchant="m2"))
    world.send(_report("ro", 12 * MIN, "o1"))
    world.send(_label("l1", 30 * MIN, "p1", "not_fraud", "analyst"))
    assert world.read(_pay("q", 31 * MIN, merchant="m2"))["count_fraud_label_by_merchant_30d"] == 1


def test_a_state_snapshot_keeps_the_clearing(world: World) -> None:
    world.send(_label("l1", 30 * MIN, "p1", "not_fraud", "analyst"))
    exported = msgspec.msgpack.decode(msgspec.msgpack.encode(world.state.export()))
    restored = FeatureState(load_catalog())
    restored.restore(exported)
    probe = _pay("q", 31 * MIN)
    assert restored.snapshot(probe, restored.plan(FEATURES)) == world.read(probe)
    assert (
        restored.snapshot(probe, restored.plan(FEATURES))["count_fraud_label_by_merchant_30d"] == 0
    )
