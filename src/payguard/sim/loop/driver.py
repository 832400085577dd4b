"""Run the simulated world against the in-process engine, one event at a time.

The world is planned exactly as the open-loop simulator plans it (same seed, same events,
same labels). Its events then go into a priority queue ordered by (time, sequence), and
the loop pops them one by one: each is encoded as contract-v1 JSON, decoded and decided by
the real `Engine.process` (what `payguard replay` does), and the actor behind it reacts to
the decision. A reaction is more events pushed into the queue: a challenge result, a retry
minutes or a day later, an owner's report of a held payment, a customer's "that was me".
An actor answering a challenge does nothing else on that account and device until the
answer is in (their next events wait for it). Events that can no longer happen are
skipped: the rest of a campaign that gave up, a refund or chargeback of money that never
left, a loan paid out on a refused application.

Event ids are assigned when an event is sent, in the order sent (`s<seed>-<rank>`), so the
same seed yields the same ids, decisions and report.
"""

import gc
import heapq
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from payguard.config import Settings
from payguard.decision import Decision
from payguard.engine import Engine, batch_gc
from payguard.events import Event, EventError
from payguard.features import FeatureState
from payguard.outcomes.lifecycle import STOPS
from payguard.policy.stepup import LINE_METHODS
from payguard.ruleset import Ruleset
from payguard.scenarios import SCENARIOS, default_can_pass
from payguard.sim.attacks import feedback, generate_attacks
from payguard.sim.config import SimConfig
from payguard.sim.legit import build_population, generate_legit
from payguard.sim.loop.actors import (
    Answer,
    Attacker,
    Customer,
    Tactic,
    smaller,
)
from payguard.sim.loop.analyst import CASE_SECONDS, Analyst, Verdict, line_vouches
from payguard.sim.loop.report import (
    FIRST_TRY,
    LARGEST_LOSSES,
    LOST_WAYS,
    NO_RULE,
    STAGES,
    AnalystLoop,
    CampaignLoss,
    LegitLoop,
    LoopReport,
    LostPath,
    ScenarioLoop,
)
from payguard.sim.population import User, make_device, make_merchants
from payguard.sim.world import DAY, HOUR, MINUTE, World, yuan
from payguard.sim.writer import Body, LabelInfo, TsFormatter
from payguard.types import LEAVING_TYPES

RETRIED: frozenset[str] = frozenset({"payment", "transfer", "withdrawal", "investment_buy"})
"""Money-out operations an actor retries when refused. Attack money is counted over the
backtest's `LEAVING_TYPES` (these and `loan_disburse`, a loan landing as the victim's debt,
which is not retried on its own: it follows its application)."""
OUTCOME_TYPE = "challenge_result"
"""The contract type a challenge's outcome is sent back as."""
HOLD_NOTICE = 0.8
"""Chance that the owner of a held attack payment reads the notice and reports it."""
CONFIRMS_OWN = 0.5
"""Chance that a customer told of their own held or reviewed operation says it was them."""
MAX_RETRY_DEPTH = 2
"""Adapted retries of one refused attack operation (a retry of a retry, no further)."""
CLEAR_HOURS = 72
"""The report's window when neither the config nor the ruleset (`policy.outcomes`) sets one."""
LOST_VIA: dict[str, str] = dict(zip(("allow", "challenge", "hold"), LOST_WAYS[:3], strict=True))
"""Decision action → how the attack money got through (the report's `lost_via`)."""


@dataclass(frozen=True, slots=True)
class LoopConfig:
    """One closed-loop run: the simulated world and how the report counts cleared causes.

    clear_hours: how long a passed strong step-up clears the rules that caused it, for the
        report's "repeat challenges for a cleared cause"; None: the ruleset's
        `policy.outcomes.clear_hours` (72 when that is 0, "never clear": the report then
        shows what clearing would have spared). The engine acts on its own setting; this
        only measures.
    retries: whether refused actors retry (off, the loop still answers challenges).
    analyst: whether an analyst resolves reviews (`loop.analyst`; off, a review stays open).
    """

    sim: SimConfig
    clear_hours: int | None = None
    retries: bool = True
    analyst: bool = True


