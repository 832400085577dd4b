"""`POST /v1/otp/send` and `POST /v1/otp/verify` over a real server: bodies, the outbox,
and 4xx errors that name the field (never a 500)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from otp_support import SEND, VERIFY, OtpServer, code_in, wrong

from payguard.otp import OTP_DATABASE_FILE


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtpServer]:
    srv = OtpServer(tmp_path_factory.mktemp("otp-http")).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server: OtpServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def _code(server: OtpServer, challenge_id: str) -> str:
    texts = [m["text"] for m in server.outbox() if m["challenge_id"] == challenge_id]
    assert len(texts) == 1
    return code_in(texts[0])


def _send(client: httpx.Client, **changes: Any) -> httpx.Response:
    body = {k: v for k, v in {**SEND, **changes}.items() if v is not None}
    return client.post("/v1/otp/send", json=body)


def _verify(client: httpx.Client, challenge_id: str, code: str, **changes: Any) -> httpx.Response:
    body = {**VERIFY, **changes, "challenge_id": challenge_id, "code": code}
    return client.post("/v1/otp/verify", json={k: v for k, v in body.items() if v is not None})


def test_send_then_verify(client: httpx.Client, server: OtpServer) -> None:
    r = _send(client, user_id="u_http_1", phone="+8613800138000")
    assert r.status_code == 200, r.text
    sent = r.json()
    assert set(sent) == {
        "challenge_id",
        "event_id",
        "purpose",
        "amount",
        "currency",
        "expires_at",
        "delivery",
        "decision",
    }
    assert (sent["amount"], sent["currency"], sent["purpose"]) == ("300.00", "CNY", "payment")
    assert sent["delivery"] == "outbox"
    assert sent["decision"]["event_id"] == sent["event_id"]
    assert sent["decision"]["action"] == "allow"
    code = _code(server, sent["challenge_id"])
    assert code not in r.text
    (message,) = [m for m in server.outbox() if m["challenge_id"] == sent["challenge_id"]]
    assert message["user_id"] == "u_http_1"
    assert message["phone_token"].startswith("tel_")
    assert "13800138000" not in str(message)

    r = _verify(client, sent["challenge_id"], code, user_id="u_http_1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["verified"], body["result"], body["attempts_left"]) == (True, "ok", 0)
    assert body["decision"]["event_id"] == body["event_id"]
    # recorded like any event: fetchable as a decision
    fetched = client.get(f"/v1/decisions/{body['event_id']}")
    assert fetched.status_code == 200

    again = _verify(client, sent["challenge_id"], code, user_id="u_http_1").json()
    assert (again["verified"], again["result"]) == (False, "used")


def test_other_device_and_wrong_codes(client: httpx.Client, server: OtpServer) -> None:
    sent = _send(client, user_id="u_http_2").json()
    code = _code(server, sent["challenge_id"])
    body = _verify(client, sent["challenge_id"], wrong(code), user_id="u_http_2").json()
    assert (body["verified"], body["result"], body["attempts_left"]) == (False, "wrong_code", 4)
    body = _verify(
        client, sent["challenge_id"], code, user_id="u_http_2", device_id="dev_caller"
    ).json()
    assert (body["verified"], body["result"]) == (False, "other_device")
    body = _verify(client, sent["challenge_id"], code, user_id="u_http_2").json()
    assert body["result"] == "invalidated"


def test_binding_change_over_http(client: httpx.Client, server: OtpServer) -> None:
    sent = _send(client, user_id="u_http_3").json()
    code = _code(server, sent["challenge_id"])
    body = _verify(client, sent["challenge_id"], code, user_id="u_http_3", amount="3000.00").json()
    assert (body["verified"], body["result"]) == (False, "binding_changed")


def _error(r: httpx.Response, status: int, field: str, error: str = "invalid_request") -> Any:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"] == error
    assert body["field"] == field
    assert body["reason"]
    return body


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"user_id": None}, "user_id"),
        ({"user_id": 10086}, "user_id"),
        ({"amount": None}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"currency": "cny"}, "currency"),
        ({"merchant": None}, "merchant"),
        ({"merchant": {"category": "ecommerce"}}, "merchant.id"),
        ({"merchant": {"id": "m_1", "category": "casino"}}, "merchant.category"),
        ({"payee": {"id": "p_1"}}, "payee"),
        (
            {"merchant": None, "payee": {"id": "p", "card": {"number": "4367421234567890123"}}},
            "payee.card.number",
        ),
        ({"phone": "13912345678"}, "phone"),
        ({"device_id": None}, "device_id"),
        ({"session_id": None}, "session_id"),
        ({"lang": "fr"}, "lang"),
        ({"purpose": "loan"}, "purpose"),
        ({"code": "123456"}, "code"),
    ],
)
def test_send_4xx_names_the_field(
    client: httpx.Client, changes: dict[str, Any], field: str
) -> None:
    body = _error(_send(client, **changes), 422, field)
    assert "13912345678" not in body["reason"]
    assert "4367421234567890123" not in body["reason"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"code": "12345"}, "code"),
        ({"code": "12345a"}, "code"),
        ({"code": 123456}, "code"),
        ({"amount": None}, "amount"),
        ({"merchant": None}, "merchant"),
        ({"challenge_id": None}, "challenge_id"),
        ({"channel": "mini_program"}, "channel"),
        ({"session": "x"}, "session"),
    ],
)
def test_verify_4xx_names_the_field(
    client: httpx.Client, changes: dict[str, Any], field: str
) -> None:
    body = {**VERIFY, "challenge_id": "otp_x", "code": "123456", **changes}
    r = client.post("/v1/otp/verify", json={k: v for k, v in body.items() if v is not None})
    _error(r, 422, field)


@pytest.mark.parametrize("path", ["/v1/otp/send", "/v1/otp/verify"])
def test_malformed_json_is_400(client: httpx.Client, path: str) -> None:
    body = _error(client.post(path, content=b'{"user_id": '), 400, "$")
    assert body["reason"].startswith("malformed JSON")
    _error(client.post(path, content=b"[1, 2]"), 422, "$")


def test_unknown_challenge_is_404(client: httpx.Client) -> None:
    _error(_verify(client, "otp_unknown", "123456"), 404, "challenge_id", "not_found")


def test_reference_errors(client: httpx.Client) -> None:
    _error(
        _send(client, ref_event_id="nope", amount=None, merchant=None),
        404,
        "ref_event_id",
        "not_found",
    )
    gift = {
        "event_id": "http-gift-1",
        "type": "payment",
        "ts": 1_599_183_000_000,
        "user_id": "u_http_9",
        "device_id": "dev_1",
        "amount": "300.00",
        "merchant": {"id": "m_gift", "category": "gift_card"},
    }
    assert client.post("/v1/events", json=gift).status_code == 200
    body = _error(
        _send(client, user_id="u_http_9", ref_event_id="http-gift-1", amount=None, merchant=None),
        409,
        "ref_event_id",
        "otp_refused",
    )
    assert "sms_otp" in body["reason"]
    assert body["event_id"] == "http-gift-1"
    ok = {**gift, "event_id": "http-sms-1", "merchant": {"id": "m_shop"}, "amount": "1500.00"}
    assert "sms_otp" in client.post("/v1/events", json=ok).json()["challenge"]
    r = _send(client, user_id="u_http_9", ref_event_id="http-sms-1", amount=None, merchant=None)
    assert r.status_code == 200, r.text
    assert r.json()["amount"] == "1500.00"
    _error(
        _send(client, user_id="u_http_9", ref_event_id="http-sms-1", amount="1.00", merchant=None),
        409,
        "amount",
        "otp_refused",
    )


def test_body_too_large(client: httpx.Client, server: OtpServer) -> None:
    big = {**SEND, "user_id": "x" * (server.settings.max_body_bytes + 10)}
    r = client.post("/v1/otp/send", json=big)
    assert r.status_code == 413


def test_routes_in_openapi(client: httpx.Client) -> None:
    doc = client.get("/schema/openapi.json").json()
    for path in ("/v1/otp/send", "/v1/otp/verify"):
        operation = doc["paths"][path]["post"]
        assert "requestBody" in operation
        assert {"200", "404", "422"} <= set(operation["responses"])


def test_store_file_in_data_dir(server: OtpServer) -> None:
    path: Path = server.data_dir / OTP_DATABASE_FILE
    assert path.exists()
