"""Failure 8 of issue 14: a hold is never lost.

Holds used to be committed in a separate database after the event log: a process killed
between the two commits kept the event and its `hold` decision but lost the hold, and the
client's retry was answered from the log as an idempotent repeat, so it never came back.
Now the hold is written in the event log's own transaction. The test kills a real
`payguard serve` with SIGKILL right after that commit (`PAYGUARD_FAULT`), where the old
code had not yet written the hold, and restarts it.
"""

import contextlib
import signal
import sqlite3
from pathlib import Path

import httpx
import msgspec
from durable_support import (
    admin_key,
    free_port,
    recent_ms,
    serve_env,
    settings,
    start_serve,
    stop,
    transfer,
    wait_until_serving,
)

from payguard.engine import Engine
from payguard.holds import SQLiteHoldBook


def test_kill_9_right_after_the_commit_keeps_the_hold(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    body = transfer("k-1", "u1", recent_ms(5), "3000.00")
    auth = admin_key(serve_env(tmp_path))
    crashing = start_serve(serve_env(tmp_path, PAYGUARD_FAULT="after-event-log-commit"), port)
    try:
        wait_until_serving(crashing, url)
        with contextlib.suppress(httpx.TransportError):  # killed before it could answer
            httpx.post(f"{url}/v1/events", json=body, headers=auth, timeout=10)
        assert crashing.wait(timeout=30) == -signal.SIGKILL
    finally:
        if crashing.poll() is None:
            crashing.kill()
            crashing.wait()

    restarted = start_serve(serve_env(tmp_path), port)
    try:
        wait_until_serving(restarted, url)
        retry = httpx.post(f"{url}/v1/events", json=body, headers=auth, timeout=10)
        assert retry.headers.get("Idempotent-Replay") == "true", "the event was committed"
        assert retry.json()["action"] == "hold"
        held = httpx.get(f"{url}/v1/holds/hold-k-1", headers=auth, timeout=10)
        assert held.status_code == 200, held.text
        assert (held.json()["state"], held.json()["event_id"]) == ("held", "k-1")
    finally:
        stop(restarted)


def test_holds_of_a_separate_holds_db_are_moved_into_the_event_log(tmp_path: Path) -> None:
    config = settings(tmp_path)
    engine = Engine.open(config)
    event = engine.decoder.decode(
        msgspec.json.encode(transfer("m-1", "u1", recent_ms(9), "3000.00"))
    )
    engine.process(event, commit=True)
    [hold] = engine.holds.find(now_ms=0, limit=10)
    engine.close()
    # the earlier layout: the hold only in its own holds.db beside the event log
    old = SQLiteHoldBook(config.data_dir / "holds.db")
    old.place(hold)
    old.close()
    with sqlite3.connect(config.data_dir / "payguard.db") as db:
        db.execute("DELETE FROM holds")
    db.close()

    reopened = Engine.open(config)
    try:
        assert reopened.holds.get(hold.hold_id) == hold
        assert not (config.data_dir / "holds.db").exists()
        assert (config.data_dir / "holds.db.migrated").exists()
    finally:
        reopened.close()
