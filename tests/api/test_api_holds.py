"""The holds API over real HTTP: a `hold` decision's hold is listed, revoked by the
customer, refused a second time, and bad requests name their field."""

import time

import httpx

DAY_MS = 86_400_000


def _post_events(client: httpx.Client, user: str) -> dict[str, object]:
    """A long-known device, a password reset, then a transfer to a new payee: the default
    ruleset's cooling-off holds it. Times are now, so the hold is still held."""
    now = time.time_ns() // 1_000_000
    events = [
        {"event_id": f"{user}-login", "type": "login", "ts": now - 200 * DAY_MS,
         "user_id": user, "device_id": f"{user}-phone", "success": True},
        {"event_id": f"{user}-reset", "type": "password_reset", "ts": now - 20 * 60_000,
         "user_id": user, "device_id": f"{user}-phone", "method": "sms"},
        {"event_id": f"{user}-transfer", "type": "transfer", "ts": now, "user_id": user,
         "device_id": f"{user}-phone", "amount": "6000.00", "payee": {"id": "payee-new"}},
    ]  # fmt: skip
    decision: dict[str, object] = {}
    for body in events:
        response = client.post("/v1/events", json=body)
        assert response.status_code == 200, response.text
        decision = response.json()
    return decision


def test_a_held_transfer_is_listed_and_the_customer_revokes_it(client: httpx.Client) -> None:
    decision = _post_events(client, "u-hold-1")
    assert decision["action"] == "hold"
    hold = decision["hold"]
    assert isinstance(hold, dict) and hold["hold_id"] == "hold-u-hold-1-transfer"
    listed = client.get("/v1/holds", params={"user_id": "u-hold-1"}).json()["holds"]
    assert [(h["hold_id"], h["state"], h["amount"]) for h in listed] == [
        ("hold-u-hold-1-transfer", "held", 600_000)
    ]
    assert listed[0]["amount_major"] == "6000.00"  # as sent, beside the fen (issue 14)
    change = {"hold_id": hold["hold_id"], "action": "revoke", "by": "customer", "note": "app"}
    revoked = client.post("/v1/holds", json=change)
    assert revoked.status_code == 200
    assert (revoked.json()["state"], revoked.json()["resolved_by"]) == ("revoked", "customer")
    again = client.post("/v1/holds", json={**change, "action": "release", "by": "staff"})
    assert again.status_code == 409
    assert again.json() == {
        "error": "conflict",
        "reason": "already revoked (customer)",
        "state": "revoked",
    }
    one = client.get(f"/v1/holds/{hold['hold_id']}")
    assert one.status_code == 200 and one.json()["state"] == "revoked"
    held = client.get("/v1/holds", params={"user_id": "u-hold-1", "state": "held"}).json()
    assert held == {"holds": []}


def test_staff_release_a_hold(client: httpx.Client) -> None:
    hold = _post_events(client, "u-hold-2")["hold"]
    assert isinstance(hold, dict)
    change = {"hold_id": hold["hold_id"], "action": "release", "by": "staff"}
    released = client.post("/v1/holds", json=change)
    assert released.status_code == 200 and released.json()["state"] == "released"
    assert released.json()["amount_major"] == "6000.00"


def test_bad_requests_name_the_field(client: httpx.Client) -> None:
    unknown = client.post(
        "/v1/holds", json={"hold_id": "hold-nope", "action": "revoke", "by": "customer"}
    )
    assert unknown.status_code == 404 and unknown.json()["field"] == "hold_id"
    assert client.get("/v1/holds/hold-nope").status_code == 404
    missing = client.post("/v1/holds", json={"hold_id": "hold-x", "action": "revoke"})
    assert missing.status_code == 422 and missing.json()["field"] == "by"
    wrong = client.post("/v1/holds", json={"hold_id": "h", "action": "cancel", "by": "staff"})
    assert wrong.status_code == 422 and wrong.json()["field"] == "action"
    extra = client.post(
        "/v1/holds", json={"hold_id": "h", "action": "revoke", "by": "staff", "x": 1}
    )
    assert extra.status_code == 422 and extra.json()["field"] == "x"
    broken = client.post("/v1/holds", content=b"{not json")
    assert broken.status_code == 400 and broken.json()["field"] == "body"
    state = client.get("/v1/holds", params={"state": "frozen"})
    assert state.status_code == 400 and state.json()["field"] == "state"
    limit = client.get("/v1/holds", params={"limit": 0})
    assert limit.status_code == 400 and limit.json()["field"] == "limit"
