"""The HTTP contract over a real server: status codes, bodies, idempotency, batches, PII."""

import sqlite3
from typing import Any

import httpx
import msgspec
from apiserver import Server, event

from payguard.decision import Decision
from payguard.sim.population import luhn_complete

T0 = 1_599_183_000_000  # 2020-09-04T09:30:00+08:00
PAN = "6222 0212 3456 7890 128"
PAN_DIGITS = PAN.replace(" ", "")
ID_NUMBER = "11010519491231002X"
PHONE = "+8613800138000"


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def payment(event_id: str, user: str, ts: int, amount: str = "25.00", **extra: Any) -> Any:
    return event(
        event_id,
        "payment",
        user,
        ts,
        device_id=f"dev-{user}",
        amount=amount,
        card={"token": f"vault-{user}"},
        merchant={"id": "m_food_1", "category": "food"},
        channel="app",
        **extra,
    )


def test_decision_200_shape(client: httpx.Client) -> None:
    r = client.post("/v1/events", json=event("h-ok-1", "login", "u-ok", T0, success=True))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert "idempotent-replay" not in r.headers
    body = r.json()
    decision = msgspec.json.decode(r.content, type=Decision)
    assert decision.event_id == "h-ok-1"
    assert body["action"] == "allow"
    assert set(body) == {
        "event_id",
        "action",
        "score",
        "reasons",
        "ruleset",
        "model",
        "latency_us",
    }
    explained = client.get("/v1/decisions/h-ok-1", params={"explain": "1"}).json()
    assert {"features", "shadow", "rule_errors"} <= set(explained)
    shown = client.get("/v1/decisions/h-ok-1").json()
    assert {name: shown[name] for name in body} == body  # the decision, and its lifecycle:
    assert (shown["state"], shown["outcomes"], shown["type"]) == ("decided", [], "login")


def test_malformed_json_400(client: httpx.Client) -> None:
    r = client.post("/v1/events", content=b'{"event_id": "h-400", "type": ')
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid_event"
    assert body["field"] == "$"
    assert body["reason"].startswith("malformed JSON")


def test_validation_422_names_field(client: httpx.Client) -> None:
    bad = event("h-422", "card_bind", "u-422", T0, card={"number": "4367421234567890123"})
    r = client.post("/v1/events", json=bad)
    assert r.status_code == 422
    assert r.json() == {
        "error": "invalid_event",
        "field": "card.number",
        "reason": "fails the Luhn checksum",
        "event_id": "h-422",
    }
    assert "4367421234567890123" not in r.text
    missing = client.post("/v1/events", json=event("h-422b", "payment", "u-422", T0))
    assert missing.status_code == 422
    assert missing.json()["field"] == "amount"
    unknown = client.post("/v1/events", json=event("h-422c", "login", "u", T0, amount_fen=1))
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "amount_fen"
    assert client.get("/v1/decisions/h-422").status_code == 404


def test_invalid_events_are_counted(client: httpx.Client) -> None:
    before = _metric(client.get("/metrics").text, "payguard_invalid_events_total")
    client.post("/v1/events", content=b"not json")
    client.post("/v1/events", json=event("h-cnt", "login", "u", "yesterday"))
    after = _metric(client.get("/metrics").text, "payguard_invalid_events_total")
    assert after == before + 2


