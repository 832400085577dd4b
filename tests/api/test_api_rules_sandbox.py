"""The rules sandbox over HTTP (issue 14, failure 4): `PUT /v1/ruleset` refuses what could
escape or stall the server, naming the rule and the reason, and keeps the active ruleset;
a rule that raises is recorded in the decision, counted in /metrics and fails open or
closed as the rule declares."""

from typing import Any

import httpx
import msgspec
import pytest
from apiserver import Server, event

from payguard.config import load_settings

T0 = 1_599_183_000_000
YAML = {"content-type": "text/yaml"}


def _balanced_or(terms: list[str]) -> str:
    """`terms` joined by `||` as a balanced tree, so only the cost (not the depth) is large."""
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({_balanced_or(terms[:half])} || {_balanced_or(terms[half:])})"


def _refused(client: httpx.Client, text: str) -> dict[str, Any]:
    before = client.get("/healthz").json()["ruleset"]
    r = client.put("/v1/ruleset", content=text.encode(), headers=YAML)
    assert r.status_code == 422, r.text
    assert client.get("/healthz").json()["ruleset"] == before
    body: dict[str, Any] = r.json()
    assert body["error"] == "invalid_ruleset"
    return body


def test_a_macro_hidden_behind_a_comment_is_refused(client: httpx.Client) -> None:
    text = (
        "version: trick\nrules:\n  - id: sneaky\n    when: |\n"
        "      [amount, amount, amount].//\n      exists(x, x > 0)\n"
        "    action: block\n    reason: x\n"
    )
    body = _refused(client, text)
    assert body["rule"] == "sneaky"
    assert "comprehension macros are not allowed: `.exists()`" in body["reason"]


def test_an_alias_bomb_is_refused(client: httpx.Client) -> None:
    lines = ["version: bomb", 'r0: &r0 {id: r, when: "amount > 1", action: review, reason: x}']
    lines += [f"r{n}: &r{n} [" + ", ".join([f"*r{n - 1}"] * 10) + "]" for n in range(1, 13)]
    body = _refused(client, "\n".join([*lines, "rules: *r12"]) + "\n")
    assert body["rule"] == "-" and "expands to more than" in body["reason"]


def test_a_megabyte_of_aliases_is_refused(client: httpx.Client) -> None:
    rule = '{id: r, when: "amount > 1", action: review, reason: x}'
    text = f"version: b\nbase: &r {rule}\nrules: [" + ", ".join(["*r"] * 240_000) + "]\n"
    body = _refused(client, text)
    assert "expands to more than" in body["reason"]
    assert client.get("/healthz").status_code == 200


def test_an_over_budget_rule_is_refused_naming_it_and_its_cost(client: httpx.Client) -> None:
    costly = _balanced_or([f"channel.contains('x{n}')" for n in range(50)])
    text = (
        f'version: costly\nrules:\n  - {{id: slow, when: "{costly}", action: review, reason: x}}\n'
    )
    body = _refused(client, text)
    assert body["rule"] == "slow"
    assert "estimated cost 1199 exceeds the budget of 1000 per rule" in body["reason"]


FAILING = """version: failing
rules:
  - {id: open_rule, when: "attrs.campaign == 'x'", action: block, reason: opens,
     events: [payment]}
  - {id: closed_rule, when: "attrs.campaign == 'x'", action: review, reason: closes,
     events: [payment], on_error: fail_closed}
"""


def _payment(event_id: str, **extra: Any) -> dict[str, Any]:
    return event(
        event_id,
        "payment",
        "u-sandbox",
        T0,
        device_id="dev-sandbox",
        amount="25.00",
        card={"token": "vault-sandbox"},
        merchant={"id": "m_food_1", "category": "food"},
        channel="app",
        **extra,
    )


def _rule_error_count(client: httpx.Client, rule: str) -> int:
    prefix = f'payguard_rule_errors_total{{error="KeyError",rule="{rule}"}} '
    lines = [x for x in client.get("/metrics").text.splitlines() if x.startswith(prefix)]
    return int(float(lines[0].split()[-1])) if lines else 0


def test_a_raising_rule_fails_open_or_closed_and_is_recorded(
    client: httpx.Client, server: Server
) -> None:
    default = client.get("/v1/ruleset").json()["source"]
    put = client.put("/v1/ruleset", content=FAILING.encode(), headers=YAML)
    assert put.status_code == 200, put.text
    try:
        # no `campaign` in attrs: both rules raise; the fail_closed one's review applies
        r = client.post("/v1/events", json=_payment("sb-1", attrs={"phone": "13800138000"}))
        assert r.status_code == 200, r.text
        assert r.json()["action"] == "review"
        assert [x["rule"] for x in r.json()["reasons"]] == ["closed_rule"]
        explained = client.get("/v1/decisions/sb-1", params={"explain": "1"}).json()
        assert explained["rule_errors"] == [
            {"rule": "open_rule", "error": "KeyError", "on_error": "fail_open"},
            {"rule": "closed_rule", "error": "KeyError", "on_error": "fail_closed"},
        ]
        assert "13800138000" not in str(explained["rule_errors"])
        assert _rule_error_count(client, "open_rule") == 1
        assert _rule_error_count(client, "closed_rule") == 1
        # with the key present neither raises, and the block of the open rule applies
        ok = client.post("/v1/events", json=_payment("sb-2", attrs={"campaign": "x"}))
        assert ok.json()["action"] == "block"
        ok_explained = client.get("/v1/decisions/sb-2", params={"explain": "1"}).json()
        assert ok_explained["rule_errors"] == []
        client.post("/v1/events", json=_payment("sb-3"))
        assert _rule_error_count(client, "open_rule") == 2
    finally:
        client.put("/v1/ruleset", content=default.encode(), headers=YAML)


def test_an_exhausted_budget_fails_the_remaining_rules_by_their_mode(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """`rule_budget_us = 0`: the budget is spent before the first CEL call, so both CEL-only
    rules fail with BudgetExceeded, without evaluating, by their declared mode."""
    data_dir = tmp_path_factory.mktemp("budget")
    ruleset = data_dir / "failing.yaml"
    ruleset.write_text(FAILING)
    base = load_settings(env={"PAYGUARD_DATA_DIR": str(data_dir)})
    settings = msgspec.structs.replace(base, ruleset=ruleset, rule_budget_us=0)
    server = Server(data_dir, settings).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            r = http.post("/v1/events", json=_payment("bx-1", attrs={"campaign": "x"}))
            assert r.json()["action"] == "review"  # only the fail_closed rule applies
            explained = http.get("/v1/decisions/bx-1", params={"explain": "1"}).json()
            assert [(e["rule"], e["error"]) for e in explained["rule_errors"]] == [
                ("open_rule", "BudgetExceeded"),
                ("closed_rule", "BudgetExceeded"),
            ]
    finally:
        server.stop()
