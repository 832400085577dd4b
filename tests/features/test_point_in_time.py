"""Incremental feature state equals a brute-force recomputation over the raw log.

Random streams mix every aggregate, pair entities, `*` filters, conditional filters,
feedback (`source: referenced`), carrier signals that reach accounts only through phone
links, transfers filed under the receiving account (`account: payee`), source networks of
IPv4, IPv6 and unparsable addresses, out-of-order arrival within the lateness, repeated
timestamps, hour-long gaps (for the hour habit) and sweeps. Both implementations answer
every feature before every event; they must agree exactly.

Watched history (`is_new` / `age` unknown until payguard has watched an entity long enough,
`watched_minutes`): streams that start with back-filled account records dated days
earlier, accounts registered under watch, and a learning period short enough that the
streams cross it.
"""

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import payguard.features.compiled as compiled
from payguard.events import Card, Event, Merchant, Payee
from payguard.features import Catalog, FeatureSpec, FeatureState, load_catalog
from payguard.features.reference import ReferenceFeatures
from payguard.features.timeline import Tally

LATENESS_MS = 60_000
HOURS = 2 * 3_600_000 + 1_234
USERS = ["u0", "u1", "u2", "u3"]
IPS = ["10.0.0.1", "10.0.0.9", "10.0.1.2", "2001:db8::1", "2001:db8:0:1::2", "::ffff:10.0.0.3", "x"]

BEHAVIOUR_FEATURES: list[dict[str, Any]] = [
    {
        "how": "quantile",
        "q": 0.5,
        "of": "amount",
        "over": "pay",
        "by": "user",
        "windows": ["5m", "2h"],
    },
    {"how": "quantile", "q": 0.9, "of": "amount", "over": "pay", "by": "user", "windows": ["20m"]},
    {"how": "quantile", "q": 0.25, "of": "amount", "over": "settled_pay", "by": "merchant"},
    {"how": "sum", "of": "amount", "over": "settled_pay", "by": "merchant", "windows": ["1h"]},
    # a customer's part of a merchant's volume, and refunds per customer and merchant
    # (cash-out collusion: rules/default.yaml, 2026.12.8)
    {"how": "sum", "of": "amount", "over": "pay", "by": "user+merchant", "windows": ["30m"]},
    {"how": "sum", "of": "amount", "over": "pay", "by": "merchant", "windows": ["2h"]},
    {"how": "count", "over": "refund", "by": "user+merchant", "windows": ["1h"]},
    # the cards one customer paid one merchant with (a third card: cash-out, 2026.12.9)
    {"how": "distinct", "of": "card", "over": "pay", "by": "user+merchant", "windows": ["30m"]},
    {"how": "quantile", "q": 0.9, "of": "amount", "over": "unstopped_pay", "by": "merchant"},
    {"how": "count", "over": "unstopped_pay", "by": "merchant", "windows": ["2h"]},
    {"how": "minutes_since", "over": "stopped", "by": "merchant", "windows": ["30m"]},
    {"how": "hour_share", "over": "any", "by": "user", "windows": ["3h", "2d"]},
    {"how": "hour_share", "over": "label", "by": "merchant", "windows": ["1d"]},
    {"how": "top_share", "of": "card", "over": "pay", "by": "merchant", "windows": ["10m", "1d"]},
    {"how": "top_share", "of": "user", "over": "pay", "by": "merchant", "windows": ["30m"]},
    {"how": "distinct", "of": "user", "over": "pay", "by": "merchant", "windows": ["30m"]},
    {"how": "top_share", "of": "user", "over": "any", "by": "device", "windows": ["20m"]},
    {"how": "top_share", "of": "phone", "over": "phone_risk", "by": "user", "windows": ["1h"]},
    {"how": "is_new", "of": "net", "over": "any", "by": "merchant", "windows": ["30m"]},
    {"how": "age", "over": "pay", "by": "merchant+net"},
    {"how": "distinct", "of": "net", "over": "any", "by": "user", "windows": ["1h"]},
    # the source networks of a merchant's server-to-server debits (leaked credentials, 2026.12.22)
    {"how": "distinct", "of": "net", "over": "api_pay", "by": "merchant", "windows": ["30m"]},
    {"how": "count", "over": "label", "by": "merchant+net", "windows": ["1h"]},
    {"how": "sum", "of": "amount", "over": "label", "by": "card", "windows": ["20m"]},
    {"how": "distinct", "of": "user", "over": "label", "by": "merchant", "windows": ["1h"]},
    {"how": "minutes_since", "over": "label", "by": "payee", "windows": ["2h"]},
    {"how": "is_new", "of": "user", "over": "label", "by": "merchant", "windows": ["1h"]},
    {"how": "minutes_since", "over": "money_in", "by": "user", "windows": ["1h"]},
    {"how": "sum", "of": "amount", "over": "money_in", "by": "user", "windows": ["10m", "1h"]},
    {"how": "distinct", "of": "payee", "over": "money_in", "by": "user", "windows": ["1h"]},
    {"how": "count", "over": "any_in", "by": "card", "windows": ["1h"]},
    {"how": "quantile", "q": 0.5, "of": "amount", "over": "money_in", "by": "user"},
]
"""The behavioural aggregates and the views they need (quantiles, hour habit, top share,
source networks, money received), sharing streams with the plain ones where they can."""

