"""The notifier as an engine listener: a `review` or `hold` decision queues one delivery
per endpoint, written at the engine's flush (not before, and not at all for a request
that failed); an owner's report revoking a hold and a hold resolved by hand send
`outcome.changed`. No endpoint is called here: the outbox is what is checked."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from receiver import SECRET, T0, hold_events, review_events

from payguard.config import Settings, load_settings
from payguard.engine import Engine
from payguard.webhooks import Webhooks, delivery_id

REPO = Path(__file__).resolve().parents[2]
URLS = ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")


def _settings(data_dir: Path) -> Settings:
    loaded = load_settings(env={"PAYGUARD_DATA_DIR": str(data_dir)})
    return msgspec.structs.replace(
        loaded,
        ruleset=REPO / "rules" / "default.yaml",
        webhook_urls=URLS,
        webhook_secrets=(SECRET,),
    )


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[Engine, Webhooks]]:
    settings = _settings(tmp_path)
    engine = Engine.open(settings)
    webhooks = Webhooks.open(settings, clock=lambda: T0)
    assert webhooks is not None
    webhooks.attach(engine)
    yield engine, webhooks
    webhooks.close()
    engine.close()


def _process(engine: Engine, events: list[dict[str, Any]]) -> list[str]:
    actions = []
    for body in events:
        decision, _ = engine.process(engine.decoder.decode(json.dumps(body).encode()))
        actions.append(decision.action)
    return actions


def _bodies(webhooks: Webhooks, event_id: str) -> list[dict[str, Any]]:
    found = webhooks.outbox.find(subject=event_id, limit=100)
    return [json.loads(webhooks.outbox.body(d.delivery_id) or b"") for d in found]


def test_review_and_hold_decisions_are_written_at_the_flush_one_per_endpoint(
    wired: tuple[Engine, Webhooks],
) -> None:
    engine, webhooks = wired
    assert _process(engine, hold_events("u1", T0)) == ["allow", "allow", "hold"]
    assert _process(engine, review_events("u2", T0)) == ["allow", "allow", "review"]
    assert webhooks.outbox.find(limit=100) == [], "nothing is written before the flush"
    engine.flush()
    deliveries = webhooks.outbox.find(limit=100)
    assert sorted((d.type, d.subject, d.url, d.state) for d in deliveries) == [
        ("decision.hold", "u1-transfer", URLS[0], "pending"),
        ("decision.hold", "u1-transfer", URLS[1], "pending"),
        ("decision.review", "u2-reset", URLS[0], "pending"),
        ("decision.review", "u2-reset", URLS[1], "pending"),
    ]
    [held, _] = _bodies(webhooks, "u1-transfer")
    assert held["type"] == "decision.hold" and held["created"] == T0
    assert held["id"] in {delivery_id("decision.hold", "u1-transfer", url) for url in URLS}
    data = held["data"]
    assert (data["event_type"], data["action"], data["user_id"]) == ("transfer", "hold", "u1")
    assert (data["amount"], data["currency"], data["counterparty"]) == (600_000, "CNY", "u1-payee")
    assert data["hold"] == {"hold_id": "hold-u1-transfer", "release_ts": T0 + 24 * 3_600_000}
    assert {r["rule"] for r in data["reasons"]} >= {"cooling_off_new_payee"}
    [review, _] = _bodies(webhooks, "u2-reset")
    assert review["data"]["action"] == "review" and "hold" not in review["data"]
    assert "amount" not in review["data"]


def test_a_repeat_or_a_failed_request_adds_nothing(wired: tuple[Engine, Webhooks]) -> None:
    engine, webhooks = wired
    _process(engine, review_events("u3", T0))
    engine.flush()
    _process(engine, review_events("u3", T0))  # idempotent repeats: stored decisions
    _process(engine, hold_events("u4", T0))
    webhooks.notifier.discard_pending()  # as the API does when a request fails
    engine.recorder.discard_pending()  # type: ignore[attr-defined]
    engine.holds.discard_pending()  # type: ignore[attr-defined]
    engine.flush()
    assert sorted(d.subject for d in webhooks.outbox.find(limit=100)) == ["u3-reset"] * 2


def test_an_owner_report_revoking_a_hold_sends_an_outcome_change(
    wired: tuple[Engine, Webhooks],
) -> None:
    engine, webhooks = wired
    _process(engine, hold_events("u5", T0))
    report = {
        "event_id": "u5-report", "type": "fraud_report", "ts": T0 + 60_000, "user_id": "u5",
        "ref_event_id": "u5-transfer",
    }  # fmt: skip
    _process(engine, [report])
    engine.flush()
    changes = [b for b in _bodies(webhooks, "u5-transfer") if b["type"] == "outcome.changed"]
    assert len(changes) == 2
    assert changes[0]["data"] == {
        "event_id": "u5-transfer",
        "old_state": "decided",
        "new_state": "hold:revoked",
        "detail": {
            "hold_id": "hold-u5-transfer",
            "resolved_by": "owner_report",
            "resolved_ts": T0 + 60_000,
            "user_id": "u5",
            "amount": 600_000,
            "currency": "CNY",
        },
    }


def test_a_hold_resolved_by_hand_is_written_at_once(wired: tuple[Engine, Webhooks]) -> None:
    engine, webhooks = wired
    _process(engine, hold_events("u6", T0))
    engine.flush()
    engine.resolve_hold(
        "hold-u6-transfer", "released", at_ms=T0 + 1, by="staff", note="customer 13912345678"
    )
    changes = [b for b in _bodies(webhooks, "u6-transfer") if b["type"] == "outcome.changed"]
    assert [c["data"]["new_state"] for c in changes] == ["hold:released"] * 2
    assert all("13912345678" not in json.dumps(c) for c in changes), "notes are left out"


def test_writing_the_same_delivery_twice_keeps_the_first(wired: tuple[Engine, Webhooks]) -> None:
    _, webhooks = wired
    notifier = webhooks.notifier
    notifier.outcome_changed("ev-x", "decided", "review:resolved:fraud", {"by": "analyst-7"})
    notifier.flush()
    notifier.outcome_changed("ev-x", "decided", "review:resolved:fraud", {"by": "analyst-8"})
    notifier.flush()
    bodies = _bodies(webhooks, "ev-x")
    assert [b["data"]["detail"] for b in bodies] == [{"by": "analyst-7"}] * 2


def test_without_endpoints_there_are_no_webhooks(tmp_path: Path) -> None:
    settings = msgspec.structs.replace(_settings(tmp_path), webhook_urls=())
    assert Webhooks.open(settings) is None
    assert not (tmp_path / "webhooks.db").exists()
