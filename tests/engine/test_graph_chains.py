"""The identity graph and the chain patterns in the decision path: what the rules read,
what the reasons name, and how their state survives a restart and a ruleset swap."""

import logging
from itertools import islice
from pathlib import Path
from typing import Any

import msgspec
import pytest
from engine_state import whole_state

from payguard.cel import RuleError
from payguard.config import load_settings
from payguard.decision import ChainEvidence, Decision
from payguard.engine import SNAPSHOT_FILE, Engine, compile_ruleset
from payguard.events import Card, Event
from payguard.features import FeatureState, load_catalog
from payguard.snapshots import decode_snapshot, encode_snapshot
from payguard.store import MemoryRecorder

ROOT = Path(__file__).resolve().parents[2]
RULESET = ROOT / "rules" / "default.yaml"
EVENTS = ROOT / "examples" / "events.jsonl"
T0 = 1_790_000_000_000
MINUTE = 60_000

TWO_CHAINS = """
version: t
chains:
  - name: reset_login
    key: user
    within: 1h
    steps:
      - events: [password_reset]
      - events: [login]
  - name: bind_pay
    key: user
    within: 1h
    steps:
      - events: [card_bind]
      - events: [payment]
rules:
  - {id: after_reset, events: [payment], when: chain_reset_login_matched, action: review,
     reason: r}
  - {id: paid_after_bind, events: [payment], when: chain_bind_pay_completes, action: review,
     reason: r}
"""


def _memory_engine(text: str | None = None, graph_chains: bool = True) -> Engine:
    settings = load_settings(env={"PAYGUARD_GRAPH_CHAINS": "1" if graph_chains else "0"})
    features = FeatureState(load_catalog())
    ruleset = compile_ruleset(text or RULESET.read_text(), features, graph_chains=graph_chains)
    return Engine(features=features, ruleset=ruleset, recorder=MemoryRecorder(), settings=settings)


def _open(data_dir: Path, ruleset: Path = RULESET) -> Engine:
    env = {"PAYGUARD_DATA_DIR": str(data_dir), "PAYGUARD_RULESET": str(ruleset)}
    return Engine.open(load_settings(env=env))


def _ev(event_id: str, type: str, minutes: int, **fields: Any) -> Event:
    return Event(event_id=event_id, type=type, ts=T0 + minutes * MINUTE, **fields)


def _takeover(engine: Engine) -> dict[str, Decision]:
    """A SIM swap, a password reset and a login from a new device, then a card binding."""
    events = [
        _ev("r", "register", -40 * 24 * 60, user_id="u1", phone="tel_v", device_id="dv"),
        _ev("s", "sim_swap", 0, phone="tel_v"),
        _ev("pr", "password_reset", 10, user_id="u1", device_id="dx", success=True),
        _ev("l", "login", 12, user_id="u1", device_id="dx", success=True),
        _ev("b", "card_bind", 30, user_id="u1", device_id="dx", card=Card(token="pan_9")),
    ]
    return {e.event_id: engine.process(e)[0] for e in events}


def _replay(engine: Engine, n: int) -> None:
    with EVENTS.open("rb") as lines:
        for line in islice(lines, n):
            engine.process(engine.decoder.decode(line))


def test_reasons_name_the_chain_and_its_events() -> None:
    decisions = _takeover(_memory_engine())
    bind = decisions["b"]
    assert bind.action == "review"
    reason = next(r for r in bind.reasons if r.rule == "phone_takeover_chain")
    assert reason.chains == [
        ChainEvidence(chain="phone_takeover", step=4, event_ids=["s", "pr", "l", "b"])
    ]
    others = [r for r in bind.reasons if r.rule != "phone_takeover_chain"]
    assert others and all(isinstance(r.chains, msgspec.UnsetType) for r in others)
    body = msgspec.json.decode(msgspec.json.encode(bind))
    chained = next(r for r in body["reasons"] if r["rule"] == "phone_takeover_chain")
    assert chained["chains"] == [
        {"chain": "phone_takeover", "step": 4, "event_ids": ["s", "pr", "l", "b"]}
    ]
    assert isinstance(bind.features, dict)
    assert bind.features["chain_phone_takeover_matched"] is True
    assert bind.features["graph_card_bound_other_identity"] is False
    assert all("chain_phone_takeover_matched" not in (d.features or {}) for d in (decisions["s"],))


def test_rules_read_graph_features() -> None:
    engine = _memory_engine()
    engine.process(_ev("k", "kyc_verify", 0, user_id="owner", id_number="idn_a", success=True))
    engine.process(_ev("b1", "card_bind", 1, user_id="owner", card=Card(token="pan_1")))
    engine.process(_ev("k2", "kyc_verify", 2, user_id="other", id_number="idn_b", success=True))
    decision, _ = engine.process(
        _ev("b2", "card_bind", 3, user_id="other", card=Card(token="pan_1"))
    )
    assert "card_bound_to_other_identity" in {r.rule for r in decision.reasons}
    assert isinstance(decision.features, dict)
    assert decision.features["graph_card_bound_other_identity"] is True


