"""Over real HTTP: 401 without a good key, 403 with the wrong scope, 429 when a key's
bucket is empty, every route in the scope table, open routes open, audit via the API."""

import re
from pathlib import Path
from typing import Any

import httpx
from apiserver import DEFAULT_RULESET, Server, event
from auth_support import bearer, mint, now_ms
from litestar import Litestar, get
from litestar.testing import TestClient

from payguard.api.access import (
    OPEN,
    ROUTE_SCOPES,
    AuthProblem,
    access_guard,
    on_auth_problem,
    required_scope,
    route_template,
)
from payguard.auth import Access, ApiKey, hash_secret
from payguard.auth.keys import new_secret


def _event(n: int) -> dict[str, Any]:
    return event(f"auth-{n}-{now_ms()}", "login", f"u-auth-{n}", now_ms(), device_id="d1")


def test_every_route_declares_a_scope(server: Server) -> None:
    """Walks the app: a new route without an entry in ROUTE_SCOPES fails here."""
    undeclared, seen = [], set()
    for route in server.app.routes:
        for method in getattr(route, "methods", set()):
            if method == "OPTIONS":
                continue
            key = (method, route_template(route.path))
            seen.add(key)
            if required_scope(*key) is None:
                undeclared.append(key)
    assert undeclared == []
    business = {k for k, v in ROUTE_SCOPES.items() if v != OPEN}
    assert business <= seen, f"table names routes the app lacks: {business - seen}"


def test_without_a_key_every_business_route_is_401(client: httpx.Client) -> None:
    for (method, path), scope in ROUTE_SCOPES.items():
        if scope == OPEN:
            continue
        url = re.sub(r"\{\w+\}", "x", path)
        answer = client.request(method, url)
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="payguard"'
        assert answer.json()["error"] == "unauthorized"
        assert answer.json()["field"] == "Authorization"


