"""Publishing to every worker, with real processes: a ruleset put on one `payguard serve`
reaches another serving on the same board (Postgres, or the Redis Cluster), and a worker
started afterwards begins with it instead of its configured file. How long the notice
took is printed (docs/scale.md quotes it); the test asserts only that it arrives."""

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

from payguard.board.redis import RedisBoard

REPO = Path(__file__).resolve().parents[2]
RULESET = REPO / "rules" / "default.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path, board: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGUARD_")}
    env.update(
        PAYGUARD_DATA_DIR=str(data_dir),
        PAYGUARD_RULESET=str(RULESET),
        PAYGUARD_TOKEN_KEY="t" * 32,
        PAYGUARD_PUBLISH_URL=board,
        PYTHONPATH=str(REPO / "src"),
    )
    return env


def _admin_key(env: dict[str, str]) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "payguard.cli", "keys", "create", "--scope", "admin"],
        env=env, capture_output=True, text=True, check=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    return made.stdout.strip().splitlines()[-1]


@contextmanager
def _worker(data_dir: Path, board: str) -> Iterator[httpx.Client]:
    """A `payguard serve` process on `board`, up, with an admin client; stopped after."""
    env = _env(data_dir, board)
    headers = {"Authorization": f"Bearer {_admin_key(env)}"}
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "payguard.cli", "serve", "--port", str(port)],
        env=env, stderr=subprocess.DEVNULL, cwd=REPO,
    )  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "payguard serve exited"
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "payguard serve did not come up"
            time.sleep(0.1)
        yield client
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture(params=["postgres", "redis-cluster"])
def board(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "postgres":
        dsn, schema = request.getfixturevalue("pg_schema")
        yield f"{dsn} options='-c search_path={schema}'"
        return
    url = request.getfixturevalue("redis_cluster_url")
    RedisBoard(url).clear()  # the board's keys are fixed: start from none
    yield url
    RedisBoard(url).clear()


def _published(version: str) -> str:
    text = RULESET.read_text(encoding="utf-8")
    return re.sub(r'(?m)^version: "[^"]*"', f'version: "{version}"', text, count=1)


def test_a_ruleset_put_on_one_worker_reaches_the_others(tmp_path: Path, board: str) -> None:
    with _worker(tmp_path / "a", board) as a, _worker(tmp_path / "b", board) as b:
        configured = b.get("/v1/ruleset").json()["version"]
        put = a.put(
            "/v1/ruleset",
            content=_published("published-1"),
            headers={"Content-Type": "text/yaml"},
        )
        assert put.status_code == 200, put.text
        version = put.json()["version"]
        assert version.startswith("published-1") and version != configured
        sent = time.monotonic()
        deadline = sent + 30
        while b.get("/v1/ruleset").json()["version"] != version:
            assert time.monotonic() < deadline, "the ruleset never reached the other worker"
            time.sleep(0.01)
        print(f"ruleset reached the other worker in {time.monotonic() - sent:.3f} s")
        assert a.get("/v1/ruleset").json()["version"] == version
    # a worker started afterwards begins with the published ruleset
    with _worker(tmp_path / "c", board) as c:
        assert c.get("/v1/ruleset").json()["version"] == version


def test_a_list_change_on_one_worker_is_read_again_by_the_other(tmp_path: Path) -> None:
    """Workers of one host share the lists' file; the notice makes each read it again
    (the in-memory index is what rules read)."""
    from payguard.api.publication import Publication
    from payguard.auth import Actor
    from payguard.board import MemoryBoard
    from payguard.config import Settings
    from payguard.engine import Engine
    from payguard.lists import ListService

    board = MemoryBoard()
    settings = Settings(data_dir=tmp_path / "data", ruleset=RULESET)
    tokenizer = settings.tokenizer()
    workers = []
    for name in ("a", "b"):
        engine = Engine.open(Settings(data_dir=tmp_path / name, ruleset=RULESET))
        lists = ListService(tmp_path / "lists.db", tokenizer, None)
        workers.append((engine, lists, Publication(engine, lists, board)))
    (_, lists_a, _), (_, lists_b, pub_b) = workers
    actor = Actor("user:ana", "ana")
    lists_a.create("deny", "mules", "account", owner="ana", reason="r", actor=actor, now_ms=1)
    lists_a.add("deny", "mules", "u-9", reason="mule", actor=actor, now_ms=2)
    assert board.versions() == {"lists": 2}
    assert not lists_b.contains("deny", "mules", "account", "u-9", 3)
    assert pub_b.apply(board.versions()) == ["lists"]
    assert lists_b.contains("deny", "mules", "account", "u-9", 3)
    assert pub_b.apply(board.versions()) == []  # nothing newer: nothing read again
    for engine, lists, _ in workers:
        lists.close()
        engine.close()
