"""Operations (issue 14, failure 9, in part): one process per data directory, a readiness
check that reflects storage, recovery and ruleset, and one-line start-up errors.

Real `payguard` subprocesses for the CLI, a real server on loopback for `/readyz`.
"""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apiserver import Server
from durable_support import (
    fill_disk,
    free_port,
    recent_ms,
    serve_env,
    settings,
    start_serve,
    stop,
    transfer,
    wait_until_serving,
)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "examples" / "events.jsonl"


def _payguard(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "payguard.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single line a refused start prints (no traceback)."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_a_second_process_on_the_data_directory_exits_2_naming_it_and_the_holder(
    tmp_path: Path,
) -> None:
    env = serve_env(tmp_path, COLUMNS="400")
    port = free_port()
    holder = start_serve(env, port)
    try:
        wait_until_serving(holder, f"http://127.0.0.1:{port}")
        data_dir = str(tmp_path / "data")
        for args in (
            ("serve", "--port", str(free_port())),
            ("replay", str(EVENTS), "-o", str(tmp_path / "out.jsonl")),
            ("warm-up", str(EVENTS), "--append"),
            ("decide",),
        ):
            line = _one_line(_payguard(env, *args))
            assert data_dir in line and f"pid {holder.pid}" in line, (args, line)
    finally:
        stop(holder)
    # the lock goes with its process: a new one may start
    again = start_serve(env, port)
    try:
        wait_until_serving(again, f"http://127.0.0.1:{port}")
    finally:
        stop(again)


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    env = serve_env(tmp_path)
    port = free_port()
    holder = start_serve(env, port)
    wait_until_serving(holder, f"http://127.0.0.1:{port}")
    holder.kill()
    holder.wait(timeout=30)
    again = start_serve(env, port)
    try:
        wait_until_serving(again, f"http://127.0.0.1:{port}")
    finally:
        stop(again)


def test_serve_with_a_bad_port_says_one_line(tmp_path: Path) -> None:
    env = serve_env(tmp_path, COLUMNS="400")
    assert "--port 70000" in _one_line(_payguard(env, "serve", "--port", "70000"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _one_line(_payguard(env, "serve", "--port", str(port)))
        assert f"cannot listen on 127.0.0.1:{port}" in line


def test_serve_with_a_missing_ruleset_says_one_line(tmp_path: Path) -> None:
    env = serve_env(tmp_path, COLUMNS="400", PAYGUARD_RULESET=str(tmp_path / "nope.yaml"))
    line = _one_line(_payguard(env, "serve", "--port", str(free_port())))
    assert "no such ruleset file" in line and "nope.yaml" in line


def test_serve_on_a_read_only_data_dir_says_one_line(tmp_path: Path) -> None:
    """As root, permissions do not stop writes: a directory under the read-only /sys
    stands in for a read-only mount then; otherwise the directory is made read-only."""
    if os.geteuid() == 0:
        data_dir = Path("/sys/payguard-test-data")
    else:
        data_dir = tmp_path / "ro"
        data_dir.mkdir()
        data_dir.chmod(0o555)
    env = serve_env(tmp_path, COLUMNS="400", PAYGUARD_DATA_DIR=str(data_dir))
    line = _one_line(_payguard(env, "serve", "--port", str(free_port())))
    assert f"data directory {data_dir} is not writable" in line


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, httpx.Client]]:
    server = Server(tmp_path, settings(tmp_path)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            yield server, http
    finally:
        server.stop()


def test_readyz_reflects_storage_and_ruleset(served: tuple[Server, httpx.Client]) -> None:
    server, http = served
    ready = http.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "reasons": []})
    assert http.post("/v1/events", json=transfer("r-1", "u1", recent_ms(3), "10.00")).is_success

    fill_disk(server, full=True)
    full = http.get("/readyz")
    assert full.status_code == 503 and full.json()["status"] == "not_ready"
    [reason] = full.json()["reasons"]
    assert reason.startswith("storage:") and "full" in reason
    assert http.get("/healthz").status_code == 200  # alive, just not ready
    fill_disk(server, full=False)
    assert http.get("/readyz").status_code == 200

    empty = http.put(
        "/v1/ruleset", content="version: empty\nrules: []\n", headers={"content-type": "text/yaml"}
    )
    assert empty.status_code == 200, empty.text
    no_rules = http.get("/readyz")
    assert no_rules.status_code == 503
    assert no_rules.json()["reasons"] == [f"ruleset {empty.json()['version']} has no rules"]


def test_readyz_waits_for_recovery(tmp_path: Path) -> None:
    server = Server(tmp_path, settings(tmp_path))
    server.engine.recovered = False  # as during a restart's replay
    server.start()
    try:
        answer = httpx.get(f"{server.url}/readyz", timeout=10)
        assert answer.status_code == 503
        assert "state recovery has not finished" in answer.json()["reasons"]
    finally:
        server.stop()
