"""`payguard serve --workers 2 --state redis+cluster://…`: two stateless worker processes
behind one port decide events on the shared Cluster state; the same event_id posted many
times at once is decided once; bad options exit 2 with one line."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from state_support import clean_client, cluster_url, feature_ruleset_text

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "examples" / "event.json").read_text(encoding="utf-8"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(tmp_path: Path) -> dict[str, str]:
    ruleset = tmp_path / "rules.yaml"
    ruleset.write_text(feature_ruleset_text(), encoding="utf-8")
    return {
        **os.environ,
        "PAYGUARD_DEV": "1",
        "PAYGUARD_DATA_DIR": str(tmp_path / "data"),
        "PAYGUARD_RULESET": str(ruleset),
        "PYTHONPATH": str(ROOT / "src"),
    }


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "payguard.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_workers_share_state_and_decide_an_event_id_once(tmp_path: Path) -> None:
    url = cluster_url()
    env = _env(tmp_path)
    port = _free_port()
    command = [sys.executable, "-m", "payguard.cli", "serve", "--port", str(port)]
    command += ["--workers", "2", "--state", url]
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        key = _dev_key(server)
        headers = {"Authorization": f"Bearer {key}"}
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base)
        event = {**EVENT, "event_id": f"w-{uuid.uuid4().hex}"}
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda _: httpx.post(f"{base}/v1/events", json=event, headers=headers),
                    range(16),
                )
            )
        assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
        bodies = [a.json() for a in answers]
        # one decision, answered 16 times (its latency too): no worker decided it twice
        assert all(body == bodies[0] for body in bodies)
        assert len(list((tmp_path / "data" / "workers").iterdir())) == 2  # both started
    finally:
        server.terminate()
        server.wait(timeout=30)
        clean_client(url, "pg").close()


def _dev_key(server: subprocess.Popen[str]) -> str:
    """The development admin key from the banner the supervisor prints."""
    assert server.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = server.stderr.readline()
        if found := re.search(r"Bearer (\S+)", line):
            return found.group(1)
        if not line and server.poll() is not None:
            break
    pytest.fail("the server printed no development key")


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + 180  # two worker processes import the engine (slow when
    # the machine is loaded)
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail("the workers did not answer /healthz")


def test_workers_without_state_exit_2(tmp_path: Path) -> None:
    done = _cli("serve", "--workers", "2", env=_env(tmp_path))
    assert done.returncode == 2
    assert "--state" in done.stderr


def test_a_silent_redis_exits_2(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    done = _cli("serve", "--state", f"redis://127.0.0.1:{port}/0", env=_env(tmp_path))
    assert done.returncode == 2
    assert "redis does not answer" in done.stderr


def test_a_ruleset_reading_chains_is_refused_with_state(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "PAYGUARD_RULESET": str(ROOT / "rules" / "default.yaml")}
    done = _cli("serve", "--state", "redis://127.0.0.1:6379/0", env=env)
    assert done.returncode == 2
    assert "not in the shared state yet" in done.stderr
