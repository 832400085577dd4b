"""A real server (tests/api/apiserver.py: uvicorn on loopback) with console users, and a
logged-in httpx client per role."""

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from console_support import PASSWORDS, ROLES, Browser, Server, log_in

from payguard.auth import UserStore


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("console-data"), authorize=False)
    users = UserStore(srv.data_dir / "auth.db")
    for login, password in PASSWORDS.items():
        users.create(login, ROLES[login], password, now_ms=time.time_ns() // 1_000_000)  # type: ignore[arg-type]
    users.close()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def analyst(server: Server) -> Iterator[Browser]:
    browser = log_in(server, "ana")
    yield browser
    browser.close()


@pytest.fixture
def lead(server: Server) -> Iterator[Browser]:
    browser = log_in(server, "lea")
    yield browser
    browser.close()