@dataclass(slots=True)
class _Money:
    """One attack money attempt: its fate is settled when decided (or by a hold's end)."""

    seq: int
    ts: int
    fen: int
    origin: int
    """The planned event this attempt retries (itself for a first try)."""
    left: bool = False
    via: str = ""
    """How money that left got through: `LOST_VIA`."""
    attempt: int = 1
    tactic: str = FIRST_TRY
    """The retry tactic that made this attempt (`FIRST_TRY`: as planned)."""
    after_stop: bool = False
    """Whether the engine had stopped (reviewed or blocked) an event of the campaign before."""
    step: str = "-"
    """The challenge method the attacker passed (`-`: the decision was no challenge)."""
    rules: tuple[str, ...] = ()
    """The live rules behind the decision."""

    def path(self) -> tuple[str, str, str, int, str]:
        """(via, step, tactic, attempt, stage): the report's `LostPath` key but scenario."""
        return (self.via, self.step, self.tactic, self.attempt, STAGES[self.after_stop])


@dataclass(slots=True)
class _Campaign:
    scenario: str
    attacker: Attacker
    first_ts: int | None = None
    first_stop_ts: int | None = None
    """When the engine first reviewed or blocked an event of the campaign."""
    money: list[_Money] = field(default_factory=list)
    retries: int = 0
    tactics: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Case:
    """One analyst case: an actor's stops of one account that share a verdict."""

    opened: int
    posted: int
    """When its verdict is posted (the first stop's resolution)."""
    verdict: Verdict
    labels: list[int] = field(default_factory=list)
    """The queued `label` events of its stops."""
    released: list[_Money] = field(default_factory=list)
    """Attack money its wrong release let go."""


@dataclass(slots=True)
class _Legit:
    """Per-customer tallies for the report."""

    friction: set[str] = field(default_factory=set)
    challenges: Counter[str] = field(default_factory=Counter)
    abandoned: set[str] = field(default_factory=set)
    gave_up: set[str] = field(default_factory=set)
    repeats: int = 0
    repeat_customers: set[str] = field(default_factory=set)
    repeat_rules: Counter[str] = field(default_factory=Counter)
    money_events: int = 0
    money_refused: int = 0
    retries: int = 0
    cleared: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    """(user, device) → rule → until (epoch s): causes a strong step-up cleared."""


