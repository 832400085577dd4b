"""A store written before decisions moved into the `events` table still works.

Such a store keeps each decision as JSON in a separate `decisions` table. Opening it adds
the new columns in place; its old decisions are still answered for repeats and lookups,
its events still rebuild the feature state, and new records go in the new layout.
"""

import sqlite3
from itertools import islice
from pathlib import Path

import msgspec

from payguard.config import load_settings
from payguard.decision import Decision, Reason, ShadowHit
from payguard.engine import DATABASE_FILE, Engine, compile_ruleset
from payguard.events import Event
from payguard.features import FeatureState, load_catalog
from payguard.store import MemoryRecorder, SQLiteRecorder
from payguard.store.base import as_recorded

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "examples" / "events.jsonl"
RULESET = ROOT / "rules" / "default.yaml"
OLD_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, ts INTEGER NOT NULL,
    type TEXT NOT NULL, payload BLOB NOT NULL, payload_hash BLOB NOT NULL
);
CREATE TABLE decisions (
    event_id TEXT PRIMARY KEY REFERENCES events(event_id), action TEXT NOT NULL,
    body BLOB NOT NULL
);
"""


def _memory_engine() -> Engine:
    features = FeatureState(load_catalog())
    return Engine(
        features=features,
        ruleset=compile_ruleset(RULESET.read_text(), features),
        recorder=MemoryRecorder(),
        settings=load_settings(env={}),
    )


def _decided(count: int) -> tuple[Engine, list[tuple[Event, Decision]]]:
    engine = _memory_engine()
    decided = []
    with EVENTS.open("rb") as lines:
        for line in islice(lines, count):
            event = engine.decoder.decode(line)
            decided.append((event, engine.process(event)[0]))
    return engine, decided


def _timeless(decision: Decision) -> Decision:
    return msgspec.structs.replace(decision, latency_us=0)


def _write_old_store(path: Path, engine: Engine, decided: list[tuple[Event, Decision]]) -> None:
    encode = msgspec.json.Encoder(order="sorted").encode
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    for seq, (event, decision) in enumerate(decided, start=1):
        payload = encode(event)
        row = (seq, event.event_id, event.ts, event.type, payload, engine.payload_hash(event))
        db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", row)
        db.execute(
            "INSERT INTO decisions VALUES (?, ?, ?)",
            (event.event_id, decision.action, encode(decision)),
        )
    db.commit()
    db.close()


def test_old_store_opens_answers_and_grows(tmp_path: Path) -> None:
    clean, decided = _decided(2_000)
    _write_old_store(tmp_path / DATABASE_FILE, clean, decided[:1_500])
    settings = load_settings(
        env={"PAYGUARD_DATA_DIR": str(tmp_path), "PAYGUARD_RULESET": str(RULESET)}
    )

    engine = Engine.open(settings)  # no snapshot: the old log rebuilds the state
    for event, decision in decided[:1_500:97]:
        assert engine.stored_decision(event.event_id) == as_recorded(decision)
        assert engine.process(event) == (as_recorded(decision), True)
    for event, decision in decided[1_500:]:
        fresh, repeat = engine.process(event)
        assert not repeat and _timeless(fresh) == _timeless(decision)
    engine.close()

    reopened = Engine.open(settings)
    try:
        assert reopened.features.digest_items() == clean.features.digest_items()
        for event, decision in decided[:1_500:101]:
            assert reopened.stored_decision(event.event_id) == as_recorded(decision)
        for event, decision in decided[1_500::29]:
            stored = reopened.stored_decision(event.event_id)
            assert stored is not None and _timeless(stored) == _timeless(as_recorded(decision))
    finally:
        reopened.recorder.close()


def test_lookup_returns_the_recorded_decision_before_and_after_flush(tmp_path: Path) -> None:
    _, decided = _decided(300)
    settings = load_settings(
        env={"PAYGUARD_DATA_DIR": str(tmp_path), "PAYGUARD_RULESET": str(RULESET)}
    )
    engine = Engine.open(settings)
    try:
        fresh = [engine.process(event)[0] for event, _ in decided]
        pending = [engine.stored_decision(e.event_id) for e, _ in decided]
        engine.flush()
        durable = [engine.stored_decision(e.event_id) for e, _ in decided]
        assert pending == durable == [as_recorded(d) for d in fresh]
        assert [_timeless(d) for d in fresh] == [_timeless(d) for _, d in decided]
    finally:
        engine.close()


def test_every_decision_field_round_trips(tmp_path: Path) -> None:
    full = Decision(
        event_id="e1",
        action="challenge",
        score=40,
        reasons=[Reason(code="C", rule="r", text="why")],
        ruleset="v+1",
        model=None,
        latency_us=12,
        challenge=["face", "hardware_token"],
        features={"b_count": 3, "a_new": True, "c_sum": 10**12},
        shadow=[ShadowHit(rule="s", action="block", score=5)],
        rule_errors=[{"rule": "x", "error": "TypeError: no"}],
    )
    bare = Decision(
        event_id="e2", action="allow", score=0, reasons=[], ruleset="v", model="m", latency_us=1
    )
    recorder = SQLiteRecorder(tmp_path / DATABASE_FILE)
    for i, decision in enumerate((full, bare)):
        event = Event(event_id=decision.event_id, type="login", ts=1_700_000_000_000 + i)
        recorder.append(event, b"{}", b"h", decision)
    recorder.close()
    reopened = SQLiteRecorder(tmp_path / DATABASE_FILE)
    try:
        for decision in (full, bare):
            stored = reopened.lookup(decision.event_id)
            assert stored is not None and stored.decision == as_recorded(decision)
    finally:
        reopened.close()


def test_discarded_records_leave_no_feature_set_behind(tmp_path: Path) -> None:
    def record(i: int, features: dict[str, int]) -> tuple[Event, Decision]:
        event = Event(event_id=f"e{i}", type="login", ts=1_700_000_000_000 + i)
        decision = Decision(
            event_id=event.event_id,
            action="allow",
            score=0,
            reasons=[],
            ruleset="v",
            model=None,
            latency_us=1,
            features=features,
        )
        return event, decision

    recorder = SQLiteRecorder(tmp_path / DATABASE_FILE)
    event, decision = record(1, {"a": 1})
    recorder.append(event, b"{}", b"h", decision)
    recorder.discard_pending()
    kept = [record(2, {"b": 2}), record(3, {"a": 3}), record(4, {"b": 4})]
    for event, decision in kept:
        recorder.append(event, b"{}", b"h", decision)
    recorder.close()
    reopened = SQLiteRecorder(tmp_path / DATABASE_FILE)
    try:
        assert reopened.lookup("e1") is None
        for event, decision in kept:
            stored = reopened.lookup(event.event_id)
            assert stored is not None and stored.decision == decision
    finally:
        reopened.close()