SMALL_CATALOG = msgspec.convert(
    {
        "lateness": "1m",
        "filters": {
            "any": {"types": ["*"]},
            "login_fail": {"types": ["login"], "success": False},
            "pay": {"types": ["payment", "transfer"]},
            "settled_pay": {"types": ["payment", "transfer"], "settled": True},
            # the merchant's payments from before a stop (rules' baseline after one)
            "unstopped_pay": {"types": ["payment"], "settled": True, "before_stop": "20m"},
            "gift": {"types": ["payment"], "categories": ["gift_card", "game"]},
            "api_pay": {"types": ["payment"], "channels": ["api"]},
            "refund": {"types": ["refund"]},
            "phone_risk": {"types": ["sim_swap", "line_resume"]},
            "label": {"types": ["fraud_report", "label"], "source": "referenced"},
            "stepup_fail": {
                "types": ["challenge_result"],
                "outcomes": ["failed", "abandoned"],
                "methods": ["face", "hardware_token"],
            },
            "bind": {"types": ["card_bind"]},
            "money_in": {"types": ["transfer"], "settled": True, "account": "payee"},
            "any_in": {"types": ["*"], "account": "payee"},
            "stopped": {"types": ["*"], "stopped": True},
        },
        "features": [
            {"how": "count", "over": "login_fail", "by": "ip", "windows": ["2m", "10m"]},
            {"how": "distinct", "of": "user", "over": "login_fail", "by": "ip", "windows": ["5m"]},
            {"how": "sum", "of": "amount", "over": "pay", "by": "user", "windows": ["3m", "20m"]},
            {"how": "sum", "of": "amount", "over": "pay", "by": "user+channel", "windows": ["5m"]},
            {"how": "sum", "of": "amount", "over": "settled_pay", "by": "user", "windows": ["5m"]},
            {"how": "count", "over": "settled_pay", "by": "card", "windows": ["20m"]},
            {"how": "count", "over": "gift", "by": "card", "windows": ["5m"]},
            {"how": "is_new", "of": "device", "over": "any", "by": "user", "windows": ["10m"]},
            {"how": "is_new", "of": "payee", "over": "pay", "by": "user", "windows": ["10m"]},
            {"how": "distinct", "of": "device", "over": "any", "by": "user", "windows": ["4m"]},
            {"how": "minutes_since", "over": "phone_risk", "by": "user", "windows": ["30m"]},
            {"how": "seconds_since", "over": "phone_risk", "by": "phone", "windows": ["3m"]},
            {"how": "age", "over": "any", "by": "device"},
            {"how": "age", "over": "pay", "by": "merchant"},
            {"how": "count", "over": "label", "by": "merchant", "windows": ["30m"]},
            {"how": "count", "over": "label", "by": "device", "windows": ["10m"]},
            {"how": "count", "over": "stepup_fail", "by": "user", "windows": ["10m"]},
            {"how": "distinct", "of": "user", "over": "bind", "by": "card", "windows": ["15m"]},
            {"how": "minutes_since", "over": "stopped", "by": "user", "windows": ["20m"]},
            {"how": "count", "over": "stopped", "by": "device", "windows": ["5m", "1h"]},
            {"how": "count", "over": "stopped", "by": "card", "windows": ["10m"]},
            *BEHAVIOUR_FEATURES,
        ],
    },
    Catalog,
).validate()

