"""Outcome webhooks over real HTTP: a challenge result and a review's verdict posted to a
payguard server on loopback reach a real receiver as signed `outcome.changed` deliveries;
undelivered (the receiver down), they survive a restart and are then delivered exactly
once each."""

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from receiver import SECRET, Receiver

from payguard.webhooks import OUTBOX_FILE, Outbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "outcomes"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from apiserver import Server
from support import T0, label, payment, result, settings_for, wire

WAIT_S = 30
"""How long a test waits for a delivery before it fails (a hang guard, not a measure)."""


def _wait_for(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for webhook deliveries")
        time.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver([SECRET]).start()
    yield started
    started.stop()


def test_outcome_changes_survive_a_restart_and_arrive_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    settings = msgspec.structs.replace(
        settings_for(tmp_path / "data"),
        webhook_urls=(receiver.url,),
        webhook_secrets=(SECRET,),
        webhook_backoff_ms=50,
    )
    receiver.fail_all = True
    first = Server(tmp_path / "data", settings).start()
    try:
        with httpx.Client(base_url=first.url, timeout=10) as client:
            bodies: list[dict[str, Any]] = [
                payment("p1", T0),  # challenge: no webhook
                result("r1", "p1", T0 + 1, "face", "passed"),
                wire("t1", "transfer", T0 + 2, amount="2000.00"),  # review
                label("l1", "t1", T0 + 3, "fraud"),
            ]
            for body in bodies:
                assert client.post("/v1/events", json=body).status_code == 200
            _wait_for(lambda: len({r.delivery_id for r in receiver.requests}) >= 3)
    finally:
        first.stop()
    assert not receiver.accepted
    outbox = Outbox(tmp_path / "data" / OUTBOX_FILE)
    assert outbox.counts() == {"pending": 3, "delivered": 0, "failed": 0}
    outbox.close()

    receiver.fail_all = False
    second = Server(tmp_path / "data", settings).start()
    try:
        _wait_for(lambda: len(receiver.accepted) == 3)
    finally:
        second.stop()
    assert sorted(receiver.accepted.values()) == [1, 1, 1], "each id accepted exactly once"
    changed = sorted(
        (r.json["data"]["event_id"], r.json["data"]["old_state"], r.json["data"]["new_state"])
        for r in receiver.requests
        if r.status == 200 and r.json["type"] == "outcome.changed"
    )
    assert changed == [
        ("p1", "decided", "challenge:passed"),
        ("t1", "review:open", "review:resolved:fraud"),
    ]
