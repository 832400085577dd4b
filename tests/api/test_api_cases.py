"""The case and list routes over real HTTP, on a real server with the case store in SQLite
and, in a second run, in Postgres (`PAYGUARD_CASES_DSN`): deny-list a card and see the
next event on it blocked; a review opens a case that is claimed, noted and resolved as
fraud (the decision's lifecycle follows); a hold's case revokes it; errors are 4xx naming
the field; each route needs its scope."""

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from apiserver import Server

from payguard.config import load_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "auth"))
from auth_support import bearer, mint

RULESET = Path(__file__).resolve().parents[1] / "cases" / "rules_cases.yaml"
PG_DSN = os.environ.get("PAYGUARD_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test")
PAN = "6222021234567890128"
CLAIM = {"action": "claim"}
NEW_LIST = {"kind": "deny", "name": "x", "subject": "card", "owner": "o", "reason": "r"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("payguard-cases")
    settings = msgspec.structs.replace(
        load_settings(env={"PAYGUARD_DATA_DIR": str(data_dir)}), ruleset=RULESET
    )
    schema = f"cases_http_{uuid.uuid4().hex[:12]}"
    if request.param == "postgres":
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
        os.environ["PAYGUARD_CASES_DSN"] = f"{PG_DSN} options='-c search_path={schema}'"
    try:
        srv = Server(data_dir, settings).start()
    finally:
        os.environ.pop("PAYGUARD_CASES_DSN", None)
    try:
        yield srv
    finally:
        srv.stop()
        if request.param == "postgres":
            with psycopg.connect(PG_DSN, autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def post_event(client: httpx.Client, event_id: str, type_: str, **fields: Any) -> dict[str, Any]:
    body = {"event_id": event_id, "type": type_, "ts": now_ms(), **fields}
    answer = client.post("/v1/events", json=body)
    assert answer.status_code == 200, answer.text
    decision: dict[str, Any] = answer.json()
    return decision


def pay(client: httpx.Client, event_id: str, user: str, card: str) -> dict[str, Any]:
    merchant = {"id": "m1", "category": "other"}
    return post_event(
        client, event_id, "payment", user_id=user, amount="20.00", card={"number": card},
        merchant=merchant, device_id=f"d-{user}",
    )  # fmt: skip


def send_transfer(client: httpx.Client, event_id: str, user: str, yuan: str) -> dict[str, Any]:
    return post_event(
        client, event_id, "transfer", user_id=user, amount=yuan, payee={"id": f"p-{event_id}"},
        device_id=f"d-{user}",
    )  # fmt: skip


def the_case(client: httpx.Client, queue: str, user: str) -> dict[str, Any]:
    page = client.get("/v1/cases", params={"queue": queue, "entity_id": user}).json()
    assert len(page["cases"]) == 1, page
    case: dict[str, Any] = page["cases"][0]
    return case


def test_deny_listing_a_card_blocks_the_next_event_on_that_card(client: httpx.Client) -> None:
    assert pay(client, "dl-1", "u1", PAN)["action"] == "allow"
    made = client.post(
        "/v1/lists",
        json={"kind": "deny", "name": "stolen_cards", "subject": "card", "owner": "fraud team",
              "reason": "cards reported stolen"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    added = client.post(
        "/v1/lists/deny/stolen_cards/entries",
        json={"value": PAN, "reason": "the owner reported it stolen"},
    )
    assert added.status_code == 201, added.text
    assert PAN not in added.text and added.json()["value"].startswith("pan_")
    blocked = pay(client, "dl-2", "u2", PAN)
    assert blocked["action"] == "block"
    assert [r["rule"] for r in blocked["reasons"]] == ["stolen_card"]
    shown = client.get("/v1/lists/deny/stolen_cards").json()
    assert [e["value"] for e in shown["entries"]] == [added.json()["value"]]
    assert PAN not in client.get("/v1/lists").text


def test_a_review_case_is_claimed_noted_and_resolved_as_fraud(client: httpx.Client) -> None:
    assert send_transfer(client, "rv-1", "u10", "12000.00")["action"] == "review"
    case = the_case(client, "review", "u10")
    case_id = case["case_id"]
    actions = f"/v1/cases/{case_id}/actions"
    claimed = client.post(actions, json={"action": "claim"})
    assert claimed.status_code == 200 and claimed.json()["case"]["status"] == "investigating"
    noted = client.post(actions, json={"action": "note", "text": "payee is a known mule"})
    assert noted.status_code == 200
    resolved = client.post(actions, json={"action": "resolve", "verdict": "fraud"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["case"]["status"] == "closed"
    assert client.get("/v1/decisions/rv-1").json()["state"] == "review:resolved:fraud"
    detail = client.get(f"/v1/cases/{case_id}").json()
    assert [h["action"] for h in detail["history"]] == ["claim", "note", "resolve"]
    assert detail["notes"][0]["text"] == "payee is a known mule"
    audit = client.get("/v1/audit", params={"action": "case."}).json()
    assert [e["action"] for e in audit["entries"] if e["target"] == case_id] == [
        "case.claim",
        "case.note",
        "case.resolve",
    ]
    report = client.get(f"/v1/cases/{case_id}/str", params={"format": "csv"})
    assert report.status_code == 200 and "12000.00" in report.text


def test_a_hold_case_revokes_its_hold(client: httpx.Client) -> None:
    decision = send_transfer(client, "hd-1", "u20", "6000.00")
    assert decision["action"] == "hold"
    case = the_case(client, "holds", "u20")
    assert case["held"] == 600000 and case["due_ts"] == decision["hold"]["release_ts"]
    answer = client.post(
        f"/v1/cases/{case['case_id']}/actions",
        json={"action": "hold", "decision": "revoke", "comment": "owner says it was not them"},
    )
    assert answer.status_code == 200, answer.text
    hold = client.get(f"/v1/holds/{decision['hold']['hold_id']}").json()
    assert hold["state"] == "revoked"


def test_attachments_round_trip(client: httpx.Client) -> None:
    send_transfer(client, "at-1", "u30", "12000.00")
    case_id = the_case(client, "review", "u30")["case_id"]
    data = b"\x89PNG screenshot"
    made = client.post(
        f"/v1/cases/{case_id}/attachments",
        params={"name": "chat.png"},
        content=data,
        headers={"Content-Type": "image/png"},
    )
    assert made.status_code == 201, made.text
    got = client.get(f"/v1/cases/{case_id}/attachments/{made.json()['attachment_id']}")
    assert got.content == data and got.headers["content-type"].startswith("image/png")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/v1/cases/nope/actions", {"action": "claim"}, 404, "case_id"),
        ("POST", "/v1/cases/{case}/actions", {"action": "fly"}, 422, "action"),
        ("POST", "/v1/cases/{case}/actions", {"action": "block"}, 422, "comment"),
        (
            "POST",
            "/v1/cases/{case}/actions",
            {"action": "snooze_rule", "rule": "big_payment", "days": 181, "comment": "x"},
            422,
            "days",
        ),
        ("POST", "/v1/cases/{case}/actions", b"{not json", 400, "body"),
        ("POST", "/v1/cases/bulk", {"case_ids": ["x"], "action": CLAIM}, 422, "comment"),
        ("GET", "/v1/cases?status=lost", None, 400, "status"),
        ("GET", "/v1/cases?cursor=zz", None, 400, "cursor"),
        ("GET", "/v1/cases/{case}/str?format=pdf", None, 400, "format"),
        ("POST", "/v1/lists", {**NEW_LIST, "subject": "car"}, 422, "subject"),
        ("POST", "/v1/lists/deny/nope/entries", {"value": "x", "reason": "r"}, 404, "name"),
        ("POST", "/v1/lists/maybe/x/entries", {"value": "x", "reason": "r"}, 400, "kind"),
    ],
)  # fmt: skip
def test_errors_name_the_field(
    client: httpx.Client, method: str, path: str, body: Any, status: int, field: str
) -> None:
    if not client.get("/v1/cases", params={"entity_id": "u40"}).json()["cases"]:
        send_transfer(client, "er-1", "u40", "12000.00")
    case_id = the_case(client, "review", "u40")["case_id"]
    kwargs: dict[str, Any] = {}
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = body
    answer = client.request(method, path.replace("{case}", case_id), **kwargs)
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field


def test_each_route_needs_its_scope(server: Server, client: httpx.Client) -> None:
    send_transfer(client, "sc-1", "u50", "12000.00")
    case_id = the_case(client, "review", "u50")["case_id"]
    _, reader = mint(server, "cases:read")
    _, analyst = mint(server, "cases:*")
    _, lead = mint(server, "lists:write")
    claim = {"action": "claim"}
    entry = {"value": "dev-1", "reason": "emulator farm"}
    client.post(
        "/v1/lists",
        json={"kind": "deny", "name": "bad_devices", "subject": "device", "owner": "o",
              "reason": "r"},
    )  # fmt: skip
    assert client.get("/v1/cases", headers=bearer(reader)).status_code == 200
    assert (
        client.post(f"/v1/cases/{case_id}/actions", json=claim, headers=bearer(reader)).status_code
        == 403
    )
    assert (
        client.post(f"/v1/cases/{case_id}/actions", json=claim, headers=bearer(analyst)).status_code
        == 200
    )
    entries = "/v1/lists/deny/bad_devices/entries"
    assert client.post(entries, json=entry, headers=bearer(analyst)).status_code == 403
    assert client.post(entries, json=entry, headers=bearer(lead)).status_code == 201
    assert client.get("/v1/cases", headers=bearer(lead)).status_code == 403