WATCH_CATALOG = msgspec.structs.replace(
    SMALL_CATALOG,
    learning="5m",
    features=[
        *SMALL_CATALOG.features,
        msgspec.convert({"how": "watched", "over": "any", "by": "user"}, FeatureSpec),
        msgspec.convert({"how": "watched", "over": "any", "by": "device"}, FeatureSpec),
        msgspec.convert({"how": "watched", "over": "any", "by": "all"}, FeatureSpec),
        msgspec.convert({"how": "age", "over": "any", "by": "user"}, FeatureSpec),
        msgspec.convert({"how": "age", "over": "any", "by": "user+device"}, FeatureSpec),
        msgspec.convert({"how": "age", "over": "bind", "by": "card"}, FeatureSpec),
        msgspec.convert({"how": "age", "over": "pay", "by": "user+payee"}, FeatureSpec),
        msgspec.convert(
            {"how": "is_new", "of": "ip", "over": "any", "by": "user", "windows": ["3m", "30m"]},
            FeatureSpec,
        ),
        msgspec.convert(
            {"how": "is_new", "of": "ip", "over": "pay", "by": "merchant", "windows": ["8m"]},
            FeatureSpec,
        ),
    ],
).validate()
"""Learning period 5m with windows shorter and longer than it, so streams cross it."""

BACKFILL_TYPES = ["register", "kyc_verify", "card_bind", "otp_send"]
"""Account records a bank back-fills (at their real, earlier dates) before going live."""

TYPES = [
    "login",
    "payment",
    "transfer",
    "card_bind",
    "sim_swap",
    "line_resume",
    "fraud_report",
    "label",
    "challenge_result",
    "register",
    "kyc_verify",
    "otp_send",
    "refund",
]


@st.composite
def streams(
    draw: st.DrawFn, max_events: int = 40, types: list[str] = TYPES
) -> list[tuple[Event, bool]]:
    """Events in arrival order, each with a flag: sweep the fast state after it."""
    n = draw(st.integers(min_value=1, max_value=max_events))
    clock = 1_700_000_000_000
    newest = clock
    events: list[tuple[Event, bool]] = []
    for i in range(n):
        clock += draw(st.sampled_from([0, 0, 1, 1_000, 15_000, 45_000, 90_000, 400_000, HOURS]))
        newest = max(newest, clock)
        late = draw(st.integers(min_value=0, max_value=LATENESS_MS))
        ts = newest - late if draw(st.booleans()) else clock
        earlier = [e.event_id for e, _ in events]
        events.append((draw(_event(i, ts, earlier, types)), draw(st.booleans())))
    return events


@st.composite
def _event(
    draw: st.DrawFn, i: int, ts: int, earlier_ids: list[str], types: list[str] = TYPES
) -> Event:
    kind = draw(st.sampled_from(types))
    if kind in ("fraud_report", "label") and not earlier_ids:
        kind = "login"
    carrier = kind in ("sim_swap", "line_resume")
    maybe = lambda values: draw(st.sampled_from([None, *values]))  # noqa: E731
    fields: dict[str, Any] = {
        "event_id": f"e{i}",
        "type": kind,
        "ts": ts,
        "user_id": None if carrier else draw(st.sampled_from(USERS)),
        "device_id": maybe(["d0", "d1", "d2"]),
        "ip": maybe(IPS),
        "phone": draw(st.sampled_from(["tel_a", "tel_b"]))
        if carrier
        else maybe(["tel_a", "tel_b"]),
        "channel": maybe(["app", "web", "api"]),
    }
    if kind == "login":
        fields["success"] = draw(st.booleans())
    if kind in ("payment", "transfer", "refund"):
        fields["amount"] = draw(st.integers(min_value=1, max_value=10**7))
        fields["merchant"] = Merchant(
            id=draw(st.sampled_from(["m0", "m1"])),
            category=draw(st.sampled_from(["gift_card", "game", "food"])),
        )
        fields["card"] = maybe([Card(token="pan_1"), Card(token="pan_2")])
        fields["payee"] = maybe(
            [
                Payee(id="p0"),
                Payee(id="p1", card=Card(token="pan_3")),
                Payee(id="u0"),
                Payee(id="u1"),
            ]
        )
    if kind == "card_bind":
        fields["card"] = Card(token=draw(st.sampled_from(["pan_1", "pan_2", "pan_3"])))
    if kind in ("fraud_report", "label"):
        fields["ref_event_id"] = draw(st.sampled_from([*earlier_ids, "missing"]))
    if kind == "label":
        fields["label"] = draw(st.sampled_from(["fraud", "not_fraud"]))
        fields["source"] = draw(st.sampled_from([None, "customer", "analyst", "bank"]))
    if kind == "challenge_result":
        fields["method"] = draw(st.sampled_from(["face", "hardware_token", "sms_otp"]))
        fields["outcome"] = draw(st.sampled_from(["passed", "failed", "abandoned"]))
    return Event(**fields)


