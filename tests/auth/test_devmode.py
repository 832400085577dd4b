"""`payguard serve` outside and inside development mode, as a real process."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from payguard.auth import check_token_key, dev_admin_key
from payguard.auth.devmode import StartupRefused

REPO = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" * 32


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGUARD_")}
    env.update(PAYGUARD_DATA_DIR=str(data_dir), PAYGUARD_RULESET=str(REPO / "rules/default.yaml"))
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_args(port: int) -> list[str]:
    return [sys.executable, "-m", "payguard.cli", "serve", "--port", str(port)]


@contextmanager
def _serving(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A `payguard serve` process, up (healthz answers), stopped with SIGTERM after."""
    port = _free_port()
    proc = subprocess.Popen(_serve_args(port), env=env, stderr=subprocess.PIPE, text=True, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "payguard serve did not come up"
            time.sleep(0.1)
        yield url, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.parametrize(
    ("extra", "named"),
    [({}, "public development key"), ({"PAYGUARD_TOKEN_KEY": "short-but-16-bytes"}, "18 bytes")],
)
def test_serve_refuses_a_weak_token_key_outside_development_mode(
    tmp_path: Path, extra: dict[str, str], named: str
) -> None:
    done = subprocess.run(
        _serve_args(_free_port()),
        env=_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "PAYGUARD_TOKEN_KEY" in lines[0] and named in lines[0]
    assert "Traceback" not in done.stderr


def test_development_mode_is_loud_and_its_admin_key_works(tmp_path: Path) -> None:
    with _serving(_env(tmp_path, PAYGUARD_DEV="1")) as (url, proc):
        assert proc.stderr is not None
        banner = ""
        while "Bearer pg_dev_" not in banner:
            banner += proc.stderr.readline()
        assert "DEVELOPMENT MODE" in banner and "PUBLIC development key" in banner
        secret = re.search(r"Bearer (pg_dev_\S+)", banner)
        assert secret is not None
        headers = {"Authorization": f"Bearer {secret.group(1)}"}
        assert httpx.get(f"{url}/v1/audit", headers=headers, timeout=10).status_code == 200
        assert httpx.get(f"{url}/v1/audit", timeout=10).status_code == 401


def test_production_mode_starts_with_a_good_key_and_no_dev_key(tmp_path: Path) -> None:
    with _serving(_env(tmp_path, PAYGUARD_TOKEN_KEY=GOOD_KEY)) as (url, _):
        assert httpx.get(f"{url}/v1/ruleset", timeout=10).status_code == 401


def test_the_rules_in_one_place() -> None:
    check_token_key("payguard-development-key-not-for-production", is_dev_key=True, dev=True)
    check_token_key(GOOD_KEY, is_dev_key=False, dev=False)
    with pytest.raises(StartupRefused, match="PAYGUARD_TOKEN_KEY"):
        check_token_key("k" * 31, is_dev_key=False, dev=False)
    assert dev_admin_key({}, 0) is None
    assert dev_admin_key({"PAYGUARD_DEV": "1", "PAYGUARD_DEV_ADMIN": "0"}, 0) is None
    made = dev_admin_key({"PAYGUARD_DEV": "1"}, 0)
    assert made is not None and made.key.scopes == ("admin",)
