"""`POST /v1/events` answered by the plain ASGI route (api/fast_events.py) is answered
exactly as Litestar's handler answers it: two apps on twin data directories (the same
keys, the same clock), one with the fast route and one without, get the same requests
one after the other; status, headers and body must match byte for byte (the decision's
`latency_us` and so the length aside), and so must the counters and the audit log afterwards."""

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from apiserver import DEFAULT_RULESET
from litestar import Litestar
from litestar.testing import TestClient

from payguard.api import create_app
from payguard.api.fast_events import FastEventRoute
from payguard.auth import Access, ApiKey, hash_secret
from payguard.auth.keys import new_secret
from payguard.config import load_settings
from payguard.engine import Engine

NOW_MS = time.time_ns() // 1_000_000
_LATENCY = re.compile(rb'"latency_us":\d+')
_COUNTERS = re.compile(
    r"^payguard_(decisions|invalid_events|duplicate_events|conflicting_events|"
    r"future_events|storage_errors)\S* \S+$",
    re.MULTILINE,
)


def _keys() -> dict[str, tuple[ApiKey, str]]:
    """The same keys (ids and secrets) for both twins."""
    keys = {}
    for name, scopes, extra in (
        ("writer", ("events:write",), {}),
        ("labeller", ("events:write", "labels:write"), {}),
        ("reader", ("decisions:read",), {}),
        ("auditor", ("admin",), {}),
        ("slow", ("events:write",), {"rate_per_s": 1, "burst": 1}),
        ("expired", ("events:write",), {"expires_ms": NOW_MS - 1}),
    ):
        key_id, secret = new_secret()
        key = ApiKey(key_id, name, scopes, NOW_MS - 10_000, **extra)  # type: ignore[arg-type]
        keys[name] = (key, secret)
    return keys


KEYS = _keys()


class Twin:
    """One app on its own data directory, with or without the fast route."""

    def __init__(self, data_dir: Path, *, fast: bool) -> None:
        loaded = load_settings(env={"PAYGUARD_DATA_DIR": str(data_dir)})
        self.engine = Engine.open(msgspec.structs.replace(loaded, ruleset=DEFAULT_RULESET))
        self.access = Access.open(data_dir, rate_per_s=1_000, burst=1_000)
        for key, secret in KEYS.values():
            self.access.keys.add(key, hash_secret(secret))
        self.app: Litestar = create_app(
            self.engine, access=self.access, clock=lambda: NOW_MS, fast_events=fast
        )
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def close(self) -> None:
        self.engine.close()
        self.access.close()


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Twin, Twin]]:
    fast = Twin(tmp_path_factory.mktemp("fast"), fast=True)
    slow = Twin(tmp_path_factory.mktemp("litestar"), fast=False)
    with fast.client, slow.client:
        yield fast, slow
    fast.close()
    slow.close()


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name][1]}"}


def _event(n: int, type_: str = "login", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": f"fast-{n}",
        "type": type_,
        "ts": NOW_MS - 60_000 + n,
        "user_id": f"u-fast-{n % 3}",
        "device_id": "d-fast",
    }
    if type_ == "login":
        body.update(method="password", success=True)
    body.update(fields)
    return body