@st.composite
def backfilled_streams(draw: st.DrawFn) -> list[tuple[Event, bool]]:
    """Back-filled account records dated minutes to days before the live stream, in time
    order, then the live stream (which registers some accounts under watch)."""
    live = draw(streams(max_events=30))
    start = live[0][0].ts
    n = draw(st.integers(min_value=0, max_value=8))
    backfill: list[tuple[Event, bool]] = []
    for i in range(n):
        ago = draw(st.sampled_from([60_000, 3_600_000, 86_400_000, 30 * 86_400_000]))
        event = draw(_event(i, start - ago, [], BACKFILL_TYPES))
        backfill.append((msgspec.structs.replace(event, event_id=f"b{i}"), False))
    backfill.sort(key=lambda pair: pair[0].ts)  # in time order: older than the lateness
    return backfill + live


def _declined(event: Event) -> bool:
    """A third of the money the engine would have sent to review or blocked (`settled`
    filters must skip it, `stopped` ones keep only it), and every card binding, chosen
    from the drawn event so the stream stays one draw."""
    if event.type == "card_bind":
        return True
    return event.amount is not None and event.amount % 3 == 0


def _run(catalog: Catalog, stream: list[tuple[Event, bool]]) -> None:
    fast = FeatureState(catalog)
    slow = ReferenceFeatures(catalog)
    plan = fast.plan(fast.layout)
    seen: dict[str, Event] = {}
    for event, sweep in stream:
        expected = slow.snapshot(event)
        assert fast.snapshot(event, plan) == expected, event
        referenced = seen.get(event.ref_event_id) if event.ref_event_id else None
        declined = _declined(event)
        fast.update(event, referenced, declined)
        slow.update(event, declined)
        seen.setdefault(event.event_id, event)
        if sweep:
            fast.sweep()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_small_catalog_matches_brute_force(stream: list[tuple[Event, bool]]) -> None:
    _run(SMALL_CATALOG, stream)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(backfilled_streams())
def test_watched_history_matches_brute_force(stream: list[tuple[Event, bool]]) -> None:
    _run(WATCH_CATALOG, stream)


FEEDBACK_MIX = ["payment", "transfer", "fraud_report", "fraud_report", "label", "label", "login"]
"""Money, reports and labels: what clearing an entity (features.cleared) is about."""


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(types=FEEDBACK_MIX))
def test_cleared_entities_match_brute_force(stream: list[tuple[Event, bool]]) -> None:
    """An analyst's or a bank's `not_fraud` label discounts a merchant's, card's and
    payee's earlier reports from the label's time on, and never before it."""
    _run(SMALL_CATALOG, stream)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(max_events=25))
def test_default_catalog_matches_brute_force(stream: list[tuple[Event, bool]]) -> None:
    _run(load_catalog(), stream)


