"""Outcomes and decision listing over real HTTP (uvicorn on loopback, SQLite data
directory), including a restart of the server."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiserver import Server
from support import HOUR, T0, label, payment, result, settings_for, wire

NOW = time.time_ns() // 1_000_000


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("outcomes-http")


@pytest.fixture(scope="module")
def running(data_dir: Path) -> Iterator[list[Server]]:
    """The servers started on `data_dir`, the live one last (a restart appends one)."""
    servers = [Server(data_dir, settings_for(data_dir)).start()]
    try:
        yield servers
    finally:
        servers[-1].stop()


@pytest.fixture(scope="module")
def server(running: list[Server]) -> Server:
    return running[0]


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def heard(server: Server) -> list[tuple[str, str, str]]:
    """Every lifecycle change the first server announced."""
    changes: list[tuple[str, str, str]] = []
    server.engine.outcomes.book.subscribe(lambda *change: changes.append(change))
    return changes


@pytest.fixture(scope="module")
def history(client: httpx.Client, heard: list[tuple[str, str, str]]) -> dict[str, str]:
    """Decisions of three accounts and outcomes on some: event_id → action."""
    actions: dict[str, str] = {}

    def post(body: dict[str, Any]) -> None:
        answer = client.post("/v1/events", json=body)
        assert answer.status_code == 200, answer.text
        actions[body["event_id"]] = answer.json()["action"]

    post(payment("a-pay-1", T0, user_id="alice"))  # challenge
    post(payment("a-pay-2", T0 + HOUR, "10.00", user_id="alice"))  # allow
    post(wire("a-tr-1", "transfer", T0 + 2 * HOUR, user="alice", amount="2000.00"))  # review
    post(payment("b-pay-1", T0 + 3 * HOUR, user_id="bob", device_id="dev-b"))  # challenge
    # held until a day after now (holds are read as of the wall clock)
    post(wire("b-wd-1", "withdrawal", NOW, user="bob", amount="2000.00"))
    post(payment("c-pay-1", T0 + 5 * HOUR, "1234.00", user_id="carol"))  # challenge
    post(result("a-res-1", "a-pay-1", T0 + 10, "face", "passed", user_id="alice"))
    post(result("b-res-1", "b-pay-1", T0 + 3 * HOUR + 10, "face", "failed", user_id="bob"))
    post(label("a-lbl-1", "a-tr-1", T0 + 2 * HOUR + 10, "not_fraud", user_id="alice"))
    return actions


def ids(page: dict[str, Any]) -> list[str]:
    return [d["event_id"] for d in page["decisions"]]


def listing(client: httpx.Client, **params: Any) -> dict[str, Any]:
    answer = client.get("/v1/decisions", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_the_seeded_actions(history: dict[str, str]) -> None:
    assert history["a-pay-1"] == history["b-pay-1"] == history["c-pay-1"] == "challenge"
    assert (history["a-tr-1"], history["b-wd-1"], history["a-pay-2"]) == ("review", "hold", "allow")


def test_list_is_newest_first_without_outcome_events(
    client: httpx.Client, history: dict[str, str]
) -> None:
    page = listing(client)
    assert ids(page) == ["c-pay-1", "b-wd-1", "b-pay-1", "a-tr-1", "a-pay-2", "a-pay-1"]
    assert page["next_cursor"] is None
    states = {d["event_id"]: d["state"] for d in page["decisions"]}
    assert states == {
        "c-pay-1": "decided",
        "b-wd-1": "decided",
        "b-pay-1": "challenge:failed",
        "a-tr-1": "review:resolved:not_fraud",
        "a-pay-2": "decided",
        "a-pay-1": "challenge:passed",
    }


def test_search_filters(client: httpx.Client, history: dict[str, str]) -> None:
    assert ids(listing(client, user_id="alice")) == ["a-tr-1", "a-pay-2", "a-pay-1"]
    assert ids(listing(client, action="challenge")) == ["c-pay-1", "b-pay-1", "a-pay-1"]
    assert ids(listing(client, state="challenge")) == ["b-pay-1", "a-pay-1"]
    assert ids(listing(client, state="challenge:failed")) == ["b-pay-1"]
    assert ids(listing(client, state="review")) == ["a-tr-1"]
    assert ids(listing(client, rule="night_payment")) == ["c-pay-1"]
    assert ids(listing(client, since=T0 + HOUR, until=T0 + 3 * HOUR)) == ["a-tr-1", "a-pay-2"]
    assert ids(listing(client, user_id="bob", action="hold")) == ["b-wd-1"]
    assert ids(listing(client, user_id="nobody")) == []


def test_pages_follow_the_cursor(client: httpx.Client, history: dict[str, str]) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = listing(client, **params)
        assert len(page["decisions"]) <= 2
        seen += ids(page)
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ids(listing(client))


def test_one_decision_shows_its_lifecycle(client: httpx.Client, history: dict[str, str]) -> None:
    shown = client.get("/v1/decisions/a-pay-1").json()
    assert (shown["action"], shown["state"], shown["user_id"]) == (
        "challenge",
        "challenge:passed",
        "alice",
    )
    assert shown["challenge"] == ["face", "hardware_token", "sms_otp"]
    (outcome,) = shown["outcomes"]
    assert outcome == {
        "event_id": "a-res-1",
        "type": "challenge_result",
        "ts": T0 + 10,
        "state": "challenge:passed",
        "method": "face",
        "outcome": "passed",
        "device_id": "dev-1",
    }
    assert "features" not in shown
    assert "features" in client.get("/v1/decisions/a-pay-1", params={"explain": "1"}).json()


def test_a_revoked_hold_reads_as_revoked(
    client: httpx.Client, history: dict[str, str], heard: list[tuple[str, str, str]]
) -> None:
    shown = client.get("/v1/decisions/b-wd-1").json()
    change = {"hold_id": shown["hold"]["hold_id"], "action": "revoke", "by": "customer"}
    assert client.post("/v1/holds", json=change).status_code == 200
    assert client.get("/v1/decisions/b-wd-1").json()["state"] == "hold:revoked"
    assert ids(listing(client, state="hold:revoked")) == ["b-wd-1"]
    assert heard[-1] == ("b-wd-1", "decided", "hold:revoked")


def test_listeners_heard_each_outcome_once(
    history: dict[str, str], heard: list[tuple[str, str, str]]
) -> None:
    assert heard[:3] == [
        ("a-pay-1", "decided", "challenge:passed"),
        ("b-pay-1", "decided", "challenge:failed"),
        ("a-tr-1", "review:open", "review:resolved:not_fraud"),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (result("x-1", "never-sent", T0, "face", "passed"), "ref_event_id"),
        (result("x-2", "a-pay-2", T0, "face", "passed", user_id="alice"), "ref_event_id"),
        (result("x-3", "c-pay-1", T0, "sms_otp", "passed", user_id="carol"), "method"),
        (result("x-4", "c-pay-1", T0, "face", "passed", user_id="mallory"), "user_id"),
        (label("x-5", "never-sent", T0, "fraud"), "ref_event_id"),
        (result("x-6", "c-pay-1", T0, "face", "maybe", user_id="carol"), "outcome"),
    ],
)
def test_outcomes_that_fit_no_decision_are_422(
    client: httpx.Client, history: dict[str, str], body: dict[str, Any], field: str
) -> None:
    answer = client.post("/v1/events", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()
    assert (error["error"], error["field"], error["event_id"]) == (
        "invalid_event",
        field,
        body["event_id"],
    )
    assert client.get(f"/v1/decisions/{body['event_id']}").status_code == 404


def test_a_batch_with_an_outcome_that_fits_nothing_records_nothing(
    client: httpx.Client, history: dict[str, str]
) -> None:
    batch = [
        payment("batch-1", T0 + 6 * HOUR, "10.00", user_id="dave"),
        result("batch-2", "batch-1", T0 + 6 * HOUR + 1, "face", "passed", user_id="dave"),
    ]
    answer = client.post("/v1/events/batch", json=batch)
    assert answer.status_code == 422
    assert (answer.json()["index"], answer.json()["field"]) == (1, "ref_event_id")
    assert client.get("/v1/decisions/batch-1").status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"action": "maybe"}, "action"),
        ({"state": "pending"}, "state"),
        ({"cursor": "abc"}, "cursor"),
        ({"since": "yesterday"}, "since"),
        ({"since": T0 + HOUR, "until": T0}, "until"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_query_parameters_are_400_naming_them(
    client: httpx.Client, params: dict[str, Any], field: str
) -> None:
    answer = client.get("/v1/decisions", params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field


def test_routes_are_in_the_openapi_document(client: httpx.Client) -> None:
    answer = client.get("/schema/openapi.json")
    assert answer.status_code == 200
    paths = answer.json()["paths"]
    assert "get" in paths["/v1/decisions"]
    assert "get" in paths["/v1/decisions/{event_id}"]


def test_a_restarted_server_keeps_every_outcome(
    data_dir: Path, running: list[Server], client: httpx.Client, history: dict[str, str]
) -> None:
    """Last in the module: it stops the first server and starts a second one."""
    before = listing(client)
    running[0].stop()
    running.append(Server(data_dir, running[0].settings).start())
    with httpx.Client(base_url=running[-1].url, timeout=10) as http:
        assert listing(http) == before
        shown = http.get("/v1/decisions/a-pay-1").json()
        assert [o["event_id"] for o in shown["outcomes"]] == ["a-res-1"]
        # the cleared cause still holds: alice's next big payment on dev-1 is allowed
        answer = http.post("/v1/events", json=payment("a-pay-3", T0 + 20, user_id="alice"))
        assert answer.json()["action"] == "allow"
