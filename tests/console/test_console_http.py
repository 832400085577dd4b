"""The console over real HTTP: login, the session cookie, roles, CSRF, bad input, and
rules published, versioned and rolled back through it (each audited with the user)."""

import re
from pathlib import Path

import httpx
from console_support import Browser, Server

from payguard.api.access import route_template
from payguard.auth import AuditLog

DEFAULT = (Path(__file__).resolve().parents[2] / "rules" / "default.yaml").read_text()


def audit_actions(server: Server, actor: str) -> list[str]:
    log = AuditLog(server.data_dir / "auth.db")
    try:
        return [e.action for e in log.entries() if e.actor == actor]
    finally:
        log.close()


def test_pages_need_a_session(server: Server) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        answer = anonymous.get("/console/decisions")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/login?next=/console/decisions"
        htmx = anonymous.post("/console/rules/check", headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and htmx.headers["hx-redirect"].startswith("/console/login")
    forged_cookie = {"payguard_console": "ana.admin.9999999999999.x.00"}
    with httpx.Client(base_url=server.url, cookies=forged_cookie) as forger:
        assert forger.get("/console/decisions").status_code == 303


def test_login_sets_a_locked_down_cookie_and_is_audited(server: Server) -> None:
    with httpx.Client(base_url=server.url) as browser:
        answer = browser.post(
            "/console/login", data={"login": "ana", "password": "analyst-password"}
        )
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
        wrong = browser.post("/console/login", data={"login": "ana", "password": "guess-guess"})
        assert wrong.status_code == 401 and "wrong password" in wrong.text
    assert "console.login" in audit_actions(server, "user:ana")
    assert "console.login_failed" in audit_actions(server, "anonymous")


def test_login_never_redirects_off_the_console(server: Server) -> None:
    with httpx.Client(base_url=server.url) as browser:
        form = {"login": "ana", "password": "analyst-password", "next": "//evil.example/"}
        assert browser.post("/console/login", data=form).headers["location"] == "/console/"


def test_state_changes_need_the_sessions_csrf_token(server: Server, lead: Browser) -> None:
    body = {"source": DEFAULT}
    assert lead.post("/console/rules/check", data=body).status_code == 403
    assert lead.post("/console/rules/check", data={**body, "csrf": "0" * 64}).status_code == 403
    good = lead.post("/console/rules/check", data=body, headers={"X-CSRF-Token": lead.csrf})
    assert good.status_code == 200 and "Valid:" in good.text


def test_the_editor_names_what_is_wrong_as_you_type(lead: Browser) -> None:
    broken = DEFAULT.replace("when: ", "when: nonexistent_feature_xyz > 1 && ", 1)
    answer = lead.post("/console/rules/check", data={"source": broken, "csrf": lead.csrf})
    assert answer.status_code == 200
    assert "Not valid" in answer.text and "nonexistent_feature_xyz" in answer.text


def test_an_analyst_may_not_edit_rules(analyst: Browser) -> None:
    assert analyst.get("/console/rules/edit").status_code == 403
    publish = analyst.post("/console/rules/publish", data={"source": DEFAULT, "csrf": analyst.csrf})
    assert publish.status_code == 403
    assert analyst.get("/console/rules").status_code == 200


def test_bad_input_is_a_4xx_naming_the_field(lead: Browser) -> None:
    since = lead.get("/console/decisions", params={"since": "yesterday-ish"})
    assert since.status_code == 422 and "since:" in since.text
    action = lead.get("/console/decisions", params={"action": "explode"})
    assert action.status_code == 422 and "action:" in action.text
    days = lead.post(
        "/console/rules/backtest", data={"source": DEFAULT, "days": "0", "csrf": lead.csrf}
    )
    assert days.status_code == 422 and "days:" in days.text
    unknown = lead.post("/console/rules/rollback/999999", data={"csrf": lead.csrf})
    assert unknown.status_code == 404 and "version" in unknown.text


def test_publish_then_roll_back_keeps_author_and_diff(server: Server, lead: Browser) -> None:
    started = server.engine.ruleset.version
    draft = (
        DEFAULT.replace("version:", "version: console-test-", 1)
        if "version: " in DEFAULT
        else DEFAULT
    )
    published = lead.post(
        "/console/rules/publish", data={"source": draft, "note": "try it", "csrf": lead.csrf}
    )
    assert published.status_code == 303
    assert server.engine.ruleset.version != started
    page = lead.get("/console/rules/versions").text
    assert "by <strong>lea</strong>" in page and "try it" in page
    assert "console-test-" in page, "the diff shows the changed line"
    first = page.split('id="version-')[-1].split('"')[0]
    rolled = lead.post(f"/console/rules/rollback/{first}", data={"csrf": lead.csrf})
    assert rolled.status_code == 303
    assert server.engine.ruleset.version == started
    actions = audit_actions(server, "user:lea")
    assert "ruleset.publish" in actions and "ruleset.rollback" in actions


def test_every_console_page_but_login_and_static_needs_a_session(server: Server) -> None:
    """Walks the app: the key guard leaves /console/ to the console, so each of its routes
    must be behind the session guard (or deliberately public)."""
    public = {"/console/login", "/console/static/{file_path}"}
    checked = 0
    with httpx.Client(base_url=server.url) as anonymous:
        for route in server.app.routes:
            path = route_template(route.path)
            if not path.startswith("/console") or path in public:
                continue
            for method in getattr(route, "methods", set()) - {"OPTIONS", "HEAD"}:
                url = re.sub(r"\{\w+\}", "1", path)
                answer = anonymous.request(method, url)
                assert answer.status_code == 303, (method, path, answer.status_code)
                assert answer.headers["location"].startswith("/console/login")
                checked += 1
    assert checked >= 15


NEW_RULE = """  - id: console_draft_big_night_transfer
    description: A draft rule tried in shadow.
    events: [transfer]
    when: amount >= 900000 && hour < 6
    action: review
    score: 10
    reason: A large transfer at night.
"""


def test_publish_in_shadow_keeps_live_rules_and_adds_the_draft_as_shadow(
    server: Server, lead: Browser
) -> None:
    """The draft adds a rule and changes `deny_listed_card`'s action: live, the old rule
    still decides; the new rule and the changed one's copy only record (mode shadow)."""
    changed = DEFAULT.replace(
        "    when: card in deny_list('stolen_cards')\n    action: block",
        "    when: card in deny_list('stolen_cards')\n    action: review",
        1,
    )
    assert changed != DEFAULT
    draft = changed.replace("\nrules:\n", "\nrules:\n" + NEW_RULE, 1)
    live_before = {c.rule.id: c.rule for c in server.engine.ruleset.rules}
    answer = lead.post(
        "/console/rules/publish",
        data={"source": draft, "shadow": "1", "note": "night", "csrf": lead.csrf},
    )
    assert answer.status_code == 303, answer.text
    rules = {c.rule.id: c.rule for c in server.engine.ruleset.rules}
    assert rules["console_draft_big_night_transfer"].mode == "shadow"
    assert rules["deny_listed_card__draft"].mode == "shadow"
    assert rules["deny_listed_card__draft"].action == "review"
    assert rules["deny_listed_card"] == live_before["deny_listed_card"]  # still blocks, live
    assert {i for i, r in rules.items() if r.mode == "live"} == {
        i for i, r in live_before.items() if r.mode == "live"
    }
    assert "in shadow: night" in lead.get("/console/rules/versions").text
    unchanged = lead.post(
        "/console/rules/publish",
        data={"source": DEFAULT, "shadow": "1", "csrf": lead.csrf},
    )
    assert unchanged.status_code == 422 and "nothing to shadow" in unchanged.text
