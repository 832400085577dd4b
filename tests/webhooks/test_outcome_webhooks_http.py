"""Outcome webhooks over real HTTP: a challenge result and a review's verdict posted to a
payguard server on loopback reach a real receiver as signed `outcome.changed` deliveries;
undelivered (the receiver down), they survive a restart and are then delivered exactly
once each."""

import sys
from pathlib import Path
from typing import Any

import httpx
import msgspec
from receiver import SECRET, Receiver, wait_for

from payguard.webhooks import OUTBOX_FILE, Outbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "outcomes"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from apiserver import Server
from support import T0, label, payment, result, settings_for, wire


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
            wait_for(lambda: len({r.delivery_id for r in receiver.requests}) >= 3)
    finally:
        first.stop()
    assert not receiver.accepted
    outbox = Outbox(tmp_path / "data" / OUTBOX_FILE)
    assert outbox.counts() == {"pending": 3, "delivered": 0, "failed": 0}
    outbox.close()

    receiver.fail_all = False
    second = Server(tmp_path / "data", settings).start()
    try:
        wait_for(lambda: len(receiver.accepted) == 3)
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