def test_body_too_large_413(client: httpx.Client, server: Server) -> None:
    limit = server.settings.max_body_bytes
    big = event("h-413", "login", "u-413", T0, attrs={"pad": "x" * limit})
    r = client.post("/v1/events", json=big)
    assert r.status_code == 413
    assert r.json() == {"error": "body_too_large", "limit": limit}

    def chunks() -> Any:  # no Content-Length: the limit holds on the bytes actually read
        yield b'{"event_id": "h-413b", "pad": "'
        for _ in range(limit // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    streamed = client.post("/v1/events", content=chunks())
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "body_too_large"
    assert client.get("/v1/decisions/h-413").status_code == 404


def test_conflict_409(client: httpx.Client) -> None:
    first = payment("h-409", "u-409", T0, amount="10.00")
    assert client.post("/v1/events", json=first).status_code == 200
    r = client.post("/v1/events", json=payment("h-409", "u-409", T0, amount="99.00"))
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "conflict"
    assert body["event_id"] == "h-409"
    assert body["reason"]
    assert "10.00" not in r.text and "99.00" not in r.text
    assert client.get("/v1/decisions/h-409").json()["event_id"] == "h-409"


def test_not_found_404(client: httpx.Client) -> None:
    r = client.get("/v1/decisions/never-sent")
    assert r.status_code == 404
    assert r.json() == {"error": "not_found"}
    assert client.get("/v1/nothing-here").status_code == 404


def test_idempotent_replay_same_body_no_state_change(client: httpx.Client) -> None:
    user = "u-replay"
    first = client.post("/v1/events", json=payment("h-rep-1", user, T0))
    assert first.status_code == 200
    recorded = client.get("/healthz").json()["recorded"]
    metrics_before = client.get("/metrics").text
    again = client.post("/v1/events", json=payment("h-rep-1", user, T0))
    assert again.status_code == 200
    assert again.headers["idempotent-replay"] == "true"
    assert again.content == first.content
    assert client.get("/healthz").json()["recorded"] == recorded
    assert _metric(client.get("/metrics").text, "payguard_duplicate_events_total") == (
        _metric(metrics_before, "payguard_duplicate_events_total") + 1
    )
    nxt = client.post(
        "/v1/events", params={"explain": "1"}, json=payment("h-rep-2", user, T0 + 60_000)
    )
    # the repeat was not counted: one earlier payment, not two
    assert nxt.json()["features"]["count_money_out_by_user_1h"] == 1


def test_batch_all_or_nothing_invalid(client: httpx.Client) -> None:
    batch = [
        payment("h-b-1", "u-batch", T0),
        payment("h-b-2", "u-batch", T0 + 1_000),
        event("h-b-3", "card_bind", "u-batch", T0 + 2_000, card={"number": "4111111111111112"}),
    ]
    r = client.post("/v1/events/batch", json=batch)
    assert r.status_code == 422
    body = r.json()
    assert body == {
        "error": "invalid_event",
        "index": 2,
        "field": "card.number",
        "reason": "fails the Luhn checksum",
        "event_id": "h-b-3",
    }
    for event_id in ("h-b-1", "h-b-2", "h-b-3"):
        assert client.get(f"/v1/decisions/{event_id}").status_code == 404
    shape = client.post("/v1/events/batch", json=[payment("h-b-4", "u", T0), {"event_id": "x"}])
    assert shape.status_code == 422
    assert (shape.json()["index"], shape.json()["field"]) == (1, "type")
    assert client.get("/v1/decisions/h-b-4").status_code == 404
    assert client.post("/v1/events/batch", content=b"[{").status_code == 400
    assert client.post("/v1/events/batch", json={"not": "an array"}).status_code == 422


def test_batch_conflict_409_records_nothing(client: httpx.Client) -> None:
    assert client.post("/v1/events", json=payment("h-bc-0", "u-bc", T0)).status_code == 200
    batch = [
        payment("h-bc-1", "u-bc", T0 + 1_000),
        payment("h-bc-0", "u-bc", T0, amount="30.00"),  # reused id, other payload
    ]
    r = client.post("/v1/events/batch", json=batch)
    assert r.status_code == 409
    assert r.json()["index"] == 1 and r.json()["event_id"] == "h-bc-0"
    assert client.get("/v1/decisions/h-bc-1").status_code == 404
    inside = [payment("h-bc-2", "u-bc", T0 + 2_000), payment("h-bc-2", "u-bc", T0 + 3_000)]
    r = client.post("/v1/events/batch", json=inside)
    assert r.status_code == 409 and r.json()["index"] == 1
    assert client.get("/v1/decisions/h-bc-2").status_code == 404


def test_batch_ok_in_order(client: httpx.Client) -> None:
    recorded = client.get("/healthz").json()["recorded"]
    batch = [payment(f"h-bo-{i}", "u-bo", T0 + i * 60_000) for i in range(6)]
    batch.append(batch[0])  # an idempotent repeat inside the batch
    r = client.post("/v1/events/batch", params={"explain": "1"}, json=batch)
    assert r.status_code == 200
    decisions = r.json()["decisions"]
    assert [d["event_id"] for d in decisions] == [e["event_id"] for e in batch]
    counts = [d["features"]["count_money_out_by_user_1h"] for d in decisions[:6]]
    assert counts == [0, 1, 2, 3, 4, 5]
    assert decisions[6] == decisions[0]
    assert client.get("/healthz").json()["recorded"] == recorded + 6
    assert client.post("/v1/events/batch", json=[]).json() == {"decisions": []}


def test_shadow_hit_only_in_explain(client: httpx.Client) -> None:
    user = "u-shadow"
    for i in range(5):
        r = client.post("/v1/events", json=payment(f"h-sh-{i}", user, T0 + i * 60_000))
        assert r.json()["action"] == "allow"
    plain = client.post("/v1/events", json=payment("h-sh-5", user, T0 + 300_000))
    assert plain.status_code == 200
    assert plain.json()["action"] == "allow" and plain.json()["reasons"] == []
    assert "shadow" not in plain.json()
    explained = client.get("/v1/decisions/h-sh-5", params={"explain": "1"}).json()
    assert explained["shadow"] == [{"rule": "velocity_shadow", "action": "review", "score": 30}]
    assert explained["action"] == "allow" and explained["score"] == 0


def test_healthz_metrics_openapi(client: httpx.Client, server: Server) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["ruleset"] == server.engine.ruleset.version
    assert isinstance(body["recorded"], int)
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "payguard_decisions_total" in metrics.text
    assert "payguard_recorded_seq" in metrics.text
    spec = client.get("/schema/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert "/v1/events" in paths and "/v1/events/batch" in paths
    post = paths["/v1/events"]["post"]
    assert post["summary"] and post["requestBody"]["required"] is True
    assert "422" in post["responses"] and "409" in post["responses"]


def test_no_clear_pii_in_answers_or_store(client: httpx.Client, server: Server) -> None:
    pan2 = luhn_complete("621700000000123")
    bind = event(
        "h-pii-1",
        "card_bind",
        "u-pii",
        T0,
        phone=PHONE,
        id_number=ID_NUMBER,
        card={"number": PAN, "bank": "ICBC", "kind": "debit"},
    )
    pay = payment("h-pii-2", "u-pii", T0 + 1_000)
    pay["card"] = {"number": pan2}
    texts = []
    for body in (bind, pay):
        r = client.post("/v1/events", params={"explain": "1"}, json=body)
        assert r.status_code == 200, r.text
        texts.append(r.text)
        texts.append(client.get(f"/v1/decisions/{body['event_id']}?explain=1").text)
    server.engine.flush()
    stored = b"".join(p.read_bytes() for p in sorted(server.data_dir.iterdir()) if p.is_file())
    db = sqlite3.connect(server.data_dir / "payguard.db")
    try:
        rows = db.execute("SELECT payload FROM events WHERE event_id LIKE 'h-pii-%'").fetchall()
    finally:
        db.close()
    assert len(rows) == 2
    stored += b"".join(bytes(row[0]) for row in rows)
    secrets = [PAN, PAN_DIGITS, pan2, ID_NUMBER, PHONE, PHONE.removeprefix("+86")]
    for secret in secrets:
        assert all(secret not in text for text in texts), secret
        assert secret.encode() not in stored, secret
