"""The behavioural aggregates on worked examples: the definitions the property test holds
the fast state and its brute-force twin to, pinned to numbers a reader can check."""

import ipaddress
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payguard.events import Card, Event, Merchant, Payee
from payguard.features import Catalog, FeatureState
from payguard.features.spec import received, source_network

HOUR_MS = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % (24 * HOUR_MS)  # midnight UTC


def _catalog(features: list[dict[str, Any]], **filters: dict[str, Any]) -> Catalog:
    return msgspec.convert(
        {"filters": {"pay": {"types": ["payment", "transfer"]}, **filters}, "features": features},
        Catalog,
    ).validate()


def _pay(i: int, ts: int, amount: int = 100, **fields: Any) -> Event:
    return Event(event_id=f"e{i}", type="payment", ts=ts, user_id="u", amount=amount, **fields)


def test_quantile_is_nearest_rank_in_integer_fen() -> None:
    catalog = _catalog(
        [
            {"how": "quantile", "q": 0.5, "of": "amount", "over": "pay", "by": "user"},
            {"how": "quantile", "q": 0.9, "of": "amount", "over": "pay", "by": "user"},
        ]
    )
    state = FeatureState(catalog)
    plan = state.plan(state.layout)
    assert state.snapshot(_pay(0, T0), plan) == {
        "p50_amount_pay_by_user_90d": 0,
        "p90_amount_pay_by_user_90d": 0,
    }
    for i, amount in enumerate([700, 100, 300, 900, 500, 200, 800, 400, 1000, 600]):
        state.update(_pay(i, T0 + i, amount))
    # ten amounts: p50 is the 5th smallest (500), p90 the 9th (900), not an interpolation
    assert state.snapshot(_pay(99, T0 + 99), plan) == {
        "p50_amount_pay_by_user_90d": 500,
        "p90_amount_pay_by_user_90d": 900,
    }


@pytest.mark.parametrize(("q", "name"), [(0.5, "p50"), (0.9, "p90"), (0.995, "p99_5")])
def test_quantile_name_follows_q(q: float, name: str) -> None:
    spec = _catalog([{"how": "quantile", "q": q, "of": "amount", "over": "pay", "by": "card"}])
    assert spec.features[0].names() == [f"{name}_amount_pay_by_card_90d"]


