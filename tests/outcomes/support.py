"""A small ruleset that challenges, holds and reviews on amount, and helpers to build
events and engines for the outcome tests (real SQLite in a temporary data directory)."""

from pathlib import Path
from typing import Any

import msgspec

from payguard.config import Settings, load_settings
from payguard.engine import Engine
from payguard.events import Event

T0 = 1_700_000_000_000
HOUR = 3_600_000
RULESET = """
version: "outcomes-test"
params:
  stepup_failures_review: 2
rules:
  - id: big_payment
    events: [payment]
    when: amount >= 100000
    action: challenge
    score: 30
    reason: A big payment.
    challenge: [face, sms_otp, hardware_token]
  - id: night_payment
    events: [payment]
    when: amount == 123400
    action: challenge
    score: 30
    reason: A peculiar amount.
    challenge: [face]
  - id: big_transfer
    events: [transfer]
    when: amount >= 100000
    action: review
    score: 60
    reason: A big transfer.
  - id: held_withdrawal
    events: [withdrawal]
    when: amount >= 100000
    action: hold
    score: 40
    reason: A big withdrawal.
  - id: stepup_failures_review
    events: [payment]
    when: count_stepup_strong_fail_by_user_24h >= stepup_failures_review
    action: review
    score: 60
    reason: Strong verification failed repeatedly.
policy:
  outcomes:
    clear_hours: 24
"""


def settings_for(data_dir: Path, ruleset: str = RULESET) -> Settings:
    path = data_dir / "ruleset.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ruleset, encoding="utf-8")
    loaded = load_settings(env={"PAYGUARD_DATA_DIR": str(data_dir)})
    return msgspec.structs.replace(loaded, ruleset=path)


def open_engine(data_dir: Path, ruleset: str = RULESET) -> Engine:
    return Engine.open(settings_for(data_dir, ruleset))


def wire(event_id: str, type_: str, ts: int, user: str = "u1", **fields: Any) -> dict[str, Any]:
    """An event as a client sends it."""
    return {"event_id": event_id, "type": type_, "ts": ts, "user_id": user, **fields}


def payment(event_id: str, ts: int, amount: str = "1500.00", **fields: Any) -> dict[str, Any]:
    fields.setdefault("device_id", "dev-1")
    return wire(event_id, "payment", ts, amount=amount, **fields)


def result(
    event_id: str, ref: str, ts: int, method: str, outcome: str, **fields: Any
) -> dict[str, Any]:
    fields.setdefault("device_id", "dev-1")
    return wire(
        event_id, "challenge_result", ts, ref_event_id=ref, method=method, outcome=outcome, **fields
    )


def label(event_id: str, ref: str, ts: int, verdict: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("source", "analyst")
    return wire(event_id, "label", ts, ref_event_id=ref, label=verdict, **fields)


def decode(engine: Engine, body: dict[str, Any]) -> Event:
    return engine.decoder.decode(msgspec.json.encode(body))


def send(engine: Engine, body: dict[str, Any]) -> str:
    """Process one event and flush, as the server does; returns the action."""
    decision, _ = engine.process(decode(engine, body))
    engine.flush()
    return decision.action