def _answer(twin: Twin, request: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    path = request.pop("path", "/v1/events")
    answer = twin.client.post(path, **request)
    headers = [(k, v) for k, v in answer.headers.multi_items() if k not in ("date", "server")]
    length = ("content-length", str(len(answer.content)))
    headers = [("content-length", "right") if h == length else h for h in headers]
    return answer.status_code, headers, _LATENCY.sub(b'"latency_us":0', answer.content)


def _requests() -> list[dict[str, Any]]:
    login = _event(1)
    payment = _event(
        2,
        "payment",
        amount="120.50",
        card={"number": "6228480402564890018"},
        merchant={"id": "m-1", "category": "food"},
    )
    label = {
        "event_id": "fast-label",
        "type": "label",
        "ts": NOW_MS - 1_000,
        "user_id": "u-fast-1",
        "ref_event_id": "fast-1",
        "label": "fraud",
        "source": "analyst",
    }
    return [
        {"json": login, "headers": _auth("writer")},
        {"json": login, "headers": _auth("writer")},  # idempotent repeat
        {"json": login, "headers": _auth("writer"), "params": {"explain": "1"}},
        {"json": _event(3), "headers": _auth("writer"), "params": {"explain": "TRUE"}},
        {
            "json": _event(4),
            "headers": _auth("writer"),
            "params": [("explain", "1"), ("explain", "0")],
        },
        {"json": _event(5), "headers": _auth("writer"), "params": {"explain": ""}},
        {"json": payment, "headers": _auth("writer"), "params": {"explain": "yes"}},
        {"json": {**login, "success": False}, "headers": _auth("writer")},  # 409
        {"json": _event(6)},  # no key
        {"json": _event(7), "headers": {"Authorization": "Bearer nonsense"}},
        {"json": _event(8), "headers": {"Authorization": "Basic " + KEYS["writer"][1]}},
        {"json": _event(9), "headers": {"Authorization": f"Bearer {KEYS['writer'][1]}x"}},
        {"json": _event(10), "headers": _auth("expired")},
        {"json": _event(11), "headers": _auth("reader")},  # lacks events:write
        {"json": _event(12), "headers": _auth("slow")},
        {"json": _event(13), "headers": _auth("slow")},  # 429
        {"json": label, "headers": _auth("writer")},  # lacks labels:write
        {"json": label, "headers": _auth("labeller")},
        {"json": label, "headers": _auth("labeller")},  # repeat: audited once
        {"content": b"{not json", "headers": _auth("writer")},
        {"content": b"[1, 2]", "headers": _auth("writer")},
        {"json": {"event_id": "fast-x", "type": "login"}, "headers": _auth("writer")},
        {"json": _event(14, ts=NOW_MS + 3_600_000), "headers": _auth("writer")},  # future
        {
            "json": {**label, "event_id": "fast-l2", "ref_event_id": "nope"},
            "headers": _auth("labeller"),
        },
        {"content": b"x" * 70_000, "headers": _auth("writer")},  # 413 by Content-Length
        {"content": iter([b"x" * 40_000, b"x" * 40_000]), "headers": _auth("writer")},  # chunked
        {"content": b"x" * 70_000},  # no key: 401 before 413
        {"json": _event(15), "headers": _auth("writer"), "path": "/v1/events/"},
    ]


def test_the_fast_route_answers_as_litestar_does(twins: tuple[Twin, Twin]) -> None:
    fast, slow = twins
    assert isinstance(fast.app.fast_events, FastEventRoute)  # type: ignore[attr-defined]
    assert slow.app.fast_events is None  # type: ignore[attr-defined]
    statuses = []
    for number, request in enumerate(_requests()):
        expected = _answer(slow, dict(request))
        statuses.append(expected[0])
        if "content" in request and not isinstance(request["content"], bytes):
            request = {**request, "content": iter([b"x" * 40_000, b"x" * 40_000])}
        assert _answer(fast, dict(request)) == expected, (number, request.get("json"))
    assert {200, 400, 401, 403, 409, 413, 422, 429} <= set(statuses)
    metrics = [_COUNTERS.findall(t.client.get("/metrics").text) for t in (fast, slow)]
    assert metrics[0] == metrics[1]
    trail = [
        [
            (e["actor"], e["action"], e["target"])
            for e in t.client.get(
                "/v1/audit", params={"action": "label."}, headers=_auth("auditor")
            ).json()["entries"]
        ]
        for t in (fast, slow)
    ]
    assert trail[0] == trail[1] and len(trail[0]) == 1


def test_a_bug_is_a_500_without_the_body(
    twins: tuple[Twin, Twin], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = twins
    for twin in (fast, slow):

        def broken(*_: Any) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(twin.engine, "check_time", broken)
    request = {"json": _event(20), "headers": _auth("writer")}
    expected = _answer(slow, dict(request))
    assert expected[0] == 500 and expected[2] == b'{"error":"internal_error"}'
    assert _answer(fast, dict(request)) == expected
