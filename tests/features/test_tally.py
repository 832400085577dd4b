"""The shortcuts of the snapshot's whole-head reads stay exact (issue 11).

A `top_share` stream's `Tally` keeps its total and its heaviest weight as entries come and
go (the top may turn unknown, never wrong); `distinct` over a tallied stream counts the
tally's keys; a stream with no raw aggregate folds in batches, past its horizon. Each is
held to a recomputation from the raw entries; the point-in-time property tests hold the
generated code that uses them to the brute-force twin.
"""

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from payguard.events import Card, Event, Merchant
from payguard.features import FeatureState, load_catalog
from payguard.features.compiled import FOLD_SLACK_MS
from payguard.features.timeline import Tally, Timeline

MINUTE = 60_000

entries = st.lists(
    st.tuples(st.integers(0, 50 * MINUTE), st.sampled_from("abcde"), st.integers(1, 9)),
    max_size=60,
)


@given(entries, st.integers(0, 60 * MINUTE))
def test_tally_keeps_total_and_top_of_the_raw_head(
    filed: list[tuple[int, str, int]], horizon: int
) -> None:
    tl = Timeline.new(with_weights=True, with_tally=True)
    for ts, value, weight in filed:
        tl.add(ts, value, horizon=-1, weight=weight)
    tl.fold_through(horizon)
    tally = tl.tally
    if tl.ts is None:  # all folded: the head is dropped
        assert tally is None
        return
    assert isinstance(tally, Tally)
    held: dict[str, int] = {}
    for value, weight in zip(tl.values, tl.weights, strict=True):
        held[value] = held.get(value, 0) + weight
    assert dict(tally) == held
    assert len(tally) == len(set(tl.values))  # `distinct` over the whole head
    assert tally.total == sum(held.values())
    assert tally.top in (-1, max(held.values()))
    share = tl.top_share(0, len(tl.ts))
    assert share == max(held.values()) * 1000 // sum(held.values())


def test_a_decoded_tally_reads_the_same_and_is_kept_from_then_on() -> None:
    """A snapshot holds a tally as a plain dict: the whole-head read makes it a `Tally`."""
    state = FeatureState(load_catalog())
    for i in range(30):
        state.update(payment(i, 1_000_000 + i * 7 * MINUTE))
    again = FeatureState(load_catalog())
    again.restore(state.export())
    event = payment(30, 1_000_000 + 30 * 7 * MINUTE)
    plan = state.plan({"top_share_user_payment_by_merchant_30d"}, "payment")
    before = again.snapshot(event, again.plan(set(plan.names), "payment"))
    assert before == state.snapshot(event, plan)
    assert before["top_share_user_payment_by_merchant_30d"] > 0
    read_again = again.snapshot(event, again.plan(set(plan.names), "payment"))
    assert read_again == before
    tallies = [
        tl.tally
        for tls in map(again.timelines, range(len(again.streams)))
        for tl in tls.values()
        if isinstance(tl.tally, dict) and tl.tally
    ]
    assert any(type(t) is Tally for t in tallies)
    assert msgspec.msgpack.encode(again.export()) == msgspec.msgpack.encode(state.export())


def test_a_stream_without_raw_aggregates_folds_in_batches() -> None:
    """A merchant's novelty stream (raw_ms 0) keeps entries past its horizon until a batch
    is due, then folds them all; its reads do not change (test_point_in_time)."""
    state = FeatureState(load_catalog())
    idx = next(
        s.index for s in state.streams if s.by == "merchant" and s.of == "ip" and not s.raw_ms
    )
    lateness = state.lateness_ms
    step = MINUTE
    for i in range(40):
        state.update(payment(i, 10_000_000 + i * step, merchant="m0", ip=f"10.0.0.{i}"))
    tl = state.timelines(idx)["m0"]
    assert tl.ts is not None
    newest = tl.ts[-1]
    horizon = newest - lateness
    assert tl.ts[0] > horizon - FOLD_SLACK_MS - step  # at most a batch past the horizon
    assert tl.past  # and the older ones folded
    assert all(ts <= horizon for ts in tl.past.values())


def payment(i: int, ts: int, merchant: str | None = None, ip: str = "10.0.0.1") -> Event:
    return Event(
        event_id=f"p{i}",
        type="payment",
        ts=ts,
        user_id=f"u{i % 5}",
        device_id="d0",
        ip=ip,
        amount=100 * (i % 7 + 1),
        card=Card(token=f"pan_{i % 3}"),
        merchant=Merchant(id=merchant or f"m{i % 2}", category="food"),
    )