class ClosedLoop:
    """The world, the engine and the queue between them; `run()` once, then `report()`."""

    def __init__(
        self,
        cfg: LoopConfig,
        *,
        settings: Settings,
        features: FeatureState,
        ruleset: Ruleset,
    ) -> None:
        self.cfg = cfg
        sim = cfg.sim
        world_rng = random.Random(sim.seed)
        self.world = World.create(sim, world_rng, make_merchants(world_rng, sim.users))
        build_population(self.world)
        generate_legit(self.world)
        campaigns = generate_attacks(self.world)
        feedback(self.world, campaigns)
        self.rng = random.Random(f"closed-loop-{sim.seed}")
        self.engine = Engine.in_memory(settings, features, ruleset)
        outcomes = ruleset.policy.outcomes
        self.clear_hours = cfg.clear_hours or outcomes.clear_hours or CLEAR_HOURS
        self.strong: frozenset[str] = frozenset(outcomes.strong)
        """Step-ups whose pass clears a cause (the ruleset's, as the engine reads them)."""
        self.line_cleared: frozenset[str] = frozenset(outcomes.line_cleared)
        """Rules a passed SMS code or callback clears too (the ruleset's)."""
        self.users: dict[str, User] = {u.uid: u for u in self.world.users}
        self.customers: dict[str, Customer] = {}
        self.campaigns: dict[str, _Campaign] = {}
        self.legit = _Legit()
        self.planned = len(self.world.em.events)
        self.planned_fen: Counter[str] = _planned_money(self.world)
        self.queue: list[tuple[int, int]] = [(ts, seq) for ts, seq, _ in self.world.em.events]
        heapq.heapify(self.queue)
        self.ids: dict[int, str] = {}
        self.attempt: dict[int, tuple[int, int]] = {}
        """Retry seq → (planned seq it retries, attempt number from 2)."""
        self.tactic_of: dict[int, Tactic] = {}
        """Attack retry seq → how the attacker changed the refused operation."""
        self.refused: set[int] = set()
        """Operations that did not go through (refused, or a challenge not passed)."""
        self.held_attacks: dict[str, _Money] = {}
        self.outcomes: Counter[str] = Counter()
        self.refused_outcomes: Counter[str] = Counter()
        self.busy: dict[tuple[str, str], int] = {}
        """(account, device) → when its pending challenge is answered: the actor there
        does nothing else meanwhile, so their next planned events wait for the answer."""
        self.postponed = 0
        self.challenge_results: Counter[str] = Counter()
        self.skipped = 0
        self.sent = 0
        self.lines: list[bytes] | None = None
        self.label_lines: list[bytes] = []
        self._fmt = TsFormatter()
        self._encode = msgspec.json.Encoder().encode
        self.elapsed_s = 0.0
        self.analyst = Analyst(settings.utc_offset)
        self.desk_rng = random.Random(f"analyst-{sim.seed}")
        """The analyst's own draws: the actors' stream stays as it was without a desk."""
        self.reviews: Counter[str] = Counter()
        """Reviews opened and how the analyst resolved them (`actor/verdict`)."""
        self.review_waits: list[int] = []
        self.cases: dict[tuple[str, bool], _Case] = {}
        """(account, attack) → its latest case: one actor's stops of one account within a
        day, before the verdict is posted, are one case."""

    # -- the loop -------------------------------------------------------------------------

    def run(self, keep_events: bool = False) -> None:
        """Decide every queued event in time order, reacting as each decision comes back."""
        if keep_events:
            self.lines = []
        engine = self.engine
        flush_every = engine.settings.flush_every
        started = time.perf_counter()
        with batch_gc():
            for seq, body, ts in self._pop():
                try:
                    event = engine.decoder.decode(self._wire(seq, ts, body))
                    decision, _ = engine.process(event)
                except EventError:
                    if body["type"] not in _ANSWERS:
                        raise  # the world's own events are valid: a refusal is a bug
                    self.refused_outcomes[body["type"]] += 1
                    if self.lines is not None:
                        self.lines.pop()  # the file keeps what the engine took
                    continue
                self._react(seq, ts, body, event, decision)
                if self.sent % flush_every == 0:
                    engine.flush()
                    gc.collect(1)  # young generations only: see batch_gc
        self._settle_holds()
        self.elapsed_s = round(time.perf_counter() - started, 3)

    def close(self) -> None:
        self.engine.close()

    def _pop(self) -> Iterator[tuple[int, Body, int]]:
        events, labels, queue = self.world.em.events, self.world.em.labels, self.queue
        while queue:
            ts, seq = heapq.heappop(queue)
            body = events[seq][2]
            label = labels.get(seq)
            if label is not None and self._campaign(label).attacker.gave_up:
                self.skipped += 1
                continue
            ref = body.get("ref_event_id")
            if ref is not None and not self._can_refer(body["type"], ref):
                self.skipped += 1
                continue
            until = self._answering(body)
            if until is not None and ts <= until:
                heapq.heappush(queue, (until + 1, seq))  # after the challenge is answered
                self.postponed += 1
                continue
            yield seq, body, ts

    def _answering(self, body: Body) -> int | None:
        """Until when the actor on this event's account and device is busy answering a
        challenge (None: not answering one); answers themselves never wait."""
        device = body.get("device_id")
        if device is None or body["type"] in _ANSWERS:
            return None
        return self.busy.get((body.get("user_id") or "", device))

    def _can_refer(self, kind: str, ref: int) -> bool:
        """What an event refers to must have happened (and gone through, for `_NEEDS_DONE`)."""
        if ref not in self.ids:
            return False
        return kind not in _NEEDS_DONE or ref not in self.refused

    def _wire(self, seq: int, ts: int, body: Body) -> bytes:
        """The event as a client sends it, with its id assigned now (and kept if wanted)."""
        eid = f"s{self.cfg.sim.seed}-{self.sent:08d}"
        self.sent += 1
        self.ids[seq] = eid
        out: Body = {"event_id": eid, "type": None, "ts": self._fmt(ts)}
        out.update(body)
        ref = body.get("ref_event_id")
        if ref is not None:
            out["ref_event_id"] = self.ids[ref]
        raw = self._encode(out)
        if self.lines is not None:
            self.lines.append(raw)
            label = self.world.em.labels.get(seq)
            if label is not None:
                self.label_lines.append(self._encode(_label_line(eid, label)))
        return raw

    def _push(self, ts: int, body: Body, label: LabelInfo | None = None) -> int | None:
        """Queue a reaction at `ts` (dropped past the window's end); its sequence number."""
        if ts >= self.world.end_ts:
            return None
        em = self.world.em
        seq = em.emit(ts, body)
        if label is not None:
            em.labels[seq] = label
        heapq.heappush(self.queue, (ts, seq))
        return seq

    # -- reactions ------------------------------------------------------------------------

    def _react(self, seq: int, ts: int, body: Body, event: Event, decision: Decision) -> None:
        label = self.world.em.labels.get(seq)
        record: _Money | None = None
        if label is not None:
            record = self._attack(seq, ts, body, label, event, decision)
        elif event.user_id in self.users and event.type not in _ANSWERS:
            self._customer(seq, ts, body, event, decision)
        if decision.action in STOPS and self.cfg.analyst and event.type not in _ANSWERS:
            released = record if decision.action == "review" else None
            self._to_analyst(seq, ts, event, label, released)

    def _customer(self, seq: int, ts: int, body: Body, event: Event, decision: Decision) -> None:
        uid = event.user_id
        assert uid is not None
        legit = self.legit
        action = decision.action
        money = event.type in RETRIED
        legit.money_events += money
        if action == "allow":
            return
        legit.friction.add(uid)
        if action in ("hold", "review"):
            self._that_was_me(ts, body, seq)
        if action == "hold":
            return  # notified, it was them: the hold runs out and the money leaves
        answer: Answer | None = None
        if action == "challenge":
            answer = self._customer_challenge(seq, ts, uid, event, decision)
            if answer.outcome == "passed":
                return
        self.refused.add(seq)
        if not money:
            return
        legit.money_refused += 1
        origin, attempt = self.attempt.get(seq, (seq, 1))
        if self.cfg.retries and Customer.retries(attempt, self.rng):
            wait = (30 * MINUTE, 6 * HOUR) if answer is not None else (10 * MINUTE, 4 * HOUR)
            retry = self._push(ts + self.rng.randint(*wait), dict(body))
            if retry is not None:
                self.attempt[retry] = (origin, attempt + 1)
                legit.retries += 1
                return
        legit.gave_up.add(uid)

    def _customer_challenge(
        self, seq: int, ts: int, uid: str, event: Event, decision: Decision
    ) -> Answer:
        legit = self.legit
        offered = _offered(decision)
        rules = _rules(decision)
        key = (uid, event.device_id or "")
        cleared = legit.cleared.get(key, {})
        again = [r for r in rules if cleared.get(r, 0) > ts]
        if again:
            legit.repeats += 1
            legit.repeat_customers.add(uid)
            legit.repeat_rules.update(again)
        legit.challenges[uid] += 1
        answer = self._owner(uid).answer(offered, event.device_id, self.rng)
        if answer.outcome == "abandoned":
            legit.abandoned.add(uid)
        clears = self._clears(answer, rules)
        if clears:
            until = ts + self.clear_hours * HOUR
            legit.cleared.setdefault(key, {}).update(dict.fromkeys(clears, until))
        self._result(seq, ts, event, answer, "customer")
        return answer

    def _clears(self, answer: Answer, rules: list[str]) -> list[str]:
        """The rules a passed answer clears, as the engine reads them: all of them after a
        strong method, the ruleset's `line_cleared` after an SMS code or a callback."""
        if answer.outcome != "passed":
            return []
        if answer.method in self.strong:
            return rules
        if answer.method in LINE_METHODS:
            return [r for r in rules if r in self.line_cleared]
        return []

    def _attack(
        self, seq: int, ts: int, body: Body, label: LabelInfo, event: Event, decision: Decision
    ) -> "_Money | None":
        """React as the attacker; the attack money attempt this event is (None: no money)."""
        camp = self._campaign(label)
        if camp.first_ts is None:
            camp.first_ts = ts
        money = event.type in LEAVING_TYPES and event.amount is not None
        origin, attempt = self.attempt.get(seq, (seq, 1))
        record: _Money | None = None
        action = decision.action
        if money:
            assert event.amount is not None
            record = _Money(seq, ts, event.amount, origin, attempt=attempt)
            record.tactic = self.tactic_of.get(seq, FIRST_TRY)
            record.after_stop = camp.first_stop_ts is not None
            record.rules = tuple(_rules(decision))
            camp.money.append(record)
        if action in STOPS and camp.first_stop_ts is None:
            camp.first_stop_ts = ts
        passed = action in ("allow", "hold")
        if action == "challenge":
            answer = camp.attacker.answer(_offered(decision), _label_methods(label), self.rng)
            self._result(seq, ts, event, answer, "attacker")
            passed = answer.outcome == "passed"
            if passed and record is not None:
                record.step = answer.method or "-"
        if not passed:
            self.refused.add(seq)
        if record is None:
            return None
        if passed:
            record.left = True
            record.via = LOST_VIA[action]
            if action == "hold":
                self.held_attacks[event.event_id] = record  # settled at the end
                if not camp.attacker.owner_acts:
                    self._hold_notice(ts, event, record)
            return record
        if not camp.attacker.refused() or not self.cfg.retries:
            return record
        if attempt > MAX_RETRY_DEPTH or event.type not in RETRIED:
            return record
        self._adapt(camp, ts, body, label, event, origin, attempt)
        return record

    def _adapt(
        self,
        camp: _Campaign,
        ts: int,
        body: Body,
        label: LabelInfo,
        event: Event,
        origin: int,
        attempt: int,
    ) -> None:
        """Retry a refused attack operation another way (docs/simulator.md, "Closed loop")."""
        rng = self.rng
        victim = self.users.get(event.user_id or "")
        tried = camp.attacker.tried_cards.setdefault(event.user_id or "", set())
        card = body.get("card")
        if card is not None:
            tried.add(card["number"])
        spare = [c for c in victim.cards if c["number"] not in tried] if victim else []
        options: set[Tactic] = {"smaller_amount", "wait_out"}
        if spare and card is not None:
            options.add("another_card")
        if body.get("device_id") is not None and not camp.attacker.owner_acts:
            options.add("another_channel")
        tactic = camp.attacker.adapt(options, rng)
        if tactic is None:
            return
        retry = dict(body)
        when = ts + rng.randint(MINUTE, 15 * MINUTE)
        if tactic == "another_card":
            retry["card"] = rng.choice(spare)
        elif tactic == "smaller_amount":
            retry["amount"] = yuan(smaller(event.amount or 0, rng))
        elif tactic == "another_channel":
            device = make_device(rng, "web" if body.get("channel") != "web" else "emulator")
            retry.update(device_id=device.id, user_agent=device.ua, channel=device.channel)
        else:
            when = ts + rng.randint(DAY, DAY + 6 * HOUR)
        pushed = self._push(when, retry, label)
        if pushed is not None:
            self.attempt[pushed] = (origin, attempt + 1)
            self.tactic_of[pushed] = tactic
            camp.retries += 1
            camp.tactics[tactic] += 1

    def _hold_notice(self, ts: int, event: Event, record: _Money) -> None:
        """The owner is told about the held payment; most say at once it was not them (an
        owner who is in on it, or coached by the scammer, says nothing)."""
        victim = self.users.get(event.user_id or "")
        if victim is None or self.rng.random() >= HOLD_NOTICE:
            return
        device = victim.devices[0]
        body: Body = {
            "type": "fraud_report",
            "user_id": victim.uid,
            "device_id": device.id,
            "ip": victim.ips[0],
            "channel": device.channel,
            "attrs": {"reason": "unauthorized"},
            "ref_event_id": record.seq,
        }
        if self._push(ts + self.rng.randint(5 * MINUTE, 12 * HOUR), body) is not None:
            self.outcomes["fraud_report"] += 1

    def _to_analyst(
        self, seq: int, ts: int, event: Event, label: LabelInfo | None, record: "_Money | None"
    ) -> None:
        """Queue a stop (review or block) for the fraud desk: its `label` (source analyst)
        comes back after the queue's latency in working hours. A reviewed attack operation
        (`record`; None for a block, which was declined for good) that the analyst wrongly
        releases leaves with the money (`lost_via`: review released)."""
        self.reviews["opened"] += 1
        rng = self.desk_rng
        at = self.analyst.resolved_at(ts, rng)
        attack = label is not None
        vouched = label is None or line_vouches(label[1], label[2], _label_methods(label))
        case = self._case(event.user_id, ts, at, attack, vouched)
        verdict = case.verdict
        body: Body = {"type": "label", "ref_event_id": seq, "label": verdict, "source": "analyst"}
        if event.user_id is not None:
            body["user_id"] = event.user_id
        pushed = self._push(at, body)
        if pushed is None:
            self.reviews["past_end"] += 1
            return  # the window ends first: still open
        case.labels.append(pushed)
        self.outcomes["label"] += 1
        self.reviews[f"{'attack' if attack else 'honest'}/{verdict}"] += 1
        self.review_waits.append(at - ts)
        if attack and verdict == "not_fraud" and record is not None:
            record.left = True
            record.via = LOST_WAYS[3]
            case.released.append(record)

    def _case(self, user: str | None, ts: int, at: int, attack: bool, vouched: bool) -> _Case:
        """The analyst judges a case, not an operation: one actor's stops of the same
        account (the attacker's, or the owner's own) within `CASE_SECONDS` of the case's
        first, queued before its verdict is posted, share that verdict. A stop after the
        verdict (the account stopped again once released or confirmed) is new evidence and
        opens a new case; `at` is when this stop is resolved. Each attack stop that joins a
        case the desk is about to release is one more operation the person vouching must
        explain: the release holds only if that story checks out too (`_recheck`)."""
        key = (user, attack) if user is not None else None
        case = self.cases.get(key) if key is not None else None
        if case is not None and ts - case.opened < CASE_SECONDS and ts < case.posted:
            if attack and case.verdict == "not_fraud":
                self._recheck(case, vouched)
            return case
        case = _Case(ts, at, self.analyst.verdict(attack, self.desk_rng, vouched))
        if key is not None:
            self.cases[key] = case
        return case

    def _recheck(self, case: _Case, vouched: bool) -> None:
        """Draw the release again for a stop that joins a wrongly released attack case; if
        the story does not check out, the case is confirmed as fraud: its labels not yet
        sent say `fraud` and the money they had let go stays."""
        if self.analyst.verdict(True, self.desk_rng, vouched) == "not_fraud":
            return
        case.verdict = "fraud"
        events = self.world.em.events
        unsent = [seq for seq in case.labels if seq not in self.ids]
        for seq in unsent:
            events[seq][2]["label"] = "fraud"
        self.reviews["attack/not_fraud"] -= len(unsent)
        self.reviews["attack/fraud"] += len(unsent)
        refs = {events[seq][2]["ref_event_id"] for seq in unsent}
        for record in case.released:
            if record.seq in refs:
                record.left = False
                record.via = ""

    def _that_was_me(self, ts: int, body: Body, seq: int) -> None:
        """A customer told of a held or reviewed operation of theirs sometimes confirms it
        (a `label` not_fraud from the customer)."""
        if self.rng.random() >= CONFIRMS_OWN:
            return
        label: Body = {
            "type": "label",
            "user_id": body["user_id"],
            "ref_event_id": seq,
            "label": "not_fraud",
            "source": "customer",
        }
        if self._push(ts + self.rng.randint(5 * MINUTE, 2 * HOUR), label) is not None:
            self.outcomes["label"] += 1

    def _result(self, seq: int, ts: int, event: Event, answer: Answer, actor: str) -> None:
        """Count the challenge's outcome and send it back (when a method was tried on a device)."""
        method = answer.method or "none"
        self.challenge_results[f"{actor}/{method}/{answer.outcome}"] += 1
        if answer.method is None or event.device_id is None:
            return  # nothing tried, or a server-to-server debit: no device to answer on
        body: Body = {
            "type": OUTCOME_TYPE,
            "ref_event_id": seq,
            "method": answer.method,
            "outcome": answer.outcome,
        }
        if event.user_id is not None:
            body["user_id"] = event.user_id
        if event.device_id is not None:
            body["device_id"] = event.device_id
        answered = ts + self.rng.randint(10, 90)
        if self._push(answered, body) is not None:
            self.outcomes[OUTCOME_TYPE] += 1
            key = (event.user_id or "", event.device_id)
            self.busy[key] = max(self.busy.get(key, 0), answered)

    def _settle_holds(self) -> None:
        """Held attack money whose hold the owner's report revoked never left."""
        for hold in self.engine.holds.find(state="revoked", now_ms=_END_OF_TIME, limit=_ALL):
            record = self.held_attacks.get(hold.event_id)
            if record is not None:
                record.left = False

    # -- lookups --------------------------------------------------------------------------

    def _campaign(self, label: LabelInfo) -> _Campaign:
        camp = self.campaigns.get(label[0])
        if camp is None:
            attacker = Attacker.draw(label[0], label[1], label[2], self.rng)
            camp = self.campaigns[label[0]] = _Campaign(label[1], attacker)
        return camp

    def _owner(self, uid: str) -> Customer:
        """The customer behind an account of the population, drawn on first challenge."""
        customer = self.customers.get(uid)
        if customer is None:
            customer = self.customers[uid] = Customer.draw(self.users[uid], self.rng)
        return customer

    # -- the report -----------------------------------------------------------------------

    def report(self) -> LoopReport:
        sim = self.cfg.sim
        rows = [
            self._scenario(s)
            for s in SCENARIOS
            if any(c.scenario == s for c in self.campaigns.values())
        ]
        legit = self.legit
        with_friction = len(legit.friction)
        challenges = sum(legit.challenges.values())
        return LoopReport(
            seed=sim.seed,
            users=sim.users,
            days=sim.days,
            variants=sim.variants,
            ruleset=self.engine.ruleset.version,
            clear_hours=self.clear_hours,
            events=self.sent - sum(self.refused_outcomes.values()),
            planned_events=self.planned,
            skipped_events=self.skipped,
            postponed_events=self.postponed,
            outcome_events=dict(sorted(self.outcomes.items())),
            refused_outcomes=dict(sorted(self.refused_outcomes.items())),
            challenge_results=dict(sorted(self.challenge_results.items())),
            total=self._scenario(None),
            scenarios=rows,
            legit=LegitLoop(
                customers=len(self.users),
                customers_with_friction=with_friction,
                challenges=challenges,
                challenges_per_customer_with_friction=(
                    challenges / with_friction if with_friction else None
                ),
                max_challenges_one_customer=max(legit.challenges.values(), default=0),
                customers_challenged=len(legit.challenges),
                customers_abandoned=len(legit.abandoned),
                customers_gave_up=len(legit.gave_up),
                repeat_challenges_cleared=legit.repeats,
                customers_repeat_challenged=len(legit.repeat_customers),
                repeat_rules=dict(legit.repeat_rules.most_common()),
                money_events=legit.money_events,
                money_refused=legit.money_refused,
                retries=legit.retries,
            ),
            elapsed_s=self.elapsed_s,
            analyst=self._analyst_figures(),
            lost_paths=self._lost_paths(),
            largest_losses=self._largest_losses(),
        )

    def _lost_paths(self) -> list[LostPath]:
        """The lost money grouped by scenario and `_Money.path`, largest first."""
        fen: Counter[tuple[str, str, str, str, int, str]] = Counter()
        ops: Counter[tuple[str, str, str, str, int, str]] = Counter()
        rules: dict[tuple[str, str, str, str, int, str], Counter[str]] = {}
        for camp in self.campaigns.values():
            for m in camp.money:
                if not m.left:
                    continue
                key = (camp.scenario, *m.path())
                fen[key] += m.fen
                ops[key] += 1
                behind = rules.setdefault(key, Counter())
                for rule in m.rules or (NO_RULE,):
                    behind[rule] += m.fen
        order = sorted(fen, key=lambda k: (-fen[k], k))
        return [
            LostPath(*key, operations=ops[key], lost_fen=fen[key],
                     rules=dict(rules[key].most_common()))
            for key in order
        ]  # fmt: skip

    def _largest_losses(self) -> list[CampaignLoss]:
        """The `LARGEST_LOSSES` campaigns that lost most, largest first."""
        rows: list[CampaignLoss] = []
        for camp in self.campaigns.values():
            lost = [m for m in camp.money if m.left]
            if not lost:
                continue
            via: Counter[str] = Counter()
            for m in lost:
                via[m.via] += m.fen
            attacker = camp.attacker
            rows.append(
                CampaignLoss(
                    campaign=attacker.campaign,
                    scenario=camp.scenario,
                    variant=attacker.variant,
                    attempted_fen=sum(m.fen for m in camp.money if m.origin == m.seq),
                    lost_fen=sum(m.fen for m in lost),
                    lost_after_stop_fen=sum(m.fen for m in lost if m.after_stop),
                    lost_via=dict(via.most_common()),
                )
            )
        rows.sort(key=lambda c: (-c.lost_fen, c.campaign))
        return rows[:LARGEST_LOSSES]

    def _analyst_figures(self) -> AnalystLoop | None:
        if not self.cfg.analyst:
            return None
        r = self.reviews
        return AnalystLoop(
            reviews=r["opened"],
            resolved=len(self.review_waits),
            attack_fraud=r["attack/fraud"],
            attack_released=r["attack/not_fraud"],
            honest_released=r["honest/not_fraud"],
            honest_fraud=r["honest/fraud"],
            median_hours_to_resolve=_hours(_median(self.review_waits)),
        )

    def _scenario(self, scenario: str | None) -> ScenarioLoop:
        camps = [c for c in self.campaigns.values() if scenario is None or c.scenario == scenario]
        attempted = lost = with_retries = 0
        stops: list[int] = []
        tactics: Counter[str] = Counter()
        via: Counter[str] = Counter()
        with_money = stopped = 0
        for camp in camps:
            tactics.update(camp.tactics)
            for m in camp.money:
                if m.left:
                    via[m.via] += m.fen
            origins = {m.origin: m.fen for m in camp.money if m.origin == m.seq}
            attempted += sum(origins.values())
            with_retries += sum(m.fen for m in camp.money)
            lost += sum(m.fen for m in camp.money if m.left)
            if not camp.money:
                continue
            with_money += 1
            stop = _stop_ts(camp.money)
            if stop is not None and camp.first_ts is not None:
                stopped += 1
                stops.append(stop - camp.first_ts)
        return ScenarioLoop(
            scenario=scenario or "total",
            campaigns=len(camps),
            campaigns_with_money=with_money,
            campaigns_stopped=stopped,
            campaigns_gave_up=sum(c.attacker.gave_up for c in camps),
            planned_fen=sum(self.planned_fen[c.attacker.campaign] for c in camps),
            attempted_fen=attempted,
            attempted_with_retries_fen=with_retries,
            lost_fen=lost,
            lost_share=lost / attempted if attempted else None,
            retries_after_decline=sum(c.retries for c in camps),
            median_seconds_to_stop=_median(stops),
            retry_tactics=dict(sorted(tactics.items())),
            lost_via=dict(sorted(via.items())),
        )


