"""The documented semantics of the identity graph, one behaviour per test (docs/graph.md)."""

import json
from typing import Any

import pytest

from payguard.events import Card, Event
from payguard.features import NEVER
from payguard.graph import GraphConfig, GraphFeatures

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_700_000_000_000


class Stream:
    """Feeds a GraphFeatures with numbered events; reads features as of a probe."""

    def __init__(self, config: GraphConfig | None = None) -> None:
        self.graph = GraphFeatures(config)
        self.seq = 0

    def add(self, type: str, ts: int = T0, **fields: Any) -> Event:
        self.seq += 1
        event = Event(event_id=f"e{self.seq}", type=type, ts=ts, **fields)
        self.graph.update(event, self.seq)
        return event

    def read(self, type: str = "payment", ts: int = T0, **fields: Any) -> dict[str, Any]:
        probe = Event(event_id="probe", type=type, ts=ts, **fields)
        return self.graph.snapshot(probe, set(self.graph.names()))


def test_nothing_needed_reads_nothing() -> None:
    s = Stream()
    s.add("login", user_id="u1", device_id="d1")
    assert s.graph.snapshot(Event(event_id="x", type="login", ts=T0, user_id="u1"), set()) == {}


def test_other_accounts_exclude_the_events_own_and_respect_windows() -> None:
    s = Stream()
    s.add("login", T0 - 3 * DAY, user_id="u1", device_id="d1")
    s.add("login", T0 - HOUR, user_id="u2", device_id="d1")
    got = s.read(ts=T0, user_id="u1", device_id="d1")
    assert got["graph_other_accounts_by_device"] == 1  # u2; u1 is the event's own account
    assert got["graph_other_accounts_by_device_24h"] == 1
    got = s.read(ts=T0, user_id="u3", device_id="d1")
    assert got["graph_other_accounts_by_device"] == 2
    assert got["graph_other_accounts_by_device_24h"] == 1  # u1 linked three days ago


def test_identity_and_phone_fall_back_to_the_accounts_own() -> None:
    s = Stream()
    s.add("kyc_verify", user_id="u1", id_number="idn_a", phone="tel_a")
    s.add("kyc_verify", user_id="u2", id_number="idn_a", phone="tel_b")
    got = s.read(user_id="u2")  # a payment carries neither
    assert got["graph_other_accounts_by_identity"] == 1
    assert got["graph_other_accounts_by_phone"] == 0
    assert s.read(user_id="u2", device_id="d9")["graph_other_accounts_by_device"] == 0


def test_failed_events_and_feedback_link_nothing() -> None:
    s = Stream()
    s.add("login", user_id="u1", device_id="d1", success=False)
    s.add("fraud_report", user_id="u2", device_id="d1", ref_event_id="e1")
    assert s.read(user_id="u3", device_id="d1")["graph_other_accounts_by_device"] == 0


def test_unbind_removes_the_card_edge_and_a_later_bind_restores_it() -> None:
    s = Stream()
    card = Card(token="pan_1")
    s.add("card_bind", T0 - 2 * DAY, user_id="u1", card=card)
    assert s.read(user_id="u1")["graph_cards_by_account"] == 1
    assert s.read(user_id="u1")["graph_cards_by_account_24h"] == 0
    assert s.read(user_id="u2", card=card)["graph_card_bound_elsewhere"] is True
    s.add("card_unbind", T0 - DAY, user_id="u1", card=card)
    assert s.read(user_id="u1")["graph_cards_by_account"] == 0
    assert s.read(user_id="u2", card=card)["graph_other_accounts_by_card"] == 0
    s.add("card_bind", T0 - HOUR, user_id="u1", card=card)
    got = s.read(user_id="u1")
    assert got["graph_cards_by_account"] == 1
    assert got["graph_cards_by_account_24h"] == 1  # a fresh binding: its time restarts


