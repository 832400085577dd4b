"""Degraded mode: an event decided while the state store is unreachable fails closed or
open by its type, says so in its reason, is recorded (so the log that rebuilds the state
holds it) and leaves the state untouched; the event log's unique index keeps two workers
from recording the same event twice while the state's claims cannot be made."""

from itertools import islice
from pathlib import Path

import msgspec
import pytest

from payguard.config import Settings
from payguard.engine import Engine, compile_ruleset
from payguard.events import Event
from payguard.features import FeatureState, load_catalog
from payguard.policy.degraded import REASON_CODE
from payguard.store.base import DuplicateRecordError
from payguard.store.postgres import PostgresRecorder

REPO = Path(__file__).resolve().parents[2]
RULESET = REPO / "rules" / "default.yaml"
T0 = 1_764_000_000_000


def _engine(text: str | None = None) -> Engine:
    settings = Settings(ruleset=RULESET)
    features = FeatureState(load_catalog(settings.features), settings.utc_offset)
    ruleset = compile_ruleset(text or RULESET.read_text(), features)
    return Engine.in_memory(settings, features, ruleset)


def _event(event_id: str, kind: str) -> Event:
    return Event(event_id=event_id, type=kind, ts=T0, user_id="u1", amount=50_000)


def test_money_leaving_fails_closed_the_rest_fails_open() -> None:
    engine = _engine()
    with (REPO / "examples" / "events.jsonl").open("rb") as lines:
        for line in islice(lines, 200):
            engine.process(engine.decoder.decode(line))
    before = msgspec.msgpack.encode(engine.features.digest_items())
    paid, repeat = engine.decide_degraded(_event("d1", "payment"), "redis: connection refused")
    logged, _ = engine.decide_degraded(_event("d2", "login"), "redis: connection refused")
    assert not repeat
    assert paid.action == "review" and logged.action == "allow"
    for decision in (paid, logged):
        [reason] = decision.reasons
        assert reason.code == REASON_CODE and "connection refused" in reason.text
    assert "fail-closed" in paid.reasons[0].text and "fail-open" in logged.reasons[0].text
    assert msgspec.msgpack.encode(engine.features.digest_items()) == before  # not touched
    engine.flush()
    recorded = engine.recorder.lookup("d1")
    assert recorded is not None and recorded.decision.action == "review"
    again, was_repeat = engine.decide_degraded(_event("d1", "payment"), "still down")
    assert was_repeat and again.action == "review"
    assert engine.metrics.degraded == 2


def test_the_ruleset_declares_which_types_fail_closed() -> None:
    text = RULESET.read_text().replace(
        "policy:\n", "policy:\n  degraded: {closed: [login], closed_action: block}\n", 1
    )
    engine = _engine(text)
    assert engine.decide_degraded(_event("a", "login"), "down")[0].action == "block"
    assert engine.decide_degraded(_event("b", "payment"), "down")[0].action == "allow"
    bad = RULESET.read_text().replace("policy:\n", "policy:\n  degraded: {closed: [lgoin]}\n", 1)
    with pytest.raises(Exception, match="lgoin"):
        _engine(bad)


def test_two_degraded_workers_record_one_event_once(pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    workers = [_engine(), _engine()]
    for worker in workers:
        worker.recorder = PostgresRecorder(dsn, schema=schema)
    event = _event("same", "payment")
    first, second = (worker.decide_degraded(event, "down")[0] for worker in workers)
    assert first == second  # both decided it: neither could claim it in the state
    workers[0].recorder.flush()
    with pytest.raises(DuplicateRecordError):
        workers[1].recorder.flush()  # the log's unique index refuses the second record
    workers[1].recorder.discard_pending()
    assert [e.event_id for _, e, _ in workers[1].recorder.events_after(0)] == ["same"]
    for worker in workers:
        worker.recorder.close()
