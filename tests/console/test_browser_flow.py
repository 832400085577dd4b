"""The analyst's whole flow in Debian's chromium (Playwright), against a real `payguard
serve` with simulated phone thefts loaded through the API: once with the case store in
SQLite, once in Postgres (127.0.0.1:5432, db `test`, a schema of its own).

Log in (keyboard only), see the case a phone-theft review opened, open it, read its
timeline and identity graph, resolve it as fraud with a note, revoke the account's hold,
put the card on a deny list and see the next payment with that card blocked; then, as a
lead, draft a rule (checked as typed), backtest it, publish it and roll it back.

Set PAYGUARD_SCREENSHOTS=<dir> to keep a screenshot of the case view (docs/img/).
"""

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from world import Victim, history, live_theft, next_payment, pick_victim

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
PAYGUARD = Path(sys.executable).parent / "payguard"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORDS = {"ana": "analyst-password", "lea": "lead-password!"}
DRAFT_RULE = """  - id: console_drafted_large_transfer
    description: Drafted in the console's browser test.
    events: [transfer]
    when: amount >= 300000{extra}
    action: review
    score: 40
    reason: A large transfer, drafted in the console.
"""

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"
)


@dataclass
class Served:
    url: str
    admin_key: str
    victim: Victim
    started_version: str
    card_token: str = ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_dsn() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    schema = f"console_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no Postgres on 127.0.0.1:5432: {exc}")
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [str(PAYGUARD), *args], env=env, input=stdin, capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    dsn: Iterator[str] | None = _postgres_dsn() if request.param == "postgres" else None
    env = {
        **os.environ,
        "PAYGUARD_DATA_DIR": str(tmp_path / "data"),
        "PAYGUARD_RULESET": str(REPO / "rules/default.yaml"),  # blocks on `stolen_cards`
        "PAYGUARD_DEV": "1",
    }
    if dsn is not None:
        env["PAYGUARD_CASES_DSN"] = next(dsn)
    history(tmp_path / "events.jsonl", tmp_path / "labels.jsonl")
    admin_key = _cli(env, "keys", "create", "--scope", "admin", "--name", "browser test").split()[
        -1
    ]
    _cli(
        env,
        "users",
        "create",
        "ana",
        "--role",
        "analyst",
        "--password-stdin",
        stdin=PASSWORDS["ana"],
    )
    _cli(
        env, "users", "create", "lea", "--role", "lead", "--password-stdin", stdin=PASSWORDS["lea"]
    )
    port = _free_port()
    server = subprocess.Popen(
        [str(PAYGUARD), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "serve.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        api = _wait_for(url, admin_key)
        _load(api, tmp_path / "events.jsonl")
        victim = pick_victim(tmp_path / "events.jsonl")
        for event in live_theft(victim):
            assert api.post("/v1/events", json=event).status_code == 200
        started = api.get("/v1/ruleset").json()["version"]
        yield Served(url, admin_key, victim, started)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if dsn is not None:
            next(dsn, None)


def _wait_for(url: str, key: str) -> httpx.Client:
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if api.get("/healthz").status_code == 200:
                return api
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("payguard serve did not come up")


def _load(api: httpx.Client, events: Path) -> None:
    lines = events.read_bytes().splitlines()
    for start in range(0, len(lines), 2000):
        body = b"[" + b",".join(lines[start : start + 2000]) + b"]"
        answer = api.post(
            "/v1/events/batch", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 200, answer.text[:300]


def _log_in_with_the_keyboard(page: "sync_api.Page", url: str, login: str) -> None:
    page.goto(f"{url}/console/")
    assert "/console/login" in page.url
    page.locator("#login").focus()
    page.keyboard.type(login)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORDS[login])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/console/(?!login)"))


def test_analyst_flow_then_lead_rule_flow(served: Served) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            _analyst_works_the_case(page, served)
            _next_payment_on_the_card_is_blocked(page, served)
            page.context.clear_cookies()
            _lead_drafts_backtests_publishes_and_rolls_back(page, served)
        finally:
            browser.close()


def _analyst_works_the_case(page: "sync_api.Page", served: Served) -> None:
    expect = sync_api.expect
    _log_in_with_the_keyboard(page, served.url, "ana")
    assert page.url.endswith("/console/queue")
    row = page.locator("tr.case-row", has_text=served.victim.user_id).filter(has_text="review")
    expect(row).to_have_count(1)
    link = row.get_by_role("link")
    link.focus()
    page.keyboard.press("Enter")  # open it from the keyboard
    page.wait_for_url("**/console/cases/**")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("password_reset")
    expect(timeline).to_contain_text("Attack chain phone_takeover")
    expect(page.locator("#alerts")).to_contain_text("phone_takeover_chain")
    graph = page.locator("#graph")
    expect(graph).to_have_attribute("data-nodes", re.compile(r"^[2-9]|^\d\d"))
    expect(graph).to_have_attribute("data-expanded", "1")
    if screenshots := os.environ.get("PAYGUARD_SCREENSHOTS"):
        page.set_viewport_size({"width": 1280, "height": 1900})
        page.locator("#graph").evaluate("el => window.scrollTo(0, 0)")
        page.screenshot(path=str(Path(screenshots) / "console-case.png"))
        page.set_viewport_size({"width": 1280, "height": 1000})
    page.locator("button.graph-node", has_text="device thief-handset-01").click()
    expect(graph).to_have_attribute("data-expanded", "2")  # its own neighbourhood, drawn

    # The hold first: a fraud verdict revokes the account's pending holds by itself
    # (outcomes: a fraud label stops the money), which would leave nothing to revoke.
    held = page.locator("#holds tr", has_text="held").first
    held.get_by_label("Note").fill("customer confirms the phone was stolen")
    held.get_by_role("button", name="Revoke hold").click()
    expect(page.locator("#holds")).to_contain_text("revoked")

    page.select_option("#verdict", "fraud")
    page.fill("#resolve-note", "SIM swapped, reset and login from a new handset: stolen phone")
    with page.expect_navigation():
        page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#case-status")).to_have_text("closed")
    expect(page.locator("#case-verdict")).to_have_text("fraud")
    expect(page.locator("#history")).to_contain_text("resolve by user:ana")

    expect(page.locator("#holds")).to_contain_text("revoked")
    token = page.locator("code.card-token", has_text=re.compile(r"\w")).first.inner_text()
    assert token and token != served.victim.card["number"], "only the token is shown"
    page.fill("#list-name", "stolen_cards")
    page.select_option("#list-subject", "card")
    page.fill("#list-value", token)
    page.get_by_role("button", name="Add to list").click()
    page.wait_for_url("**done=add_to_list")
    served.card_token = token


def _next_payment_on_the_card_is_blocked(page: "sync_api.Page", served: Served) -> None:
    api = httpx.Client(
        base_url=served.url, headers={"Authorization": f"Bearer {served.admin_key}"}, timeout=30
    )
    decided = api.post("/v1/events", json=next_payment(served.victim)).json()
    assert decided["action"] == "block", decided
    token = served.card_token
    page.goto(f"{served.url}/console/decisions?card={token}")
    results = page.locator("#decision-results")
    sync_api.expect(results.locator("tr", has_text="payment").first).to_contain_text("block")
    sync_api.expect(results).to_contain_text("deny_listed_card")


def _lead_drafts_backtests_publishes_and_rolls_back(page: "sync_api.Page", served: Served) -> None:
    expect = sync_api.expect
    _log_in_with_the_keyboard(page, served.url, "lea")
    page.goto(f"{served.url}/console/rules/edit")
    source = page.locator("#source")
    live = source.input_value()
    head, marker, tail = live.partition("\nrules:\n")
    broken = head + marker + DRAFT_RULE.format(extra=" && no_such_feature_q > 1") + tail
    source.fill(broken)
    expect(page.locator("#check-result")).to_contain_text("Not valid")
    expect(page.locator("#check-result")).to_contain_text("no_such_feature_q")
    source.fill(head + marker + DRAFT_RULE.format(extra="") + tail)
    expect(page.locator("#check-result")).to_contain_text("Valid")

    page.fill("input[name=days]", "7")
    page.get_by_role("button", name="Backtest draft").click()
    result = page.locator("#backtest-result")
    expect(result).to_contain_text("console_drafted_large_transfer", timeout=60_000)
    assert int(page.locator("#bt-hits").inner_text()) >= 1, "the live thief's transfers hit"
    expect(page.locator("#bt-overlap")).to_contain_text("of")

    page.fill("input[name=note]", "review large transfers")
    page.get_by_role("button", name="Publish new version").click()
    page.wait_for_url("**/console/rules/versions")
    active = page.locator("#active-version").inner_text()
    assert active != served.started_version
    newest = page.locator("#versions > li").first
    expect(newest).to_contain_text("by lea")
    newest.locator("summary").click()
    expect(newest.locator("pre.diff")).to_contain_text("+  - id: console_drafted_large_transfer")

    startup = page.locator("#versions > li").filter(
        has=page.locator("code.version", has_text=served.started_version)
    )
    with page.expect_navigation():
        startup.get_by_role("button", name=re.compile("Roll back")).click()
    expect(page.locator("#active-version")).to_have_text(served.started_version)
    api = httpx.Client(
        base_url=served.url, headers={"Authorization": f"Bearer {served.admin_key}"}, timeout=30
    )
    assert api.get("/v1/ruleset").json()["version"] == served.started_version