def test_payment_with_a_card_links_but_does_not_bind() -> None:
    s = Stream()
    card = Card(token="pan_1")
    s.add("payment", user_id="u1", card=card)
    got = s.read(user_id="u2", card=card)
    assert got["graph_other_accounts_by_card"] == 1
    assert got["graph_card_bound_elsewhere"] is False


def test_card_bound_to_an_account_of_another_identity() -> None:
    s = Stream()
    card = Card(token="pan_1")
    s.add("kyc_verify", user_id="owner", id_number="idn_owner")
    s.add("card_bind", user_id="owner", card=card)
    s.add("kyc_verify", user_id="thief", id_number="idn_thief")
    s.add("kyc_verify", user_id="twin", id_number="idn_owner")
    assert s.read("card_bind", user_id="thief", card=card)["graph_card_bound_other_identity"]
    assert not s.read("card_bind", user_id="twin", card=card)["graph_card_bound_other_identity"]


def test_hub_is_counted_but_not_traversed() -> None:
    s = Stream(GraphConfig(hub_degree=3))
    for i in range(5):  # an office device shared by five accounts
        s.add("login", user_id=f"u{i}", device_id="office")
    got = s.read(user_id="u0", device_id="office")
    assert got["graph_other_accounts_by_device"] == 4
    assert got["graph_component_accounts"] == 1  # the hub does not make them one ring
    s.add("login", user_id="u1", device_id="shared")
    s.add("login", user_id="u2", device_id="shared")  # a small, real link
    assert s.read(user_id="u1")["graph_component_accounts"] == 2


def test_component_size_is_capped() -> None:
    s = Stream(GraphConfig(max_component_accounts=3, hub_degree=100))
    for i in range(10):  # a chain u0 - d0 - u1 - d1 - u2 ...
        s.add("login", user_id=f"u{i}", device_id=f"d{i}")
        s.add("login", user_id=f"u{i + 1}", device_id=f"d{i}")
    assert s.read(user_id="u0")["graph_component_accounts"] == 3
    assert s.read(user_id="u10")["graph_component_accounts"] == 3


def test_reports_propagate_to_the_component_with_distance() -> None:
    s = Stream()
    pay = s.add("payment", user_id="mule", device_id="farm")  # e1
    s.add("login", user_id="u2", device_id="farm")
    s.add("login", user_id="u2", phone="tel_x")
    s.add("login", user_id="u3", phone="tel_x")
    assert s.read(user_id="u3")["graph_component_reported"] == 0
    s.add("fraud_report", user_id="victim", ref_event_id=pay.event_id)
    got = s.read(user_id="u3")
    assert got["graph_component_reported"] == 1
    assert got["graph_reported_distance"] == 4  # u3 - tel_x - u2 - farm - mule
    assert s.read(user_id="mule")["graph_reported_distance"] == 0
    assert s.read(user_id="nobody")["graph_reported_distance"] == NEVER


def test_referenced_event_passed_in_wins_over_memory() -> None:
    s = Stream(GraphConfig(max_refs=1))
    old = s.add("payment", user_id="mule", device_id="d")
    s.add("login", user_id="other")  # pushes `old` out of the one-entry memory
    report = Event(event_id="r", type="chargeback", ts=T0, ref_event_id=old.event_id)
    s.graph.update(report, 99)
    assert s.read(user_id="mule")["graph_reported_distance"] == NEVER
    s.graph.update(report, 100, referenced=old)
    assert s.read(user_id="mule")["graph_reported_distance"] == 0


def test_new_link_joins_two_components_holding_accounts() -> None:
    s = Stream()
    s.add("login", user_id="u1", device_id="d1")
    s.add("login", user_id="u2", device_id="d2")
    assert s.read("login", user_id="u1", device_id="d2")["graph_new_link"] is True
    assert s.read("login", user_id="u1", device_id="d1")["graph_new_link"] is False
    assert s.read("login", user_id="u1", device_id="fresh")["graph_new_link"] is False
    assert s.read("login", user_id="new", device_id="d2")["graph_new_link"] is False
    failed = s.read("login", user_id="u1", device_id="d2", success=False)
    assert failed["graph_new_link"] is False


