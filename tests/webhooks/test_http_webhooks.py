"""Webhooks end to end over real HTTP: a payguard server on loopback delivers to a real
receiver that checks every signature; the operator lists deliveries and retries a failed
one; a restart with deliveries pending delivers each exactly once."""

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from receiver import SECRET, Receiver, hold_events, now_ms, review_events, wait_for

from payguard.config import Settings, load_settings
from payguard.webhooks import OUTBOX_FILE, Outbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from apiserver import DEFAULT_RULESET, Server


def _settings(data_dir: Path, url: str, **overrides: Any) -> Settings:
    loaded = load_settings(env={"PAYGUARD_DATA_DIR": str(data_dir)})
    return msgspec.structs.replace(
        loaded,
        ruleset=DEFAULT_RULESET,
        webhook_urls=(url,),
        webhook_secrets=(SECRET,),
        **({"webhook_backoff_ms": 20} | overrides),
    )


def _post(client: httpx.Client, events: list[dict[str, Any]]) -> dict[str, Any]:
    decision: dict[str, Any] = {}
    for body in events:
        response = client.post("/v1/events", json=body)
        assert response.status_code == 200, response.text
        decision = response.json()
    return decision


@pytest.fixture
def served(tmp_path: Path, receiver: Receiver) -> Iterator[httpx.Client]:
    server = Server(tmp_path, _settings(tmp_path, receiver.url, webhook_max_attempts=2)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()


def test_decisions_and_a_hold_revocation_reach_the_receiver_signed(
    served: httpx.Client, receiver: Receiver
) -> None:
    now = now_ms()
    assert _post(served, hold_events("h1", now))["action"] == "hold"
    assert _post(served, review_events("r1", now))["action"] == "review"
    wait_for(lambda: len(receiver.accepted) == 2)
    revoke = {"hold_id": "hold-h1-transfer", "action": "revoke", "by": "customer"}
    assert served.post("/v1/holds", json=revoke).status_code == 200
    wait_for(lambda: len(receiver.accepted) == 3)
    assert all(r.status == 200 for r in receiver.requests), "every signature verified"
    kinds = sorted((r.json["type"], r.json["data"]["event_id"]) for r in receiver.requests)
    assert kinds == [
        ("decision.hold", "h1-transfer"),
        ("decision.review", "r1-reset"),
        ("outcome.changed", "h1-transfer"),
    ]
    for request in receiver.requests:
        assert request.headers["Payguard-Delivery"] == request.json["id"]
        assert request.headers["Payguard-Event-Type"] == request.json["type"]
        assert request.headers["Content-Type"] == "application/json"

    listed = served.get("/v1/webhooks/deliveries", params={"status": "delivered"}).json()
    assert {d["delivery_id"] for d in listed["deliveries"]} == set(receiver.accepted)
    about = served.get("/v1/webhooks/deliveries", params={"event_id": "h1-transfer"}).json()
    assert [d["type"] for d in about["deliveries"]] == ["outcome.changed", "decision.hold"]
    one = served.get(f"/v1/webhooks/deliveries/{about['deliveries'][1]['delivery_id']}").json()
    assert one["delivery"]["state"] == "delivered"
    assert [(a["number"], a["status"]) for a in one["attempts"]] == [(1, 200)]
    assert one["payload"]["data"]["hold"]["hold_id"] == "hold-h1-transfer"
    metrics = served.get("/metrics").text
    assert "payguard_webhook_deliveries_delivered 3.0" in metrics


def test_a_failed_delivery_is_listed_and_retried_by_hand(
    served: httpx.Client, receiver: Receiver
) -> None:
    receiver.fail_all = True
    _post(served, review_events("r2", now_ms()))

    def failed() -> list[dict[str, Any]]:
        answer = served.get("/v1/webhooks/deliveries", params={"status": "failed"})
        deliveries: list[dict[str, Any]] = answer.json()["deliveries"]
        return deliveries

    wait_for(lambda: len(failed()) == 1)
    [delivery] = failed()
    assert (delivery["attempts"], delivery["last_status"]) == (2, 500)
    path = f"/v1/webhooks/deliveries/{delivery['delivery_id']}"
    assert [a["status"] for a in served.get(path).json()["attempts"]] == [500, 500]

    receiver.fail_all = False
    retried = served.post(f"{path}/retry")
    assert retried.status_code == 200 and retried.json()["state"] in ("pending", "delivered")
    wait_for(lambda: served.get(path).json()["delivery"]["state"] == "delivered")
    assert [a["status"] for a in served.get(path).json()["attempts"]] == [500, 500, 200]
    again = served.post(f"{path}/retry")
    assert again.status_code == 409
    assert again.json() == {
        "error": "conflict",
        "reason": "is delivered, not failed",
        "state": "delivered",
    }


def test_bad_requests_name_the_field(served: httpx.Client) -> None:
    bad = served.get("/v1/webhooks/deliveries", params={"status": "lost"})
    assert bad.status_code == 400 and bad.json()["field"] == "status"
    assert "pending, delivered, failed" in bad.json()["reason"]
    limit = served.get("/v1/webhooks/deliveries", params={"limit": "0"})
    assert limit.status_code == 400 and limit.json()["field"] == "limit"
    unknown = served.post("/v1/webhooks/deliveries/whd_nope/retry")
    assert unknown.status_code == 404 and unknown.json()["field"] == "delivery_id"
    assert served.get("/v1/webhooks/deliveries/whd_nope").status_code == 404


def test_without_endpoints_the_routes_say_webhooks_are_off(tmp_path: Path) -> None:
    server = Server(tmp_path).start()
    try:
        answer = httpx.get(f"{server.url}/v1/webhooks/deliveries", timeout=10)
    finally:
        server.stop()
    assert answer.status_code == 404
    assert answer.json()["field"] == "webhooks"
    assert "PAYGUARD_WEBHOOK_URLS" in answer.json()["reason"]


def test_a_restart_delivers_every_pending_delivery_exactly_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    settings = _settings(tmp_path, receiver.url, webhook_backoff_ms=50)
    receiver.fail_all = True
    first = Server(tmp_path, settings).start()
    try:
        with httpx.Client(base_url=first.url, timeout=10) as client:
            now = now_ms()
            for n in range(3):
                _post(client, hold_events(f"rh{n}", now))
                _post(client, review_events(f"rr{n}", now))
            wait_for(lambda: len(receiver.requests) >= 6)  # each tried, none accepted
    finally:
        first.stop()
    assert not receiver.accepted
    outbox = Outbox(tmp_path / OUTBOX_FILE)  # what the stopped server left behind
    assert outbox.counts() == {"pending": 6, "delivered": 0, "failed": 0}
    assert all(d.attempts >= 1 for d in outbox.find(limit=10))
    outbox.close()

    receiver.fail_all = False
    second = Server(tmp_path, settings).start()
    try:
        with httpx.Client(base_url=second.url, timeout=10) as client:

            def states() -> dict[str, str]:
                listed = client.get("/v1/webhooks/deliveries").json()["deliveries"]
                return {d["delivery_id"]: d["state"] for d in listed}

            assert len(states()) == 6, "every delivery survived the restart"
            wait_for(lambda: set(states().values()) == {"delivered"})
            delivered = states()
    finally:
        second.stop()
    assert set(receiver.accepted) == set(delivered)
    assert sorted(receiver.accepted.values()) == [1] * 6, "each id accepted exactly once"
