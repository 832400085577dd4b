"""The shipped patterns (`chains:` in rules/default.yaml) validate and catch what they are
named for.

A small pipeline wires feature state, graph and chains the way the engine will: snapshot
features and graph, build the rules' variables, snapshot chains, then update all three.
"""

import json
from pathlib import Path
from typing import Any, get_args

import pytest

from payguard.cel import RuleError
from payguard.chains import ChainMatch, ChainMatcher, load_chains_file
from payguard.events import FEEDBACK_TYPES, Card, Event, EventDecoder, Tokenizer
from payguard.events.contract import EventType
from payguard.features import FeatureState, load_catalog
from payguard.graph import GraphFeatures
from payguard.rules import event_variables
from payguard.sim import SimConfig, simulate

EVENT_TYPES = get_args(EventType)
CHAINS = Path(__file__).resolve().parents[2] / "rules" / "default.yaml"
MINUTE = 60_000
T0 = 1_790_000_000_000


def _catalog_names(features: FeatureState) -> set[str]:
    """What a rule may read without the graph: event fields and catalog features."""
    return set(event_variables()) | set(features.layout)


class Pipeline:
    """Features → graph → variables → chains, then the updates, in engine order."""

    def __init__(self) -> None:
        self.features = FeatureState(load_catalog())
        self.graph = GraphFeatures()
        known = _catalog_names(self.features) | set(self.graph.names())
        self.chains = ChainMatcher(load_chains_file(CHAINS, known, EVENT_TYPES))
        self.event_vars = event_variables()
        self.seen: dict[str, Event] = {}
        self.seq = 0
        self.matches: list[ChainMatch] = []
        """The chains the last step's read found matched or completing."""

    def step(self, event: Event) -> dict[str, Any]:
        needed = self.chains.variables_for(event.type)
        plan = self.features.plan(n for n in needed if n in self.features.layout)
        variables = {n: f(event) for n, f in self.event_vars.items() if n in needed}
        variables.update(self.features.snapshot(event, plan))
        variables.update(self.graph.snapshot(event, needed))
        out, self.matches = self.chains.read(event, variables)
        self.seq += 1
        ref = self.seen.get(event.ref_event_id or "") if event.type in FEEDBACK_TYPES else None
        self.features.update(event, ref)
        self.graph.update(event, self.seq, ref)
        self.chains.update(event, variables, self.seq)
        self.seen[event.event_id] = event
        return out


def _ev(i: str, type: str, minutes: int, **fields: Any) -> Event:
    return Event(event_id=i, type=type, ts=T0 + minutes * MINUTE, **fields)


def _takeover(p: Pipeline, counter_resume: bool) -> list[dict[str, Any]]:
    victim = {"user_id": "u1", "phone": "tel_v"}
    p.step(_ev("r", "register", -40 * 24 * 60, device_id="dv", **victim))
    p.step(_ev("s", "sim_swap", 0, phone="tel_v"))
    if counter_resume:
        p.step(_ev("c", "line_resume", 5, phone="tel_v", channel="counter"))
    return [
        p.step(_ev("pr", "password_reset", 10, device_id="dx", user_id="u1", success=True)),
        p.step(_ev("l", "login", 12, device_id="dx", user_id="u1", success=True)),
        p.step(_ev("b", "card_bind", 30, device_id="dx", user_id="u1", card=Card(token="pan_9"))),
    ]


def test_shipped_chains_validate_against_features_and_graph() -> None:
    assert [p.name for p in Pipeline().chains.patterns] == [
        "phone_takeover",
        "stuffing_takeover",
        "otp_fail_new_card",
        "identity_reuse_cashout",
    ]


def test_shipped_chains_need_the_graph_names() -> None:
    with pytest.raises(RuleError, match="graph_other_accounts_by_identity"):
        load_chains_file(CHAINS, _catalog_names(FeatureState(load_catalog())), EVENT_TYPES)


def test_phone_takeover_is_matched_from_the_new_device_login() -> None:
    p = Pipeline()
    reset, login, bind = _takeover(p, counter_resume=False)
    assert reset["chain_phone_takeover_step"] == 1
    assert login["chain_phone_takeover_completes"] is True  # step 3 = emit_from_step
    assert login["chain_phone_takeover_matched"] is False  # not before this event
    assert bind["chain_phone_takeover_matched"] is True
    assert bind["chain_phone_takeover_step"] == 3
    assert bind["chain_phone_takeover_started_minutes_ago"] == 30
    assert bind["chain_phone_takeover_completes"] is True  # step 4 on this event
    (match,) = p.matches
    assert (match.chain, match.step, match.completes) == ("phone_takeover", 4, True)
    assert match.event_ids == ("s", "pr", "l", "b")


def test_a_counter_line_resume_by_the_owner_kills_the_chain() -> None:
    p = Pipeline()
    _, _, bind = _takeover(p, counter_resume=True)
    assert bind["chain_phone_takeover_matched"] is False
    assert bind["chain_phone_takeover_step"] == 0


def test_phone_takeover_catches_simulated_thefts_before_money_leaves(tmp_path: Path) -> None:
    """Replay a small simulation: the chain is matched (or completed) on a phone-theft
    card binding or money event, and on few legitimate events. Six campaigns, so that the
    round-robin over the five theft tactics includes those with a carrier signal (the
    chain's first step)."""
    events_path, labels_path = tmp_path / "e.jsonl", tmp_path / "l.jsonl"
    simulate(
        SimConfig(users=600, days=10, seed=3, attack_rate=0.1, scenarios=("phone_theft_takeover",)),
        events_path,
        labels_path,
    )
    attack = {json.loads(line)["event_id"] for line in labels_path.open()}
    decode = EventDecoder(Tokenizer(b"test-key-of-16-bytes")).decode
    p = Pipeline()
    hits = {True: 0, False: 0}
    for line in events_path.open("rb"):
        event = decode(line)
        out = p.step(event)
        fired = out["chain_phone_takeover_matched"] or out["chain_phone_takeover_completes"]
        if fired and event.type in ("card_bind", "payment", "transfer", "loan_apply"):
            hits[event.event_id in attack] += 1
    assert hits[True] >= 1
    assert hits[False] <= hits[True]
