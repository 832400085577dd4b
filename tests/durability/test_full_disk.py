"""Failure 3 of issue 14: a 503 must not change state.

The disk fills up (simulated with SQLite's `PRAGMA max_page_count` on the event log's
connection, then filled to the cap: a write that needs a new page fails with SQLITE_FULL,
"database or disk is full", exactly as on a full file system. The refused events carry a
20 KB `attrs` note, so that they need new pages rather than fitting in a page's free
space). The refused event, or batch, is answered 503 and leaves
every count, link, chain and hold as it was; a graceful shutdown then snapshots the state
without it, and a restart holds exactly the events that were answered 200.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiserver import Server
from durable_support import card_bind, fill_disk, recent_ms, settings, state, transfer

from payguard.engine import Engine
from payguard.sim.population import luhn_complete


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, httpx.Client]]:
    server = Server(tmp_path, settings(tmp_path)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            yield server, http
    finally:
        if server.thread.is_alive():  # one test stops it itself, to restart from disk
            server.stop()


def _big(body: dict[str, Any]) -> dict[str, Any]:
    """The event with a note too large for the free space left in any page."""
    return {**body, "attrs": {"note": "n" * 20_000}}


def _accepted(http: httpx.Client) -> list[str]:
    events = [
        card_bind("ok-1", "u1", recent_ms(30), luhn_complete("622202123456780001")),
        card_bind("ok-2", "u1", recent_ms(29), luhn_complete("622202123456780002")),
        transfer("ok-3", "u1", recent_ms(28), "3000.00"),
    ]
    for body in events:
        assert http.post("/v1/events", json=body).status_code == 200
    return [e["event_id"] for e in events]


def test_a_refused_event_or_batch_changes_no_state_and_is_not_snapshotted(
    served: tuple[Server, httpx.Client], tmp_path: Path
) -> None:
    server, http = served
    accepted = _accepted(http)
    before = state(server.engine)
    assert before[3], "a hold was placed"

    fill_disk(server, full=True)
    bind = card_bind("full-1", "u1", recent_ms(27), luhn_complete("622202123456780003"))
    refused = http.post("/v1/events", json=_big(bind))
    assert (refused.status_code, refused.json()) == (503, {"error": "storage_unavailable"})
    assert state(server.engine) == before
    batch = [
        _big(transfer("full-2", "u1", recent_ms(26), "5000.00")),
        _big(card_bind("full-3", "u2", recent_ms(25), luhn_complete("622202123456780004"))),
    ]
    assert http.post("/v1/events/batch", json=batch).status_code == 503
    assert state(server.engine) == before
    metrics = http.get("/metrics").text
    assert "payguard_storage_errors_total 2.0" in metrics
    fill_disk(server, full=False)

    server.stop()  # graceful: flush, then the snapshot
    reopened = Engine.open(server.settings)
    try:
        assert reopened.recover() == 0, "the snapshot holds everything recorded"
        assert reopened.recorder.last_seq() == len(accepted)
        for event_id in ("full-1", "full-2", "full-3"):
            assert reopened.recorder.lookup(event_id) is None
        assert state(reopened) == before
    finally:
        reopened.close()


def test_the_server_serves_again_once_there_is_room(
    served: tuple[Server, httpx.Client],
) -> None:
    server, http = served
    _accepted(http)
    fill_disk(server, full=True)
    body = _big(transfer("retry-1", "u1", recent_ms(20), "3000.00"))
    assert http.post("/v1/events", json=body).status_code == 503
    fill_disk(server, full=False)
    again = http.post("/v1/events", json=body)
    assert again.status_code == 200 and again.json()["action"] == "hold"
    newest = server.engine.holds.find(now_ms=0, limit=1)
    assert [h.hold_id for h in newest] == ["hold-retry-1"]