def test_feedback_never_counts_before_it_arrives() -> None:
    """A fraud report labels a merchant only from the report's own time on."""
    state = FeatureState(SMALL_CATALOG)
    plan = state.plan(["count_label_by_merchant_30m"])
    pay = Event(
        event_id="p",
        type="payment",
        ts=1_000_000,
        user_id="u",
        amount=100,
        merchant=Merchant(id="m0"),
    )
    report = Event(event_id="r", type="fraud_report", ts=1_600_000, user_id="u", ref_event_id="p")
    later_pay = msgspec.structs.replace(pay, event_id="p2", ts=1_300_000)
    state.update(pay)
    state.update(report, pay)
    assert state.snapshot(later_pay, plan) == {"count_label_by_merchant_30m": 0}
    after = msgspec.structs.replace(pay, event_id="p3", ts=1_700_000)
    assert state.snapshot(after, plan) == {"count_label_by_merchant_30m": 1}


@pytest.mark.parametrize("late_by", [0, LATENESS_MS // 2, LATENESS_MS])
def test_out_of_order_event_is_placed_by_time(late_by: int) -> None:
    state = FeatureState(SMALL_CATALOG)
    plan = state.plan(["count_login_fail_by_ip_2m"])
    fail = lambda i, ts: Event(  # noqa: E731
        event_id=f"f{i}", type="login", ts=ts, user_id="u", ip="ip0", success=False
    )
    state.update(fail(1, 10_000_000))
    state.update(fail(2, 10_000_000 - late_by))
    probe = fail(3, 10_000_000 - late_by)
    assert state.snapshot(probe, plan)["count_login_fail_by_ip_2m"] == (2 if late_by == 0 else 1)


def _containers_agree(state: FeatureState) -> None:
    """Each raw head's derived containers hold exactly what its entries say: the tally
    (and a `Tally`'s total and heaviest weight unless unknown), the ranks, the running
    totals. The update files and folds them inline (features.compiled), not through
    `Timeline.add` and `fold_through`; the reads' shortcuts trust them."""
    for idx in range(len(state.streams)):
        for key, tl in state.timelines(idx).items():
            if not tl.ts:
                assert tl.values is None and tl.tally is None and tl.ranked is None, key
                continue
            values = list(tl.values) if tl.values is not None else []
            weights = list(tl.weights) if tl.weights is not None else [1] * len(values)
            assert len(weights) == len(values) == len(tl.ts) or tl.values is None, key
            if tl.ranked is not None:
                assert list(tl.ranked) == sorted(values), key
            if tl.totals is not None:
                sums, running = [], tl.running
                for value in values:
                    running += value
                    sums.append(running)
                assert list(tl.totals) == sums, key
            if isinstance(tl.tally, dict):
                want: dict[Any, int] = {}
                for value, weight in zip(values, weights, strict=True):
                    want[value] = want.get(value, 0) + weight
                assert dict(tl.tally) == want, key
                if isinstance(tl.tally, Tally):
                    assert tl.tally.total == sum(weights), key
                    assert tl.tally.top in (-1, max(want.values())), key
            elif tl.tally is not None:
                assert list(tl.tally) == [values.count(h) for h in range(24)], key


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_inline_filing_keeps_the_containers_exact(stream: list[tuple[Event, bool]]) -> None:
    """After every event (and sweep), the containers the generated update opened, appended
    to and folded inline agree with the entries (issue 11: `add` and `fold_through` are
    no longer called for an empty head or a one-entry fold)."""
    state = FeatureState(SMALL_CATALOG)
    for event, sweep in stream:
        state.update(event, None, _declined(event))
        _containers_agree(state)
        if sweep:
            state.sweep()
            _containers_agree(state)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(backfilled_streams(), st.sampled_from([0, 1, 2, 3]))
def test_batched_folding_matches_brute_force_for_any_batch(
    stream: list[tuple[Event, bool]], batch: int
) -> None:
    """Heads of streams without raw aggregates fold only once they hold more than
    `compiled.FOLD_BATCH` entries: with batches small enough for the drawn streams'
    entities to reach them (the default, 8, is reached by few), the reads stay exact."""
    default = compiled.FOLD_BATCH
    compiled.FOLD_BATCH = batch
    try:
        _run(WATCH_CATALOG, stream)
        _run(SMALL_CATALOG, stream)
    finally:
        compiled.FOLD_BATCH = default
