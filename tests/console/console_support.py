"""Console test helpers: the test users and a logged-in httpx client that knows its CSRF
token (imported by conftest and the tests; the name avoids clashing with tests/api/conftest)."""

import re
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from apiserver import Server

PASSWORDS = {"ana": "analyst-password", "lea": "lead-password!", "root": "admin-password"}
ROLES = {"ana": "analyst", "lea": "lead", "root": "admin"}
_CSRF = re.compile(r'"X-CSRF-Token": "([0-9a-f]+)"')


class Browser(httpx.Client):
    """An httpx client that keeps the session cookie and knows its CSRF token."""

    csrf: str = ""


def log_in(server: Server, login: str) -> Browser:
    browser = Browser(base_url=server.url, timeout=30, follow_redirects=False)
    answer = browser.post(
        "/console/login",
        data={"login": login, "password": PASSWORDS[login], "next": "/console/decisions"},
    )
    assert answer.status_code == 303, answer.text
    page = browser.get("/console/decisions")
    found = _CSRF.search(page.text)
    assert found is not None
    browser.csrf = found.group(1)
    return browser