def test_idle_edges_expire_at_the_sweep_standing_links_later() -> None:
    s = Stream(GraphConfig(horizon="10d", standing_horizon="30d", sweep_every=1_000_000))
    s.add("kyc_verify", T0, user_id="u1", id_number="idn_a", device_id="d1")
    s.add("card_bind", T0, user_id="u1", card=Card(token="pan_b"))
    s.add("payment", T0, user_id="u1", card=Card(token="pan_u"))  # used, never bound
    s.add("login", T0 + 20 * DAY, user_id="zz")  # moves the watermark
    probe = {"user_id": "u2", "device_id": "d1", "id_number": "idn_a", "ts": T0 + 20 * DAY}
    assert s.read(**probe)["graph_other_accounts_by_device"] == 1  # not swept yet
    assert s.graph.sweep() == 2  # the device and the used card; identity and binding stand
    got = s.read(**probe)
    assert got["graph_other_accounts_by_device"] == 0
    assert got["graph_other_accounts_by_identity"] == 1
    bound = s.read("card_bind", user_id="u2", card=Card(token="pan_b"), ts=T0 + 20 * DAY)
    assert bound["graph_card_bound_elsewhere"] is True
    used = s.read("card_bind", user_id="u2", card=Card(token="pan_u"), ts=T0 + 20 * DAY)
    assert used["graph_other_accounts_by_card"] == 0
    s.add("login", T0 + 40 * DAY, user_id="zz")
    assert s.graph.sweep() == 2  # past the standing horizon too


def test_full_nodes_drop_new_links() -> None:
    s = Stream(GraphConfig(max_degree=2))
    for i in range(4):
        s.add("login", user_id=f"u{i}", device_id="d")
    assert s.read(user_id="x", device_id="d")["graph_other_accounts_by_device"] == 2
    assert s.graph.graph.dropped_links == 2


def test_export_restore_round_trip_and_config_check() -> None:
    s = Stream()
    s.add("card_bind", user_id="u1", card=Card(token="pan_1"), device_id="d")
    s.add("login", user_id="u2", device_id="d")
    data = s.graph.export()
    again = GraphFeatures()
    again.restore(data)
    assert again.export() == data
    with pytest.raises(ValueError, match="configuration"):
        GraphFeatures(GraphConfig(hub_degree=7)).restore(data)


def test_neighbourhood_is_json_with_hubs_not_expanded() -> None:
    s = Stream(GraphConfig(hub_degree=2))
    s.add("card_bind", user_id="u1", card=Card(token="pan_1"), device_id="d1")
    s.add("login", user_id="u2", device_id="d1")
    for i in range(3, 6):
        s.add("login", user_id=f"u{i}", device_id="hub")
    s.add("login", user_id="u2", device_id="hub")
    got = s.graph.neighbourhood("account", "u1", depth=4)
    json.dumps(got)
    keys = {n["key"] for n in got["nodes"]}
    assert {"account:u1", "card:pan_1", "device:d1", "account:u2", "device:hub"} == keys
    hub = next(n for n in got["nodes"] if n["key"] == "device:hub")
    assert hub["hub"] is True and hub["degree"] == 4
    card = next(e for e in got["edges"] if e["target"] == "card:pan_1")
    assert card == {
        "source": "account:u1",
        "target": "card:pan_1",
        "first_seen": T0,
        "last_seen": T0,
        "bound_at": T0,
    }
    assert len(got["edges"]) == 4  # u1-d1, u1-pan_1, u2-d1, u2-hub: not the hub's others
    rooted = s.graph.neighbourhood("device", "hub", depth=1)
    assert len(rooted["nodes"]) == 5  # the root itself is always expanded
    assert s.graph.neighbourhood("phone", "none")["found"] is False
    with pytest.raises(ValueError, match="unknown entity kind"):
        s.graph.neighbourhood("merchant", "m1")