def test_types_no_chain_or_graph_reads_do_no_extra_work() -> None:
    engine = _memory_engine()
    quiet = engine._plan_for("otp_send")
    assert quiet.chain.fields is None and not quiet.graph and not quiet.chains
    event = _ev("o", "otp_send", 0, user_id="u1")
    assert engine._decide(event)[1] is None  # no variables built for the matcher
    login = engine._plan_for("login")
    assert login.chain.fields is not None  # chain steps apply to logins
    assert "distinct_user_login_fail_by_device_24h" in login.chain.features.names  # type: ignore[union-attr]


def test_recovery_without_a_snapshot_equals_the_run_that_decided(tmp_path: Path) -> None:
    engine = _open(tmp_path)
    _replay(engine, 4_000)
    engine.flush()
    decided = whole_state(engine)
    engine.recorder.close()  # no snapshot: the restart replays all 4,000 events
    again = _open(tmp_path)
    try:
        assert whole_state(again) == decided
    finally:
        again.recorder.close()


def test_snapshot_holds_graph_and_chains(tmp_path: Path) -> None:
    engine = _open(tmp_path)
    _replay(engine, 3_000)
    engine.close()
    again = _open(tmp_path)
    try:
        assert again.recover() == 0
        assert whole_state(again) == whole_state(engine)
    finally:
        again.recorder.close()


@pytest.mark.parametrize("change", ["drop", "other_chains"])
def test_snapshot_that_cannot_restore_them_is_ignored_and_the_log_replayed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, change: str
) -> None:
    """A snapshot from before the graph and chains were wired (no state for them), or
    taken with other chain patterns: replaying the whole log gives a clean run's state."""
    engine = _open(tmp_path / "data")
    _replay(engine, 3_000)
    engine.close()
    ruleset = RULESET
    if change == "drop":
        path = tmp_path / "data" / SNAPSHOT_FILE
        header, body = decode_snapshot(path.read_bytes())
        dropped = msgspec.structs.replace(body, graph=None, chains=None)
        path.write_bytes(encode_snapshot(header, dropped))
    else:
        ruleset = tmp_path / "other.yaml"
        ruleset.write_text(RULESET.read_text().replace("within: 48h", "within: 36h", 1))
    with caplog.at_level(logging.WARNING, logger="payguard"):
        reopened = _open(tmp_path / "data", ruleset)
    clean = _open(tmp_path / "clean", ruleset)
    _replay(clean, 3_000)
    try:
        assert "ignoring snapshot" in caplog.text
        assert whole_state(reopened) == whole_state(clean)
    finally:
        reopened.recorder.close()
        clean.close()


def test_hot_reload_keeps_unchanged_chains_and_starts_changed_ones_empty(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = _memory_engine(TWO_CHAINS)
    for event in (
        _ev("pr", "password_reset", 0, user_id="u1"),
        _ev("l", "login", 1, user_id="u1", success=True),
        _ev("b", "card_bind", 2, user_id="u1", card=Card(token="pan_1")),
    ):
        engine.process(event)
    matcher = engine.chains
    engine.set_ruleset(engine.parse_ruleset(TWO_CHAINS))
    assert engine.chains is matcher  # the same patterns: nothing to rebuild
    with caplog.at_level(logging.WARNING, logger="payguard"):
        engine.set_ruleset(engine.parse_ruleset(TWO_CHAINS.replace("within: 1h", "within: 2h", 1)))
    assert "reset_login" in caplog.text and "bind_pay" not in caplog.text
    paid, _ = engine.process(_ev("p", "payment", 3, user_id="u1", amount=100))
    assert [r.rule for r in paid.reasons] == ["paid_after_bind"]  # carried over
    assert paid.reasons[0].chains == [ChainEvidence("bind_pay", 2, ["b", "p"])]
    engine.process(_ev("pr2", "password_reset", 4, user_id="u1"))
    engine.process(_ev("l2", "login", 5, user_id="u1", success=True))
    again, _ = engine.process(_ev("p2", "payment", 6, user_id="u1", amount=100))
    assert "after_reset" in {r.rule for r in again.reasons}  # the new pattern matches


def test_graph_and_chains_can_be_switched_off() -> None:
    with pytest.raises(RuleError):
        _memory_engine(graph_chains=True).parse_ruleset(TWO_CHAINS.replace("chains", "chainz"))
    with pytest.raises(RuleError, match="without chain patterns"):
        _memory_engine(TWO_CHAINS, graph_chains=False)
    plain = "version: t\nrules:\n  - {id: big, when: amount > 5, action: review, reason: r}\n"
    engine = _memory_engine(plain, graph_chains=False)
    assert engine.graph is None and engine.chains is None
    decision, _ = engine.process(_ev("p", "payment", 0, user_id="u1", amount=10))
    assert decision.action == "review"
    assert engine.neighbourhood("account", "u1", 2) is None
    assert "payguard_graph_accounts" not in engine.gauges()
