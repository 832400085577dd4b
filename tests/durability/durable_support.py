"""Shared pieces of the durability tests: a ruleset that holds large transfers, events
that exercise features, graph and holds, and the engine's state as comparable values."""

import copy
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
from apiserver import Server

from payguard.config import Settings
from payguard.engine import Engine
from payguard.store import SQLiteRecorder

HOLD_RULES = """version: durability-test
rules:
  - id: big_transfer_held
    events: [transfer]
    when: amount >= 100000
    action: hold
    score: 30
    reason: large transfers wait for the owner
  - id: many_cards
    events: [card_bind]
    when: count_card_bind_by_user_1h >= 2
    action: review
    reason: several cards bound within the hour
policy:
  hold_hours: 12
"""
PHONE = "+8613800138000"


def settings(tmp_path: Path, **changes: Any) -> Settings:
    rules = tmp_path / "rules.yaml"
    rules.write_text(HOLD_RULES)
    return Settings(data_dir=tmp_path / "data", ruleset=rules, **changes)


def recent_ms(minutes_ago: int) -> int:
    """A time that lies in the past of the wall clock (future events are refused)."""
    return time.time_ns() // 1_000_000 - minutes_ago * 60_000


def transfer(event_id: str, user: str, ts: int, amount: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "transfer",
        "ts": ts,
        "user_id": user,
        "device_id": f"dev-{user}",
        "phone": PHONE,
        "amount": amount,
        "payee": {"id": "payee-9"},
    }


def card_bind(event_id: str, user: str, ts: int, pan: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "card_bind",
        "ts": ts,
        "user_id": user,
        "device_id": f"dev-{user}",
        "card": {"number": pan, "kind": "debit"},
    }


def state(engine: Engine) -> list[Any]:
    """Feature timelines, graph and chains, holds and the outcome index, comparably."""
    graph = chains = None
    if engine.graph is not None and engine.chains is not None:
        graph = msgspec.msgpack.decode(engine.graph.export())
        graph["edges"] = sorted(graph["edges"], key=lambda e: (e[0], e[1]))
        chains = msgspec.msgpack.decode(engine.chains.export())
    holds = engine.holds.find(now_ms=0, limit=1_000)
    found = [engine.features.digest_items(), graph, chains, holds, engine.outcomes.book.verdicts()]
    return copy.deepcopy(found)  # the digest shares live dicts: later events would change it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """`payguard serve` settings for a subprocess: the hold ruleset, `tmp_path/data`."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(HOLD_RULES)
    env = dict(os.environ)
    for name in ("PAYGUARD_FAULT", "PAYGUARD_DEV"):
        env.pop(name, None)
    env.update(
        {
            "PAYGUARD_DATA_DIR": str(tmp_path / "data"),
            "PAYGUARD_RULESET": str(rules),
            "PAYGUARD_TOKEN_KEY": "durability-tests-token-key-0123456789abcdef",
        }
    )
    env.update(extra)
    return env


def admin_key(env: dict[str, str]) -> dict[str, str]:
    """Headers with a fresh admin key of the data directory (`payguard keys create`)."""
    made = subprocess.run(
        [sys.executable, "-m", "payguard.cli", "keys", "create", "--scope", "admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}


def start_serve(env: dict[str, str], port: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "payguard.cli", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_serving(proc: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {proc.communicate()[1]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("serve did not start")


def stop(proc: subprocess.Popen[str]) -> None:
    """Graceful stop (SIGTERM), as an operator's restart would do it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


NO_LIMIT = 1_073_741_823


def fill_disk(server: Server, *, full: bool) -> None:
    """`fill_log` on the server's engine."""
    fill_log(server.engine, full=full)


def fill_log(engine: Engine, *, full: bool) -> None:
    """Cap the event log's size and fill it up to the cap (every free byte of every page
    used), so that the next event's insert finds no room; or lift the cap. The cap is
    per connection: both of the recorder's (reads, and the group commits' writer) get it."""
    recorder = engine.recorder
    assert isinstance(recorder, SQLiteRecorder)
    db, writer = recorder.connections
    if not full:
        for each in (db, writer):
            each.execute(f"PRAGMA max_page_count = {NO_LIMIT}")
        return
    db.execute("CREATE TABLE IF NOT EXISTS filler (blob BLOB)")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    for each in (db, writer):
        each.execute(f"PRAGMA max_page_count = {pages + 4}")
    for size in (4096, 512, 64, 8, 1):
        try:
            while True:
                db.execute("INSERT INTO filler VALUES (zeroblob(?))", (size,))
        except sqlite3.OperationalError as exc:
            assert "full" in str(exc)
