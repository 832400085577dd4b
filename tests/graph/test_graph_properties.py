"""The incremental identity graph equals a networkx recomputation over random streams.

Streams mix every linking event type, failed events (which link nothing), card binds and
unbinds (and re-binds), carrier signals without an account, fraud reports and chargebacks
that reference earlier events (resolved both from the graph's own memory and from a
`referenced` event passed in), out-of-order times, expiry sweeps, and tiny caps so that
hubs, full nodes and capped component searches happen in most streams. Before every event
both sides answer every feature; they must agree exactly. Export/restore mid-stream must
continue identically.
"""

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nx_reference import NxReference

from payguard.events import Card, Event, Payee
from payguard.features import NEVER
from payguard.graph import GraphConfig, GraphFeatures

HOUR = 3_600_000
TYPES = [
    "register",
    "login",
    "kyc_verify",
    "card_bind",
    "card_unbind",
    "payment",
    "transfer",
    "phone_change",
    "sim_swap",
    "fraud_report",
    "chargeback",
    "label",
    "challenge_result",
]


@st.composite
def configs(draw: st.DrawFn) -> GraphConfig:
    return GraphConfig(
        windows=("2h", "1d"),
        track_ips=draw(st.booleans()),
        hub_degree=draw(st.integers(1, 4)),
        max_degree=draw(st.integers(2, 6)),
        max_component_accounts=draw(st.integers(2, 6)),
        max_ball_nodes=draw(st.integers(2, 14)),
        max_distance=draw(st.integers(0, 6)),
        horizon="2d",
        standing_horizon="4d",
        max_refs=draw(st.integers(0, 8)),
        sweep_every=draw(st.integers(1, 9)),
    )


@st.composite
def events(draw: st.DrawFn, max_events: int = 45) -> list[tuple[Event, bool]]:
    """Events in arrival order, each with a flag: pass the referenced event in."""
    n = draw(st.integers(1, max_events))
    clock = 1_700_000_000_000
    out: list[tuple[Event, bool]] = []
    for i in range(n):
        clock += draw(st.sampled_from([0, 60_000, HOUR, 3 * HOUR, 20 * HOUR, 50 * HOUR]))
        ts = clock - draw(st.sampled_from([0, 0, 0, 600_000]))
        out.append((draw(_event(i, ts, [e.event_id for e, _ in out])), draw(st.booleans())))
    return out


@st.composite
def _event(draw: st.DrawFn, i: int, ts: int, earlier: list[str]) -> Event:
    kind = draw(st.sampled_from(TYPES))
    if kind in ("fraud_report", "chargeback", "label", "challenge_result") and not earlier:
        kind = "login"
    maybe = lambda values: draw(st.sampled_from([None, *values]))  # noqa: E731
    fields: dict[str, Any] = {
        "event_id": f"e{i}",
        "type": kind,
        "ts": ts,
        "user_id": None if kind == "sim_swap" else draw(st.sampled_from(["u0", "u1", "u2", "u3"])),
        "device_id": maybe(["d0", "d1", "d2"]),
        "phone": maybe(["tel_0", "tel_1"]),
        "ip": maybe(["ip0", "ip1"]),
        "id_number": maybe(["idn_0", "idn_1", "idn_2"]) if kind != "payment" else None,
        "success": maybe([True, False]),
    }
    if kind in ("card_bind", "card_unbind", "payment", "transfer"):
        fields["card"] = maybe([Card(token=f"pan_{c}") for c in range(3)])
    if kind == "transfer":
        fields["payee"] = maybe([Payee(id="p0"), Payee(id="p1")])
    if kind in ("fraud_report", "chargeback", "label", "challenge_result"):
        fields["ref_event_id"] = draw(st.sampled_from([*earlier, "missing"]))
    if kind == "label":
        fields["label"] = draw(st.sampled_from(["fraud", "not_fraud"]))
    if kind == "challenge_result":
        fields["outcome"] = draw(st.sampled_from(["passed", "failed"]))
    return Event(**fields)


def _replay(config: GraphConfig, stream: list[tuple[Event, bool]], cut: int | None) -> None:
    fast = GraphFeatures(config)
    slow = NxReference(config)
    names = set(fast.names())
    seen: dict[str, Event] = {}
    for seq, (event, pass_ref) in enumerate(stream, start=1):
        if seq == cut:
            restored = GraphFeatures(config)
            restored.restore(fast.export())
            fast = restored
        expected = slow.snapshot(event)
        assert set(expected) == names
        assert fast.snapshot(event, names) == expected, (seq, event)
        distance = fast.snapshot(event, {"graph_reported_distance"})
        assert distance == {"graph_reported_distance": expected["graph_reported_distance"]}
        referenced = seen.get(event.ref_event_id or "") if pass_ref else None
        fast.update(event, seq, referenced)
        slow.update(event, seq, referenced)
        seen.setdefault(event.event_id, event)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), events(), st.none() | st.integers(1, 45))
def test_graph_matches_networkx(
    config: GraphConfig, stream: list[tuple[Event, bool]], cut: int | None
) -> None:
    _replay(config, stream, cut)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(max_events=30))
def test_default_config_matches_networkx(stream: list[tuple[Event, bool]]) -> None:
    _replay(GraphConfig(sweep_every=7), stream, None)


def test_reference_sees_a_reported_neighbour() -> None:
    """A sanity check of the twin itself, so the property test cannot pass vacuously."""
    cfg = GraphConfig()
    slow = NxReference(cfg)
    slow.update(Event(event_id="a", type="login", ts=1, user_id="u0", device_id="d"), 1)
    slow.update(Event(event_id="b", type="login", ts=2, user_id="u1", device_id="d"), 2)
    slow.update(Event(event_id="r", type="fraud_report", ts=3, ref_event_id="a"), 3)
    probe = Event(event_id="p", type="payment", ts=4, user_id="u1")
    got = slow.snapshot(probe)
    assert got["graph_reported_distance"] == 2
    assert got["graph_component_reported"] == 1
    assert got["graph_reported_distance"] != NEVER
