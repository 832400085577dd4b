"""GET /v1/entities/{kind}/{id}/graph over a real server: the neighbourhood the decided
events built, addressed by tokens, never showing a clear card, ID or phone number."""

from typing import Any

import httpx
import pytest
from apiserver import Server, event

T0 = 1_599_183_000_000  # 2020-09-04T09:30:00+08:00
PAN = "6222021234567890128"
ID_NUMBER = "11010519491231002X"
PHONE = "+8613800138000"


@pytest.fixture(scope="module")
def ring(client: httpx.Client) -> dict[str, Any]:
    """Two accounts on one ID number; the first also binds a card on its device. Returns
    the first account's neighbourhood at depth 2."""
    events = [
        event("g-1", "register", "u-g1", T0, phone=PHONE, device_id="dev-g1"),
        event("g-2", "kyc_verify", "u-g1", T0 + 1_000, id_number=ID_NUMBER, method="face"),
        event("g-3", "card_bind", "u-g1", T0 + 2_000, card={"number": PAN}, device_id="dev-g1"),
        event("g-4", "register", "u-g2", T0 + 3_000, device_id="dev-g2"),
        event("g-5", "kyc_verify", "u-g2", T0 + 4_000, id_number=ID_NUMBER, method="face"),
    ]
    for body in events:
        assert client.post("/v1/events", json=body).status_code == 200
    answer = client.get("/v1/entities/account/u-g1/graph", params={"depth": "2"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_neighbourhood_of_an_account(ring: dict[str, Any]) -> None:
    assert (ring["root"], ring["depth"], ring["found"], ring["truncated"]) == (
        "account:u-g1",
        2,
        True,
        False,
    )
    kinds = {node["key"]: node["kind"] for node in ring["nodes"]}
    assert kinds["account:u-g2"] == "account"  # two hops away, through the shared ID
    assert sorted(kinds.values()) == ["account", "account", "card", "device", "identity", "phone"]
    assert "device:dev-g2" not in kinds  # three hops away
    root = next(node for node in ring["nodes"] if node["key"] == "account:u-g1")
    assert root["distance"] == 0 and root["reported"] is False and root["degree"] == 4
    card = next(edge for edge in ring["edges"] if edge["target"].startswith("card:"))
    assert card["source"] == "account:u-g1" and card["bound_at"] == T0 + 2_000
    assert len(ring["edges"]) == 5


def test_ids_are_tokens_and_address_their_nodes(client: httpx.Client, ring: dict[str, Any]) -> None:
    ids = {node["kind"]: node["id"] for node in ring["nodes"] if node["kind"] != "account"}
    assert ids["identity"].startswith("idn_") and ids["phone"].startswith("tel_")
    assert ids["card"].startswith("pan_")
    text = str(ring)
    for secret in (PAN, ID_NUMBER, PHONE, PHONE.removeprefix("+86")):
        assert secret not in text
    by_id = client.get(f"/v1/entities/identity/{ids['identity']}/graph", params={"depth": 1})
    assert by_id.status_code == 200
    accounts = {n["key"] for n in by_id.json()["nodes"] if n["kind"] == "account"}
    assert accounts == {"account:u-g1", "account:u-g2"}


def test_default_depth_unknown_ids_and_errors(client: httpx.Client, ring: dict[str, Any]) -> None:
    default = client.get("/v1/entities/account/u-g1/graph")
    assert default.json() == ring  # depth 2 by default
    unknown = client.get("/v1/entities/device/never-seen/graph").json()
    assert unknown["found"] is False and [n["key"] for n in unknown["nodes"]] == [
        "device:never-seen"
    ]
    kind = client.get("/v1/entities/laptop/x/graph")
    assert kind.status_code == 404
    assert kind.json()["field"] == "kind" and "laptop" in kind.json()["reason"]
    for depth in ("5", "-1", "two"):
        bad = client.get("/v1/entities/account/u-g1/graph", params={"depth": depth})
        assert bad.status_code == 400, depth
        assert bad.json()["error"] == "bad_request" and bad.json()["field"] == "depth"


def test_graph_off_answers_404(
    client: httpx.Client, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.engine, "graph", None)
    off = client.get("/v1/entities/account/u-g1/graph")
    assert off.status_code == 404 and off.json()["field"] == "graph"


def test_route_is_in_the_openapi_document(client: httpx.Client) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    route = paths["/v1/entities/{kind}/{entity_id}/graph"]["get"]
    assert {"200", "400", "404"} <= set(route["responses"])
    depth = next(p for p in route["parameters"] if p["name"] == "depth")
    assert depth["in"] == "query" and depth["schema"]["maximum"] == 4
