"""Backtest arithmetic: from decided events and attack labels to the report's numbers.

Pure (no I/O, no engine), so every number in the report can be checked by hand on a small
file. The semantics are the issue's, written down in docs/backtest.md:

* a campaign is **stopped** at its first event that is blocked, sent to review, held and
  then revoked before its release, or challenged with only methods that scenario's attacker
  cannot pass; money events from that event on count as stopped, earlier ones are lost;
* **money** is money that leaves the customer: `LEAVING_TYPES`, amounts in integer fen;
* events without a label line are **legitimate**.
"""

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate

import msgspec

from payguard.scenarios import ATTACKER_CAN_PASS, READ_OUT_ONLY, SCENARIOS
from payguard.types import ACTIONS, CHALLENGE_METHODS, DAY_MS, LEAVING_TYPES

FRICTION: tuple[str, ...] = ("challenge", "hold", "review", "block")
STOP_KINDS: tuple[str, ...] = ("block", "review", "revoked hold", "challenge")
"""How a campaign was stopped, in the report's order."""
SCORE_BUCKETS: tuple[tuple[int, int], ...] = (
    (0, 0),
    (1, 9),
    *((lo, lo + 9) for lo in range(10, 100, 10)),
    (100, 100),
)
COLD_START_DAYS = 2
STEADY_FROM_DAY = 7
"""Cold start vs steady state: the first two days of a fresh engine against the days from
the second week on (docs/backtest.md)."""
POLICY_PREFIX = "policy:"
"""DecidedEvent.rules entries for policy reasons (SCORE_THRESHOLD, NO_TRUSTED_CHALLENGE)."""


class Label(msgspec.Struct, frozen=True):
    """One label line, minus its event_id (the key it is stored under)."""

    campaign: str
    scenario: str
    victim_reads_otp: bool = False
    can_pass: frozenset[str] | None = None
    """The label line's own `can_pass` (this variant's attacker); None: scenario default."""


class DecidedEvent(msgspec.Struct, frozen=True):
    """One decided event, reduced to what the arithmetic needs (no PII)."""

    event_id: str
    ts_ms: int
    type: str
    action: str
    score: int
    amount_fen: int = 0
    user_id: str | None = None
    challenge: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    """Live rules in the reasons, plus `policy:<code>` for policy reasons."""
    shadow: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    revoked: bool = False
    """A held event whose hold was revoked before its release (the money never left)."""
    verdict: str | None = None
    """The latest `label` (or fraud report, chargeback) in the stream about this event:
    `fraud` or `not_fraud`, what a deployment learns; None if none came."""


class RuleInfo(msgspec.Struct, frozen=True):
    """What a rule would do on its own: from the ruleset, not from any one decision."""

    id: str
    mode: str
    action: str
    challenge: tuple[str, ...] = ()


class CampaignResult(msgspec.Struct, frozen=True):
    campaign: str
    scenario: str
    events: int
    money_events: int
    money_fen: int
    stopped_money_fen: int
    own_decision_stopped_fen: int
    """Money on events that were themselves stopped (no carry-over from earlier stops)."""
    loss_fen: int
    stopped: bool
    stopped_before_money: bool
    stop_event_id: str | None = None
    stop_type: str | None = None
    stop_action: str | None = None
    stop_rules: tuple[str, ...] = ()
    stop_challenge: tuple[str, ...] = ()
    """The methods offered at the stop, when a challenge stopped the campaign."""
    events_to_stop: int | None = None
    seconds_to_stop: float | None = None