_ANSWERS: frozenset[str] = frozenset({OUTCOME_TYPE, "label", "fraud_report", "chargeback"})
"""What actors send back about earlier decisions: not operations anyone reacts to again."""
_NEEDS_DONE: frozenset[str] = frozenset({"refund", "chargeback", "loan_disburse"})
"""Events that follow only an operation that went through: money back needs money gone,
a loan is paid out only on an application that was not refused."""
_END_OF_TIME = 2**62
_ALL = 2**62


def _planned_money(world: World) -> Counter[str]:
    """Campaign → the attack money its plan holds (what it would try if never refused)."""
    planned: Counter[str] = Counter()
    labels = world.em.labels
    for _, seq, body in world.em.events:
        label = labels.get(seq)
        if label is not None and body["type"] in LEAVING_TYPES and "amount" in body:
            planned[label[0]] += fen_of(body["amount"])
    return planned


def fen_of(amount: str) -> int:
    """The simulator's decimal-string amount (`"96.68"`, always two decimals) in fen."""
    whole, _, cents = amount.partition(".")
    return int(whole) * 100 + int(cents or 0)


def _stop_ts(money: list[_Money]) -> int | None:
    """The first refusal after the campaign's last loss (None: its last attempt was lost)."""
    ordered = sorted(money, key=lambda m: (m.ts, m.seq))
    last_lost = max((i for i, m in enumerate(ordered) if m.left), default=-1)
    after = ordered[last_lost + 1 :]
    return after[0].ts if after else None


