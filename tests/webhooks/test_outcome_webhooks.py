"""Lifecycle changes that arrive as outcome events (a challenge result, a review's verdict)
are pushed as `outcome.changed`, once per change and endpoint, when the engine flushes."""

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "outcomes"))
from support import T0, label, payment, result, send, settings_for, wire

from payguard.engine import Engine
from payguard.webhooks import Webhooks

URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[Engine, Webhooks]]:
    settings = msgspec.structs.replace(
        settings_for(tmp_path / "data"), webhook_urls=(URL,), webhook_secrets=("s" * 32,)
    )
    engine = Engine.open(settings)
    hooks = Webhooks.open(settings, clock=lambda: T0)
    assert hooks is not None
    hooks.attach(engine)
    yield engine, hooks
    hooks.close()
    engine.close()


def _changes(hooks: Webhooks) -> list[tuple[str, str, str]]:
    found = hooks.outbox.find(limit=100)
    bodies = [json.loads(hooks.outbox.body(d.delivery_id) or b"") for d in found]
    return sorted(
        (b["data"]["event_id"], b["data"]["old_state"], b["data"]["new_state"])
        for b in bodies
        if b["type"] == "outcome.changed"
    )


def test_challenge_results_and_verdicts_are_pushed(wired: tuple[Engine, Webhooks]) -> None:
    engine, hooks = wired
    assert send(engine, payment("p1", T0, "2000.00")) == "challenge"
    send(engine, result("r1", "p1", T0 + 1, "face", "failed"))
    send(engine, result("r2", "p1", T0 + 2, "face", "passed"))
    assert send(engine, wire("t1", "transfer", T0 + 3, amount="2000.00")) == "review"
    send(engine, label("l1", "t1", T0 + 4, "fraud"))
    assert _changes(hooks) == [
        ("p1", "challenge:failed", "challenge:passed"),
        ("p1", "decided", "challenge:failed"),
        ("t1", "review:open", "review:resolved:fraud"),
    ]


def test_nothing_is_pushed_for_a_label_that_moves_no_state(
    wired: tuple[Engine, Webhooks],
) -> None:
    engine, hooks = wired
    assert send(engine, payment("p1", T0, "10.00")) == "allow"
    send(engine, label("l1", "p1", T0 + 1, "fraud", source="customer"))
    assert _changes(hooks) == []