class ScenarioResult(msgspec.Struct, frozen=True):
    scenario: str
    campaigns: int
    campaigns_with_money: int
    campaigns_stopped: int
    stopped_before_money: int
    stopped_before_money_share: float | None
    money_fen: int
    stopped_money_fen: int
    money_stopped_share: float | None
    own_decision_stopped_fen: int
    loss_fen: int
    median_seconds_to_stop: float | None
    median_events_to_stop: float | None
    challenged_events: int = 0
    """Attack events challenged (whatever the outcome)."""
    offered: dict[str, int] = msgspec.field(default_factory=dict)
    """Challenge method → attack events on which it was offered."""
    stopped_by: dict[str, int] = msgspec.field(default_factory=dict)
    """`STOP_KINDS` → campaigns stopped that way."""
    stopped_by_sms_otp: int = 0
    """Campaigns whose stop was a challenge offering `sms_otp` (an attacker who cannot pass
    the SMS code, e.g. a stuffing victim who does not read it out)."""


class LegitResult(msgspec.Struct, frozen=True):
    events: int
    money_events: int
    actions: dict[str, int]
    money_actions: dict[str, int]
    money_fen: int
    money_fen_by_action: dict[str, int]
    customers: int
    customers_with_friction: int
    customers_with_strong_friction: int = 0
    """Customers with friction beyond a routine SMS code: held, reviewed, blocked, or
    challenged without `sms_otp` among the offered methods."""
    daily_friction: list[tuple[int, int]] = msgspec.field(default_factory=list)
    """Per day since the first legitimate money event: (money events with any friction,
    money events)."""
    cold_start_friction: float | None = None
    """Friction share of legitimate money events on the first `COLD_START_DAYS` days."""
    steady_friction: float | None = None
    """The same share from day `STEADY_FROM_DAY` on (the engine's state has a week of
    history); None when the period is shorter."""


class RuleResult(msgspec.Struct, frozen=True):
    rule: str
    mode: str
    action: str
    hits: int
    attack_hits: int
    legit_hits: int
    precision: float | None
    recall: float | None
    """Share of all attack events this rule hit."""
    campaigns_hit: int
    money_stopped_alone_fen: int | None
    """Attack money this rule would stop if it were the only rule (None for policy rows)."""
    money_stopped_alone_share: float | None
    errors: int
    labelled_fraud: int = 0
    """Hits whose event a later label (or report, chargeback) in the stream called fraud."""
    labelled_not_fraud: int = 0
    """Hits a later `not_fraud` label cleared (an analyst's or a customer's "that was me")."""
    labelled_precision: float | None = None
    """`labelled_fraud / (labelled_fraud + labelled_not_fraud)`: the rule's precision as
    the verdicts that came back tell it (None without any), beside `precision`, which
    reads the simulator's ground truth."""


class ScoreHistogram(msgspec.Struct, frozen=True):
    buckets: list[str]
    attack: list[int]
    legit: list[int]


class Summary(msgspec.Struct, frozen=True):
    """Everything the terminal, HTML and JSON reports show."""

    ruleset: str
    events: int
    attack_events: int
    legit_events: int
    scenarios: list[ScenarioResult]
    total: ScenarioResult
    legit: LegitResult
    rules: list[RuleResult]
    scores: ScoreHistogram
    campaigns: list[CampaignResult]
    repeats: int = 0
    elapsed_s: float = 0.0


