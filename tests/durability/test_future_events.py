"""Failure 2 of issue 14: one future-dated event must not blind every time window.

Before the fix, a `logout` dated 2099 was accepted and moved the watermark that every
window is measured back from; three cards bound within 3 s then read
`count_card_bind_by_user_1h: 0`. Now such an event is refused (HTTP 422 naming `ts`, CLI
exit 2 naming the line and `ts`), is not recorded, and the watermark does not move.
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiserver import DEFAULT_RULESET, Server, event

from payguard.sim.population import luhn_complete

YEAR_2099_MS = 4_070_908_800_000  # 2099-01-01T00:00:00Z
FEATURE = "count_card_bind_by_user_1h"
ROOT = Path(__file__).resolve().parents[2]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _bind(event_id: str, user: str, ts: int, n: int) -> dict[str, Any]:
    pan = luhn_complete(f"62220212345678{n:04d}")
    return event(event_id, "card_bind", user, ts, card={"number": pan, "kind": "debit"})


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[Server, httpx.Client]]:
    server = Server(tmp_path).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            yield server, http
    finally:
        server.stop()


def test_future_logout_is_refused_and_card_binds_still_count(
    client: tuple[Server, httpx.Client],
) -> None:
    server, http = client
    now = _now_ms()
    future = http.post("/v1/events", json=event("f-logout", "logout", "u-f", YEAR_2099_MS))
    assert future.status_code == 422
    body = future.json()
    assert (body["error"], body["field"], body["event_id"]) == ("invalid_event", "ts", "f-logout")
    assert server.engine.features.watermark < YEAR_2099_MS
    assert server.engine.recorder.lookup("f-logout") is None

    counts = []
    for n in range(3):
        bind = _bind(f"f-bind-{n}", "u-f", now + n * 1_000, n)
        r = http.post("/v1/events", params={"explain": "1"}, json=bind)
        assert r.status_code == 200, r.text
        counts.append(r.json()["features"][FEATURE])
    assert counts == [0, 1, 2]


def test_batch_with_one_future_event_is_refused_whole(
    client: tuple[Server, httpx.Client],
) -> None:
    server, http = client
    now = _now_ms()
    skew = server.settings.max_future_ms
    batch = [
        _bind("fb-1", "u-fb", now, 1),
        event("fb-2", "logout", "u-fb", now + skew + 60_000),
    ]
    r = http.post("/v1/events/batch", json=batch)
    assert r.status_code == 422
    assert (r.json()["index"], r.json()["field"]) == (1, "ts")
    assert server.engine.recorder.lookup("fb-1") is None
    within = http.post("/v1/events", json=event("fb-3", "logout", "u-fb", now + skew // 2))
    assert within.status_code == 200, "an event within the allowed skew is decided"


def _replay(tmp_path: Path, lines: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    env = dict(os.environ)
    env.update(
        {"PAYGUARD_DATA_DIR": str(tmp_path / "data"), "PAYGUARD_RULESET": str(DEFAULT_RULESET)}
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "payguard.cli",
            "replay",
            str(events),
            "-o",
            "out.jsonl",
            "--explain",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_replay_refuses_the_future_line_and_keeps_last_months_history(tmp_path: Path) -> None:
    """A file of history replays whatever its age (it is never ahead of the wall clock);
    a future-dated line is refused by number and field, and the rest is decided with
    windows intact."""
    month_ago = _now_ms() - 30 * 86_400_000
    lines = [
        event("r-logout", "logout", "u-r", YEAR_2099_MS),
        *(_bind(f"r-bind-{n}", "u-r", month_ago + n * 1_000, n) for n in range(3)),
    ]
    done = _replay(tmp_path, lines)
    assert done.returncode == 2
    assert "line 1: event r-logout: ts:" in " ".join(done.stderr.split())
    decided = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [d["features"][FEATURE] for d in decided] == [0, 1, 2]