def _median(values: list[int]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / HOUR, 2)


def _offered(decision: Decision) -> list[str]:
    return list(decision.challenge) if isinstance(decision.challenge, list) else []


def _rules(decision: Decision) -> list[str]:
    """The live rules behind a decision (its causes), policy and model reasons left out."""
    return [r.rule for r in decision.reasons if r.rule not in ("policy", "model")]


def _label_methods(label: LabelInfo) -> frozenset[str]:
    return frozenset(label[3]) if label[3] is not None else default_can_pass(label[1])


def _label_line(eid: str, label: LabelInfo) -> dict[str, Any]:
    line: dict[str, Any] = {
        "event_id": eid,
        "campaign": label[0],
        "scenario": label[1],
        "variant": label[2],
        "attack": True,
    }
    if label[3] is not None:
        line["can_pass"] = label[3]
    return line


def run_closed_loop(
    cfg: LoopConfig,
    *,
    settings: Settings,
    features: FeatureState,
    ruleset: Ruleset,
    events_out: Path | None = None,
    labels_out: Path | None = None,
) -> LoopReport:
    """Plan the world, run it against a fresh in-memory engine, report; optionally write
    the events the engine saw (and their labels) as JSON Lines, replayable as they are."""
    loop = ClosedLoop(cfg, settings=settings, features=features, ruleset=ruleset)
    try:
        loop.run(keep_events=events_out is not None)
    finally:
        loop.close()
    if events_out is not None and loop.lines is not None:
        events_out.write_bytes(b"\n".join(loop.lines) + b"\n")
        if labels_out is not None:
            labels_out.write_bytes(b"".join(line + b"\n" for line in loop.label_lines))
    return loop.report()