def share(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to divide (shown as a dash)."""
    return part / whole if whole else None


def is_money(event_type: str) -> bool:
    return event_type in LEAVING_TYPES


def passable(label: Label) -> frozenset[str]:
    """Challenge methods this event's attacker passes: the label's own `can_pass` when it
    has one, else the scenario's; unknown scenarios pass everything, so a challenge never
    counts as a stop for an attacker we know nothing about."""
    if label.can_pass is not None:
        return label.can_pass
    methods = ATTACKER_CAN_PASS.get(label.scenario, frozenset(CHALLENGE_METHODS))
    if label.victim_reads_otp:
        return methods
    return methods - READ_OUT_ONLY.get(label.scenario, frozenset())


def stops(
    action: str, challenge: Iterable[str], can_pass: frozenset[str], revoked: bool = False
) -> bool:
    """Blocked, reviewed, held and revoked, or challenged with no method the attacker
    can pass."""
    if action in ("block", "review"):
        return True
    if action == "hold":
        return revoked
    return action == "challenge" and not can_pass.intersection(challenge)


def stop_kind(action: str) -> str:
    return "revoked hold" if action == "hold" else action


def score(
    outcomes: Sequence[DecidedEvent],
    labels: Mapping[str, Label],
    rules: Sequence[RuleInfo],
    ruleset: str = "",
) -> Summary:
    """All report numbers for outcomes in decision order; labels keyed by event_id."""
    chains: dict[str, list[tuple[DecidedEvent, Label]]] = {}
    legit: list[DecidedEvent] = []
    for outcome in outcomes:
        label = labels.get(outcome.event_id)
        if label is None:
            legit.append(outcome)
        else:
            chains.setdefault(label.campaign, []).append((outcome, label))
    campaigns = [_campaign(cid, chain) for cid, chain in chains.items()]
    scenarios = [
        _scenario(s, [c for c in campaigns if c.scenario == s], _challenged(chains, s))
        for s in _order(chains)
    ]
    attack_events = len(outcomes) - len(legit)
    return Summary(
        ruleset=ruleset,
        events=len(outcomes),
        attack_events=attack_events,
        legit_events=len(legit),
        scenarios=scenarios,
        total=_scenario("all scenarios", campaigns, _challenged(chains, None)),
        legit=_legit(legit),
        rules=_rules(outcomes, labels, chains, rules, attack_events),
        scores=_histogram(outcomes, labels),
        campaigns=sorted(campaigns, key=lambda c: (-c.loss_fen, c.campaign)),
    )


def _order(chains: Mapping[str, list[tuple[DecidedEvent, Label]]]) -> list[str]:
    present = {chain[0][1].scenario for chain in chains.values()}
    return [s for s in SCENARIOS if s in present] + sorted(present - set(SCENARIOS))


def _stop_index(chain: Sequence[tuple[DecidedEvent, Label]]) -> int | None:
    for i, (o, label) in enumerate(chain):
        if stops(o.action, o.challenge, passable(label), o.revoked):
            return i
    return None


def _campaign(cid: str, chain: Sequence[tuple[DecidedEvent, Label]]) -> CampaignResult:
    stop = _stop_index(chain)
    money = [(i, o.amount_fen) for i, (o, _) in enumerate(chain) if is_money(o.type)]
    total = sum(fen for _, fen in money)
    stopped = sum(fen for i, fen in money if stop is not None and i >= stop)
    own = sum(
        o.amount_fen
        for o, label in chain
        if is_money(o.type) and stops(o.action, o.challenge, passable(label), o.revoked)
    )
    result = CampaignResult(
        campaign=cid,
        scenario=chain[0][1].scenario,
        events=len(chain),
        money_events=len(money),
        money_fen=total,
        stopped_money_fen=stopped,
        own_decision_stopped_fen=own,
        loss_fen=total - stopped,
        stopped=stop is not None,
        stopped_before_money=bool(money) and stop is not None and stop <= money[0][0],
    )
    if stop is None:
        return result
    hit = chain[stop][0]
    return msgspec.structs.replace(
        result,
        stop_event_id=hit.event_id,
        stop_type=hit.type,
        stop_action=hit.action,
        stop_rules=hit.rules,
        stop_challenge=hit.challenge,
        events_to_stop=stop + 1,
        seconds_to_stop=(hit.ts_ms - chain[0][0].ts_ms) / 1000,
    )


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _challenged(
    chains: Mapping[str, Sequence[tuple[DecidedEvent, Label]]], scenario: str | None
) -> list[DecidedEvent]:
    """The challenged attack events of one scenario (None: of all)."""
    return [
        o
        for chain in chains.values()
        if scenario is None or chain[0][1].scenario == scenario
        for o, _ in chain
        if o.action == "challenge"
    ]


def _scenario(
    name: str, campaigns: Sequence[CampaignResult], challenged: Sequence[DecidedEvent]
) -> ScenarioResult:
    with_money = [c for c in campaigns if c.money_events]
    offered = Counter(m for o in challenged for m in o.challenge)
    kinds = Counter(stop_kind(c.stop_action) for c in campaigns if c.stop_action is not None)
    before = sum(c.stopped_before_money for c in with_money)
    money = sum(c.money_fen for c in campaigns)
    stopped = sum(c.stopped_money_fen for c in campaigns)
    return ScenarioResult(
        scenario=name,
        campaigns=len(campaigns),
        campaigns_with_money=len(with_money),
        campaigns_stopped=sum(c.stopped for c in campaigns),
        stopped_before_money=before,
        stopped_before_money_share=share(before, len(with_money)),
        money_fen=money,
        stopped_money_fen=stopped,
        money_stopped_share=share(stopped, money),
        own_decision_stopped_fen=sum(c.own_decision_stopped_fen for c in campaigns),
        loss_fen=money - stopped,
        median_seconds_to_stop=_median(
            [c.seconds_to_stop for c in campaigns if c.seconds_to_stop is not None]
        ),
        median_events_to_stop=_median(
            [float(c.events_to_stop) for c in campaigns if c.events_to_stop is not None]
        ),
        challenged_events=len(challenged),
        offered={m: offered[m] for m in CHALLENGE_METHODS if offered[m]},
        stopped_by={k: kinds[k] for k in STOP_KINDS},
        stopped_by_sms_otp=sum("sms_otp" in c.stop_challenge for c in campaigns),
    )


def _legit(events: Sequence[DecidedEvent]) -> LegitResult:
    money = [o for o in events if is_money(o.type)]
    by_action: Counter[str] = Counter()
    for o in money:
        by_action[o.action] += o.amount_fen
    customers = {o.user_id for o in events if o.user_id is not None}
    friction = {o.user_id for o in events if o.user_id is not None and o.action != "allow"}
    strong = {o.user_id for o in events if o.user_id is not None and beyond_sms(o)}
    daily = _daily_friction(money, min((o.ts_ms for o in money), default=0))
    return LegitResult(
        events=len(events),
        money_events=len(money),
        actions=_per_action(Counter(o.action for o in events)),
        money_actions=_per_action(Counter(o.action for o in money)),
        money_fen=sum(o.amount_fen for o in money),
        money_fen_by_action=_per_action(by_action),
        customers=len(customers),
        customers_with_friction=len(friction),
        customers_with_strong_friction=len(strong),
        daily_friction=daily,
        cold_start_friction=pooled(daily[:COLD_START_DAYS]),
        steady_friction=pooled(daily[STEADY_FROM_DAY:]),
    )


def beyond_sms(outcome: DecidedEvent) -> bool:
    """Friction a customer cannot clear with the routine SMS code they already use."""
    if outcome.action == "allow":
        return False
    return outcome.action != "challenge" or "sms_otp" not in outcome.challenge


def _daily_friction(money: Sequence[DecidedEvent], start_ms: int) -> list[tuple[int, int]]:
    """(money events with friction, money events) per day since `start_ms`."""
    days: list[tuple[int, int]] = []
    for o in money:
        day = max(0, (o.ts_ms - start_ms) // DAY_MS)
        while len(days) <= day:
            days.append((0, 0))
        hit, total = days[day]
        days[day] = (hit + (o.action != "allow"), total + 1)
    return days


def pooled(days: Sequence[tuple[int, int]]) -> float | None:
    """Friction share over several days' (friction, total) counts."""
    return share(sum(h for h, _ in days), sum(t for _, t in days))


def _per_action(counts: Counter[str]) -> dict[str, int]:
    return {action: counts.get(action, 0) for action in ACTIONS}


def _rules(
    outcomes: Sequence[DecidedEvent],
    labels: Mapping[str, Label],
    chains: Mapping[str, Sequence[tuple[DecidedEvent, Label]]],
    rules: Sequence[RuleInfo],
    attack_events: int,
) -> list[RuleResult]:
    hits: Counter[str] = Counter()
    attack: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    verdicts: dict[str | None, Counter[str]] = {"fraud": Counter(), "not_fraud": Counter()}
    campaigns: dict[str, set[str]] = {}
    for o in outcomes:
        label = labels.get(o.event_id)
        for rule in (*o.rules, *o.shadow):
            hits[rule] += 1
            if label is not None:
                attack[rule] += 1
                campaigns.setdefault(rule, set()).add(label.campaign)
            if o.verdict is not None:
                verdicts[o.verdict][rule] += 1
        errors.update(o.errors)
    fraud, cleared = verdicts["fraud"], verdicts["not_fraud"]
    alone = _money_alone(chains, rules)
    total_money = sum(
        o.amount_fen for chain in chains.values() for o, _ in chain if is_money(o.type)
    )
    known = [*rules, *_policy_rows(hits, {r.id for r in rules})]
    return [
        RuleResult(
            rule=r.id,
            mode=r.mode,
            action=r.action,
            hits=hits[r.id],
            attack_hits=attack[r.id],
            legit_hits=hits[r.id] - attack[r.id],
            precision=share(attack[r.id], hits[r.id]),
            recall=share(attack[r.id], attack_events),
            campaigns_hit=len(campaigns.get(r.id, ())),
            money_stopped_alone_fen=alone.get(r.id),
            money_stopped_alone_share=(share(alone[r.id], total_money) if r.id in alone else None),
            errors=errors[r.id],
            labelled_fraud=fraud[r.id],
            labelled_not_fraud=cleared[r.id],
            labelled_precision=share(fraud[r.id], fraud[r.id] + cleared[r.id]),
        )
        for r in known
    ]


def _policy_rows(hits: Counter[str], rule_ids: set[str]) -> list[RuleInfo]:
    """Policy reasons (and any reason the ruleset does not name) get rows of their own."""
    extra = sorted(r for r in hits if r not in rule_ids)
    return [RuleInfo(id=r, mode="policy", action="-") for r in extra]


def _money_alone(
    chains: Mapping[str, Sequence[tuple[DecidedEvent, Label]]], rules: Sequence[RuleInfo]
) -> dict[str, int]:
    """Per rule: attack money from the first event in each campaign where the rule hit and
    its own action would stop that attacker, to the end of the campaign."""
    alone = {r.id: 0 for r in rules}
    by_id = {r.id: r for r in rules}
    for chain in chains.values():
        money = [o.amount_fen if is_money(o.type) else 0 for o, _ in chain]
        from_here = list(accumulate(reversed(money)))[::-1]
        first: dict[str, int] = {}
        for i, (o, label) in enumerate(chain):
            for rid in (*o.rules, *o.shadow):
                rule = by_id.get(rid)
                if rule is None or rid in first:
                    continue
                # a hold stops on its own only where this event's hold was revoked
                if stops(rule.action, rule.challenge, passable(label), o.revoked):
                    first[rid] = i
        for rid, i in first.items():
            alone[rid] += from_here[i]
    return alone


def _bucket(value: int) -> int:
    for i, (lo, hi) in enumerate(SCORE_BUCKETS):
        if lo <= value <= hi:
            return i
    return len(SCORE_BUCKETS) - 1


def _histogram(outcomes: Sequence[DecidedEvent], labels: Mapping[str, Label]) -> ScoreHistogram:
    attack = [0] * len(SCORE_BUCKETS)
    legit = [0] * len(SCORE_BUCKETS)
    for o in outcomes:
        (attack if o.event_id in labels else legit)[_bucket(o.score)] += 1
    names = [str(lo) if lo == hi else f"{lo}–{hi}" for lo, hi in SCORE_BUCKETS]
    return ScoreHistogram(buckets=names, attack=attack, legit=legit)
