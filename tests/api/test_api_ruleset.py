"""Ruleset over HTTP: rejected edits name rule and position; accepted ones hot-reload."""

import httpx
import yaml
from apiserver import DEFAULT_RULESET, Server, event

from payguard.sim.population import luhn_complete

T0 = 1_599_183_000_000
YAML = {"content-type": "text/yaml"}


def _bind(event_id: str, user: str, ts: int, n: int) -> dict[str, object]:
    return event(
        event_id,
        "card_bind",
        user,
        ts,
        device_id="dev-rs",
        card={"number": luhn_complete(f"62284800001{n:04d}")},
    )


def test_get_ruleset(client: httpx.Client, server: Server) -> None:
    r = client.get("/v1/ruleset")
    assert r.status_code == 200
    assert r.json() == {
        "version": server.engine.ruleset.version,
        "source": DEFAULT_RULESET.read_text(encoding="utf-8"),
    }


def test_put_syntax_error_shows_position(client: httpx.Client) -> None:
    source = client.get("/v1/ruleset").json()["source"]
    broken = source.replace("count_card_bind_by_user_1h >= 3", "count_card_bind_by_user_1h >= && 3")
    r = client.put("/v1/ruleset", content=broken.encode(), headers=YAML)
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid_ruleset"
    assert body["rule"] == "card_bind_burst_hour"
    assert "syntax error" in body["reason"] and ":1:31" in body["reason"]
    bad_yaml = client.put("/v1/ruleset", content=b"version: [1\n", headers=YAML)
    assert bad_yaml.status_code == 422
    assert bad_yaml.json()["rule"] == "-" and "line 1" in bad_yaml.json()["reason"]


def test_put_unknown_identifier_suggests(client: httpx.Client, server: Server) -> None:
    before = server.engine.ruleset.version
    source = client.get("/v1/ruleset").json()["source"]
    typo = source.replace("count_card_bind_by_user_1h >= 3", "count_card_bind_by_usr_1h >= 3")
    r = client.put("/v1/ruleset", content=typo.encode(), headers={"content-type": "text/plain"})
    assert r.status_code == 422
    body = r.json()
    assert body["rule"] == "card_bind_burst_hour"
    assert "`count_card_bind_by_usr_1h`" in body["reason"]
    assert "did you mean `count_card_bind_by_user_1h`" in body["reason"]
    assert client.get("/healthz").json()["ruleset"] == before


def test_put_rejects_other_content_types_and_garbage(client: httpx.Client) -> None:
    r = client.put("/v1/ruleset", json={"version": "x", "rules": []})
    assert r.status_code == 415
    assert r.json()["error"] == "unsupported_media_type"
    binary = client.put("/v1/ruleset", content=b"\xff\xfe\x00", headers=YAML)
    assert binary.status_code == 400  # not UTF-8: a bad body, not a bad ruleset (issue 14)
    assert binary.json()["field"] == "body"
    assert client.put("/v1/ruleset", content=b"just text", headers=YAML).status_code == 422


def test_put_valid_hot_reloads(client: httpx.Client) -> None:
    source = client.get("/v1/ruleset").json()["source"]
    old_version = client.get("/healthz").json()["ruleset"]
    user = "u-reload"
    for i in range(2):
        r = client.post("/v1/events", json=_bind(f"rs-{i}", user, T0 + i * 60_000, i))
        assert r.json()["action"] == "allow"
        assert r.json()["ruleset"] == old_version
    # tighten: the second card within the hour already goes to review
    version = yaml.safe_load(source)["version"]
    stricter = source.replace(f'version: "{version}"', f'version: "{version}-strict"').replace(
        "when: count_card_bind_by_user_1h >= 3\n", "when: count_card_bind_by_user_1h >= 1\n"
    )
    assert stricter != source
    put = client.put("/v1/ruleset", content=stricter.encode(), headers=YAML)
    assert put.status_code == 200, put.text
    new_version = put.json()["version"]
    assert new_version.startswith(f"{version}-strict+") and new_version != old_version
    assert client.get("/healthz").json()["ruleset"] == new_version
    assert client.get("/v1/ruleset").json() == {"version": new_version, "source": stricter}
    other = "u-reload-2"
    client.post("/v1/events", json=_bind("rs-a", other, T0, 10))
    r = client.post("/v1/events", json=_bind("rs-b", other, T0 + 60_000, 11))
    assert r.json()["ruleset"] == new_version
    assert r.json()["action"] == "review"
    assert r.json()["reasons"][0]["rule"] == "card_bind_burst_hour"
    # decisions made before the swap keep the version that made them
    assert client.get("/v1/decisions/rs-0").json()["ruleset"] == old_version
    back = client.put("/v1/ruleset", content=source.encode(), headers=YAML)
    assert back.json()["version"] == old_version