def test_open_routes_need_no_key(client: httpx.Client) -> None:
    for path in ("/healthz", "/metrics", "/schema/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_bad_keys_are_401_naming_the_reason(client: httpx.Client, server: Server) -> None:
    _, secret = mint(server, "events:write")
    expired_id, expired = new_secret()
    server.access.keys.add(
        ApiKey(expired_id, "old", ("admin",), now_ms() - 10_000, now_ms() - 1), hash_secret(expired)
    )
    revoked_id, revoked = mint(server, "admin")
    server.access.revoke_key(revoked_id, actor="test", now_ms=now_ms())
    cases = {
        "Bearer " + secret + "x": "no such API key",
        "Bearer nonsense": "not a payguard API key",
        "Basic " + secret: "not a payguard API key",
        "Bearer " + expired: "expired",
        "Bearer " + revoked: "revoked",
    }
    for header, reason in cases.items():
        answer = client.post("/v1/events", json=_event(1), headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert reason in answer.json()["reason"]
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
        assert secret not in answer.text
    assert client.post("/v1/events", json=_event(2), headers=bearer(secret)).status_code == 200


def test_wrong_scope_is_403_naming_the_scope(client: httpx.Client, server: Server) -> None:
    _, writer = mint(server, "events:write")
    _, reader = mint(server, "decisions:read")
    sent = _event(3)
    assert client.post("/v1/events", json=sent, headers=bearer(writer)).status_code == 200
    denied = client.get(f"/v1/decisions/{sent['event_id']}", headers=bearer(writer))
    assert denied.status_code == 403
    assert denied.json() == {
        "error": "forbidden",
        "reason": "the API key lacks scope decisions:read",
        "scope": "decisions:read",
    }
    read = client.get(f"/v1/decisions/{sent['event_id']}", headers=bearer(reader))
    assert read.status_code == 200
    assert client.post("/v1/events", json=_event(4), headers=bearer(reader)).status_code == 403
    wipe = client.put(
        "/v1/ruleset",
        content=b"version: x\nrules: []\n",
        headers={**bearer(writer), "content-type": "text/yaml"},
    )
    assert wipe.status_code == 403  # failure 1: a front-end key cannot replace the rules
    assert client.get("/v1/audit", headers=bearer(reader)).status_code == 403


def test_a_key_over_its_rate_gets_429_with_retry_after(
    client: httpx.Client, server: Server
) -> None:
    _, secret = mint(server, "decisions:read", rate_per_s=1, burst=3)
    codes = [client.get("/v1/holds", headers=bearer(secret)) for _ in range(10)]
    limited = [answer for answer in codes if answer.status_code == 429]
    assert [a.status_code for a in codes[:3]] == [200, 200, 200]
    assert limited, "10 requests at 1/s with a burst of 3 must be limited"
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert limited[0].json()["error"] == "rate_limited"
    _, other = mint(server, "decisions:read")
    assert client.get("/v1/holds", headers=bearer(other)).status_code == 200


def test_openapi_declares_the_bearer_scheme(client: httpx.Client) -> None:
    document = client.get("/schema/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert document["security"] == [{"bearerAuth": []}]


def test_ruleset_publish_is_audited_with_its_key(client: httpx.Client, server: Server) -> None:
    key_id, admin = mint(server, "rules:admin")
    _, auditor = mint(server, "admin")
    before = client.get("/v1/ruleset", headers=bearer(admin)).json()
    answer = client.put(
        "/v1/ruleset",
        content=DEFAULT_RULESET.read_bytes(),
        headers={**bearer(admin), "content-type": "text/yaml"},
    )
    assert answer.status_code == 200, answer.text
    page = client.get(
        "/v1/audit", params={"action": "ruleset.publish"}, headers=bearer(auditor)
    ).json()
    entry = page["entries"][-1]
    assert entry["actor"] == f"key:{key_id}"
    assert entry["actor_name"] == "test rules:admin"
    assert entry["before"] == {"version": before["version"]}
    assert entry["after"] == {"version": answer.json()["version"]}
    keys = client.get("/v1/audit", params={"action": "key."}, headers=bearer(auditor)).json()
    assert {e["action"] for e in keys["entries"]} == {"key.create", "key.revoke"}
    assert all("pg_live_" not in str(e) for e in keys["entries"])
    first = client.get("/v1/audit", params={"limit": 2}, headers=bearer(auditor)).json()
    second = client.get(
        "/v1/audit", params={"limit": 2, "after": first["next"]}, headers=bearer(auditor)
    ).json()
    assert [e["seq"] for e in first["entries"] + second["entries"]] == [1, 2, 3, 4]
    bad = client.get("/v1/audit", params={"limit": 0}, headers=bearer(auditor))
    assert bad.status_code == 400 and bad.json()["field"] == "limit"
    assert server.access.audit.verify() is None


def test_undeclared_routes_are_denied_to_every_key(tmp_path: Any) -> None:
    """Default deny: a route someone forgot to put in ROUTE_SCOPES is closed, even to admin."""

    @get("/v1/brand-new", sync_to_thread=False)
    def brand_new() -> str:
        return "open by accident"

    access = Access.open(tmp_path, rate_per_s=100, burst=100)
    admin = access.create_key(["admin"], name="a", actor="test", now_ms=now_ms()).secret
    app = Litestar(
        [brand_new],
        guards=[access_guard(access)],
        exception_handlers={AuthProblem: on_auth_problem},
    )
    with TestClient(app) as http:
        assert http.get("/v1/brand-new").status_code == 401
        denied = http.get("/v1/brand-new", headers=bearer(admin))
    access.close()
    assert denied.status_code == 403
    assert "no declared scope" in denied.json()["reason"]


def test_a_hold_release_is_audited_and_needs_holds_write(tmp_path: Path) -> None:
    """On a fresh server: the cooling-off hold needs the login 200 days back to be the
    first the device's windows see."""
    server = Server(tmp_path, authorize=False).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            _release_a_hold(client, server)
    finally:
        server.stop()


def _release_a_hold(client: httpx.Client, server: Server) -> None:
    _, front = mint(server, "events:write")
    staff_id, staff = mint(server, "holds:write")
    _, auditor = mint(server, "admin")
    now, day, user = now_ms(), 86_400_000, "u-auth-hold"
    events = [
        {"event_id": f"{user}-login", "type": "login", "ts": now - 200 * day,
         "user_id": user, "device_id": f"{user}-phone", "success": True},
        {"event_id": f"{user}-reset", "type": "password_reset", "ts": now - 20 * 60_000,
         "user_id": user, "device_id": f"{user}-phone", "method": "sms"},
        {"event_id": f"{user}-transfer", "type": "transfer", "ts": now, "user_id": user,
         "device_id": f"{user}-phone", "amount": "6000.00", "payee": {"id": "payee-new"}},
    ]  # fmt: skip
    for body in events:
        decision = client.post("/v1/events", json=body, headers=bearer(front)).json()
    assert "hold" in decision, decision
    hold_id = decision["hold"]["hold_id"]
    change = {"hold_id": hold_id, "action": "release", "by": "staff"}
    assert client.post("/v1/holds", json=change, headers=bearer(front)).status_code == 403
    assert client.post("/v1/holds", json=change, headers=bearer(staff)).status_code == 200
    entries = client.get(
        "/v1/audit", params={"action": "hold.release"}, headers=bearer(auditor)
    ).json()["entries"]
    assert [(e["actor"], e["target"], e["before"], e["after"]) for e in entries] == [
        (f"key:{staff_id}", hold_id, {"state": "held"}, {"state": "released", "by": "staff"})
    ]


def test_labels_need_labels_write_and_are_audited(client: httpx.Client, server: Server) -> None:
    """Failure 1: a front-end key cannot report fraud; a label is audited with its key."""
    _, front = mint(server, "events:write")
    labeller_id, labeller = mint(server, "events:write", "labels:write")
    _, auditor = mint(server, "admin")
    paid = event(f"auth-pay-{now_ms()}", "payment", "u-auth-label", now_ms(), amount="12.00")
    assert client.post("/v1/events", json=paid, headers=bearer(front)).status_code == 200
    verdict = {
        "event_id": f"auth-label-{now_ms()}",
        "type": "label",
        "ts": now_ms(),
        "user_id": "u-auth-label",
        "ref_event_id": paid["event_id"],
        "label": "fraud",
        "source": "analyst",
    }
    forged = client.post("/v1/events", json=verdict, headers=bearer(front))
    assert forged.status_code == 403 and forged.json()["scope"] == "labels:write"
    report = {**verdict, "event_id": f"auth-report-{now_ms()}", "type": "fraud_report"}
    del report["label"], report["source"]
    batch = client.post("/v1/events/batch", json=[report], headers=bearer(front))
    assert batch.status_code == 403
    assert client.post("/v1/events", json=verdict, headers=bearer(labeller)).status_code == 200
    again = client.post("/v1/events", json=verdict, headers=bearer(labeller))
    assert again.headers.get("Idempotent-Replay") == "true"
    entries = client.get("/v1/audit", params={"action": "label."}, headers=bearer(auditor)).json()[
        "entries"
    ]
    assert [(e["action"], e["actor"], e["target"], e["after"]) for e in entries] == [
        (
            "label.label",
            f"key:{labeller_id}",
            paid["event_id"],
            {"event_id": verdict["event_id"], "label": "fraud", "source": "analyst"},
        )
    ]


def test_rules_reload_sends_its_key(server: Server) -> None:
    from typer.testing import CliRunner

    from payguard.cli.main import app

    _, admin = mint(server, "rules:admin")
    args = ["rules", "reload", str(DEFAULT_RULESET), "--url", server.url]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "401" in refused.stderr
    done = CliRunner().invoke(app, [*args, "--key", admin])
    assert done.exit_code == 0 and "is live" in done.stdout
    by_env = CliRunner().invoke(app, args, env={"PAYGUARD_API_KEY": admin})
    assert by_env.exit_code == 0
