"""A hold whose release time passes is recorded as released by expiry and announced once
(`outcome.changed`, `hold:released`, `resolved_by: expiry`), over real HTTP to a real
receiver: also when it came due while the server was down, and never again after another
restart. A crash between the webhook's write and the hold's is repaired by the next run
without a second delivery."""

import sys
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from receiver import DAY_MS, SECRET, Receiver, hold_events, now_ms, wait_for

from payguard.api import hold_expiry
from payguard.config import Settings, load_settings
from payguard.engine import Engine
from payguard.webhooks import OUTBOX_FILE, Outbox, Webhooks

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from apiserver import DEFAULT_RULESET, Server


def _settings(data_dir: Path, url: str) -> Settings:
    loaded = load_settings(env={"PAYGUARD_DATA_DIR": str(data_dir)})
    return msgspec.structs.replace(
        loaded,
        ruleset=DEFAULT_RULESET,
        webhook_urls=(url,),
        webhook_secrets=(SECRET,),
        webhook_backoff_ms=20,
    )


def _expiries(receiver: Receiver) -> list[dict[str, Any]]:
    return [
        r.json["data"]
        for r in receiver.requests
        if r.json["type"] == "outcome.changed" and r.status == 200
    ]


def _outbox_expiries(data_dir: Path) -> int:
    outbox = Outbox(data_dir / OUTBOX_FILE)
    try:
        changed = outbox.find(subject="e1-transfer", limit=100)
        return sum(1 for d in changed if d.type == "outcome.changed")
    finally:
        outbox.close()


def test_a_hold_due_while_down_is_announced_once_after_restarts(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, receiver.url)
    monkeypatch.setattr(hold_expiry, "EVERY_S", 3600.0)  # the first server never looks again
    first = Server(tmp_path, settings).start()
    try:
        with httpx.Client(base_url=first.url, timeout=10) as client:
            for body in hold_events("e1", now_ms() - 3 * DAY_MS):  # due already
                assert client.post("/v1/events", json=body).status_code == 200
            wait_for(lambda: len(receiver.accepted) == 1)  # decision.hold only
            hold = client.get("/v1/holds/hold-e1-transfer").json()
            assert hold["state"] == "released"  # it reads as released, unannounced
    finally:
        first.stop()
    assert _expiries(receiver) == []

    monkeypatch.setattr(hold_expiry, "EVERY_S", 1.0)
    second = Server(tmp_path, settings).start()
    try:
        wait_for(lambda: len(_expiries(receiver)) == 1)
        with httpx.Client(base_url=second.url, timeout=10) as client:
            hold = client.get("/v1/holds/hold-e1-transfer").json()
            decision = client.get("/v1/decisions/e1-transfer").json()
    finally:
        second.stop()
    [announced] = _expiries(receiver)
    assert announced["event_id"] == "e1-transfer"
    assert (announced["old_state"], announced["new_state"]) == ("decided", "hold:released")
    assert announced["detail"]["resolved_by"] == "expiry"
    assert announced["detail"]["resolved_ts"] == hold["release_ts"]
    assert (hold["state"], hold["resolved_by"]) == ("released", "expiry")
    assert decision["state"] == "hold:released"

    third = Server(tmp_path, settings).start()  # its start-up run finds nothing due
    try:
        with httpx.Client(base_url=third.url, timeout=10) as client:
            assert client.get("/v1/holds/hold-e1-transfer").json()["resolved_by"] == "expiry"
    finally:
        third.stop()
    assert len(_expiries(receiver)) == 1
    assert _outbox_expiries(tmp_path) == 1


def test_a_crash_before_the_hold_is_stored_is_repaired_without_a_second_webhook(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, receiver.url)
    engine = Engine.open(settings)
    hooks = Webhooks.open(settings)
    assert hooks is not None
    hooks.attach(engine)
    heard: list[tuple[str, str, str]] = []
    engine.outcomes.book.subscribe(lambda *change: heard.append(change))
    try:
        for body in hold_events("e1", now_ms() - 3 * DAY_MS):
            engine.process(engine.decoder.decode(msgspec.json.encode(body)))
            engine.flush()

        def crash(hold_id: str, now_ms: int) -> None:
            raise OSError("killed between the webhook's write and the hold's")

        with monkeypatch.context() as patch:
            patch.setattr(engine.holds, "expire", crash)
            with pytest.raises(OSError):
                engine.expire_holds(now_ms())
        assert _outbox_expiries(tmp_path) == 1  # written before the hold
        assert heard == []
        assert [h.hold_id for h in engine.expire_holds(now_ms())] == ["hold-e1-transfer"]
        assert engine.expire_holds(now_ms()) == []
        assert _outbox_expiries(tmp_path) == 1  # the same delivery id: not a second one
        assert heard == [("e1-transfer", "decided", "hold:released")]
        stored = engine.holds.get("hold-e1-transfer")
        assert stored is not None and (stored.state, stored.resolved_by) == ("released", "expiry")
    finally:
        hooks.close()
        engine.close()