@pytest.mark.parametrize(
    "feature",
    [
        {"how": "quantile", "of": "amount", "over": "pay", "by": "user"},
        {"how": "quantile", "q": 1.0, "of": "amount", "over": "pay", "by": "user"},
        {"how": "quantile", "q": 0.5, "of": "card", "over": "pay", "by": "user"},
        {"how": "count", "q": 0.5, "over": "pay", "by": "user"},
        {"how": "top_share", "over": "pay", "by": "merchant"},
        {"how": "top_share", "of": "amount", "over": "pay", "by": "merchant"},
        {"how": "hour_share", "of": "card", "over": "pay", "by": "user"},
    ],
)
def test_malformed_behaviour_specs_are_refused(feature: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _catalog([feature])


def test_payee_view_cannot_be_referenced() -> None:
    with pytest.raises(ValueError, match="account: payee"):
        _catalog(
            [{"how": "count", "over": "odd", "by": "user"}],
            odd={"types": ["fraud_report"], "source": "referenced", "account": "payee"},
        )


@pytest.mark.parametrize("offset", [8, 0, -5])
def test_hour_share_is_circular(offset: int) -> None:
    """Hours 23:00, 00:00, 01:00 and 12:00: at 00:30 three of four are within an hour. A
    whole-hour UTC offset shifts every hour alike, so the share does not depend on it."""
    catalog = _catalog([{"how": "hour_share", "over": "pay", "by": "user", "windows": ["30d"]}])
    state = FeatureState(catalog, utc_offset_hours=offset)
    plan = state.plan(state.layout)
    for i, h in enumerate([23, 24, 25, 12]):
        state.update(_pay(i, T0 - offset * HOUR_MS + h * HOUR_MS))
    day = T0 - offset * HOUR_MS + 48 * HOUR_MS
    name = "hour_share_pay_by_user_30d"
    assert state.snapshot(_pay(8, day + HOUR_MS // 2), plan) == {name: 750}
    assert state.snapshot(_pay(9, day + 12 * HOUR_MS), plan) == {name: 250}
    assert state.snapshot(_pay(9, day + 6 * HOUR_MS), plan) == {name: 0}


def test_top_share_weighs_by_amount_or_counts() -> None:
    catalog = _catalog(
        [
            {"how": "top_share", "of": "card", "over": "pay", "by": "merchant"},
            {"how": "top_share", "of": "user", "over": "login", "by": "device"},
        ],
        login={"types": ["login"]},
    )
    state = FeatureState(catalog)
    plan = state.plan(state.layout)
    shop = Merchant(id="m")
    for i, (card, amount) in enumerate([("a", 9_000), ("b", 500), ("c", 500), ("b", 0)]):
        state.update(_pay(i, T0 + i, amount, merchant=shop, card=Card(token=card)))
    for i, user in enumerate(["u1", "u2", "u2"]):
        state.update(Event(event_id=f"l{i}", type="login", ts=T0 + i, user_id=user, device_id="d"))
    probe = _pay(9, T0 + 9, merchant=shop, device_id="d")
    assert state.snapshot(probe, plan) == {
        "top_share_card_pay_by_merchant_90d": 900,  # 9,000 of 10,000 fen from card a
        "top_share_user_login_by_device_90d": 666,  # 2 of 3 logins, floor
    }


@pytest.mark.parametrize(
    ("ip", "net"),
    [
        ("10.1.2.3", "10.1.2.0/24"),
        ("2001:db8:1:2::5", "2001:db8:1::/48"),
        ("::ffff:10.1.2.200", "10.1.2.0/24"),
        ("fe80::1%eth0", "fe80::/48"),
        ("10.1.2", None),
        ("not-an-ip", None),
        ("", None),
    ],
)
def test_source_network(ip: str, net: str | None) -> None:
    assert source_network(ip) == net


def test_money_in_is_filed_under_the_receiving_account() -> None:
    catalog = _catalog(
        [
            {"how": "minutes_since", "over": "money_in", "by": "user", "windows": ["72h"]},
            {"how": "sum", "of": "amount", "over": "money_in", "by": "user", "windows": ["24h"]},
            {"how": "distinct", "of": "payee", "over": "money_in", "by": "user"},
        ],
        money_in={"types": ["transfer"], "settled": True, "account": "payee"},
    )
    state = FeatureState(catalog)
    plan = state.plan(state.layout)

    def transfer(i: int, minute: int, sender: str, to: str, amount: int) -> Event:
        return Event(
            event_id=f"t{i}",
            type="transfer",
            ts=T0 + minute * 60_000,
            user_id=sender,
            device_id=f"dev_{sender}",
            amount=amount,
            payee=Payee(id=to),
        )

    state.update(transfer(0, 0, "alice", "mule", 50_000))
    state.update(transfer(1, 5, "bob", "mule", 70_000))
    state.update(transfer(2, 6, "carol", "mule", 90_000), declined=True)  # never arrived
    state.update(transfer(3, 7, "mule", "alice", 1))  # the mule's own money out
    out = state.snapshot(transfer(4, 12, "mule", "elsewhere", 119_000), plan)
    assert out == {
        "minutes_since_money_in_by_user_72h": 7,
        "sum_amount_money_in_by_user_24h": 120_000,
        "distinct_payee_money_in_by_user_90d": 2,
    }
    view = received(transfer(5, 0, "alice", "mule", 1))
    assert view is not None
    assert (view.user_id, view.payee, view.device_id) == ("mule", Payee(id="alice"), None)


def _network_by_ipaddress(ip: str) -> str | None:
    """The brute-force twin of `source_network`: the standard library, no shortcuts."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(ipaddress.ip_network((address, 24 if address.version == 4 else 48), False))


_OCTETS = st.one_of(
    st.integers(min_value=0, max_value=300).map(str),
    st.sampled_from(["00", "01", "001", "010", "256", "", " 1", "1 ", "+1", "-1", "²", "0x1"]),
)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.lists(_OCTETS, min_size=3, max_size=5).map(".".join),
        st.ip_addresses().map(str),
        st.text(alphabet="0123456789abcdef:.%", max_size=24),
    )
)
def test_source_network_agrees_with_ipaddress(ip: str) -> None:
    assert source_network(ip) == _network_by_ipaddress(ip)


BEFORE_STOP: dict[str, Any] = {
    "shop": {"types": ["payment"], "settled": True, "before_stop": "1h"},
    "stopped": {"types": ["*"], "stopped": True},
}
BEFORE_STOP_FEATURES: list[dict[str, Any]] = [
    {"how": "quantile", "q": 0.9, "of": "amount", "over": "shop", "by": "merchant"},
    {"how": "count", "over": "stopped", "by": "merchant", "windows": ["1h"]},
]


def test_before_stop_keeps_the_entitys_trade_from_before_its_stop() -> None:
    """A shop's tickets from before the engine stopped one of its payments stay its
    baseline; what settles within the hour after the stop (a big ticket held or passed
    by its own cardholder) does not move it, and an hour without a stop counts again."""
    state = FeatureState(_catalog(BEFORE_STOP_FEATURES, **BEFORE_STOP))
    plan = state.plan(state.layout)
    shop = Merchant(id="m", category="other")
    p90 = "p90_amount_shop_by_merchant_90d"
    for i in range(5):
        state.update(_pay(i, T0 + i * 60_000, 800, merchant=shop))
    state.update(_pay(5, T0 + 10 * 60_000, 980_000, merchant=shop), declined=True)  # the stop
    state.update(_pay(6, T0 + 20 * 60_000, 490_000, merchant=shop))  # settles under the stop
    assert state.snapshot(_pay(7, T0 + 30 * 60_000, merchant=shop), plan)[p90] == 800
    state.update(_pay(8, T0 + 80 * 60_000, 600_000, merchant=shop))  # an hour after the stop
    assert state.snapshot(_pay(9, T0 + 90 * 60_000, merchant=shop), plan)[p90] == 600_000


@pytest.mark.parametrize(
    ("shop", "stopped_window", "error"),
    [
        ({"types": ["payment"], "before_stop": "1h"}, "1h", "settled events only"),
        ({"types": ["payment"], "settled": True, "before_stop": "1h"}, "30m", "at least"),
    ],
)
def test_before_stop_needs_settled_events_and_a_long_enough_stop_stream(
    shop: dict[str, Any], stopped_window: str, error: str
) -> None:
    features = [
        BEFORE_STOP_FEATURES[0],
        {"how": "count", "over": "stopped", "by": "merchant", "windows": [stopped_window]},
    ]
    with pytest.raises(ValueError, match=error):
        _catalog(features, shop=shop, stopped=BEFORE_STOP["stopped"])


def test_before_stop_by_user_is_refused() -> None:
    features = [
        {"how": "quantile", "q": 0.9, "of": "amount", "over": "shop", "by": "user"},
        {"how": "count", "over": "stopped", "by": "user", "windows": ["1h"]},
    ]
    with pytest.raises(ValueError, match="by user"):
        _catalog(features, **BEFORE_STOP)
