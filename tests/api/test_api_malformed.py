"""Issue 14, failure 7: bytes that are not UTF-8 and 30,000-deep nesting answer 400 on every
route that reads a body, over real HTTP, naming the problem; never a 500."""

import httpx
import pytest

DEPTH = 30_000
BAD = b"\xff\xfe"
"""Not UTF-8 anywhere: 0xff never starts a sequence."""


def _object(fields: dict[str, bytes]) -> bytes:
    return b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in fields.items()) + b"}"


def _event(**extra: bytes) -> bytes:
    base = {"event_id": b'"e-%d"' % len(extra), "type": b'"login"', "ts": b"1600000000000"}
    return _object({**base, "user_id": b'"u1"', **extra})


BAD_VALUE = {
    "/v1/events": _event(user_id=b'"u' + BAD + b'"'),
    "/v1/events/batch": b"[" + _event(user_id=b'"u' + BAD + b'"') + b"]",
    "/v1/holds": _object({"hold_id": b'"h' + BAD + b'"', "action": b'"release"', "by": b'"staff"'}),
    "/v1/otp/send": _object({"user_id": b'"u' + BAD + b'"', "phone": b'"13800138000"'}),
    "/v1/otp/verify": _object(
        {"challenge_id": b'"c' + BAD + b'"', "code": b'"123456"', "user_id": b'"u1"'}
    ),
}
BAD_KEY = {
    route: body[:1] + b'"k' + BAD + b'":1,' + body[1:] if body.startswith(b"{") else body
    for route, body in BAD_VALUE.items()
}
BAD_KEY["/v1/events/batch"] = b"[" + BAD_KEY["/v1/events"] + b"]"

DEEP_ARRAY = b"[" * DEPTH + b"]" * DEPTH
DEEP = {
    "/v1/events": _event(attrs=b'{"a":' + DEEP_ARRAY + b"}"),
    "/v1/events/batch": b"[" + _event(attrs=b'{"a":' + DEEP_ARRAY + b"}") + b"]",
    "/v1/holds": _object({"hold_id": DEEP_ARRAY}),
    "/v1/otp/send": _object({"user_id": DEEP_ARRAY}),
    "/v1/otp/verify": _object({"challenge_id": DEEP_ARRAY}),
}


def _assert_names_problem(response: httpx.Response, words: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body.get("field") in {"$", "body"}
    assert words in body["reason"]


@pytest.mark.parametrize("route", sorted(BAD_VALUE))
def test_invalid_utf8_in_a_value_is_400(client: httpx.Client, route: str) -> None:
    response = client.post(route, content=BAD_VALUE[route], headers=_json)
    _assert_names_problem(response, "not valid UTF-8")


@pytest.mark.parametrize("route", sorted(BAD_KEY))
def test_invalid_utf8_in_a_key_is_400(client: httpx.Client, route: str) -> None:
    response = client.post(route, content=BAD_KEY[route], headers=_json)
    _assert_names_problem(response, "not valid UTF-8")


@pytest.mark.parametrize("route", ["/v1/events", "/v1/events/batch"])
def test_deep_nesting_is_400(client: httpx.Client, route: str) -> None:
    """`attrs` takes any JSON, so the decoder descends until Python's recursion limit."""
    assert len(DEEP[route]) < 65_536  # under the body limit: the decoder itself must cope
    response = client.post(route, content=DEEP[route], headers=_json)
    _assert_names_problem(response, "nested too deeply")


@pytest.mark.parametrize("route", ["/v1/holds", "/v1/otp/send", "/v1/otp/verify"])
def test_deep_nesting_where_a_string_is_due_is_422(client: httpx.Client, route: str) -> None:
    """Typed fields stop at the first bracket: a 422 naming the field, no descent."""
    response = client.post(route, content=DEEP[route], headers=_json)
    assert response.status_code == 422, response.text
    assert response.json()["field"] in {"hold_id", "user_id", "challenge_id"}


def test_batch_with_a_bad_item_before_bad_bytes_is_4xx(client: httpx.Client) -> None:
    """The batch route re-reads the body to name an event_id; bad bytes there are no 500."""
    for body in (b'[1,"' + BAD + b'"]', b"[1," + DEEP_ARRAY + b"]"):
        response = client.post("/v1/events/batch", content=body, headers=_json)
        assert response.status_code == 422, response.text
        assert response.json()["index"] == 0


def test_ruleset_not_utf8_is_400(client: httpx.Client) -> None:
    body = b"version: '1'\nrules:\n  - name: r" + BAD + b"\n"
    response = client.put("/v1/ruleset", content=body, headers={"content-type": "text/yaml"})
    _assert_names_problem(response, "not valid UTF-8")


def test_ruleset_deep_nesting_is_4xx(client: httpx.Client) -> None:
    """libyaml's composer recurses in C: 30,000 levels would kill the server (SIGSEGV)."""
    for body in (DEEP_ARRAY, b"rules: " + b"{a: " * DEPTH + b"1" + b"}" * DEPTH):
        response = client.put("/v1/ruleset", content=body, headers={"content-type": "text/yaml"})
        assert response.status_code == 422, response.text
        assert "nested" in response.json()["reason"]
    assert client.get("/healthz").status_code == 200


_json = {"content-type": "application/json"}
