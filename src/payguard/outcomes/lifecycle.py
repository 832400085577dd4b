"""The decision lifecycle as pure functions: which outcomes a decision accepts, the state
each one moves it to, and the causes a passed step-up clears (every cause after a strong
one; the `line_cleared` limits after an SMS code or a callback).

    decided ──challenge_result──▶ challenge:passed | challenge:failed | challenge:abandoned
    decided ──hold book────────▶ hold:revoked | hold:released   (read from the hold book)
    review:open ──label────────▶ review:resolved:fraud | review:resolved:not_fraud

A `not_fraud` label from an analyst or the bank on a review or block also releases the
ruleset's follow-on rules (`policy.outcomes.released_by_label`) for that account on every
device: the stop was wrong, so the freeze it set off ends (`releases`), for what the
reviewer saw (stops up to the label, amounts up to the reviewed one).

A `review` decision starts `review:open` (someone has to look); every other decision
starts `decided`. A label on a decision that is not a review is kept in its history but
moves nothing: a verdict on an allowed payment changes features (a fraud label counts
as a report), not what was decided.
"""

from payguard.decision import Decision
from payguard.events import Event, is_fraud_verdict
from payguard.outcomes.types import Clearance, LifecycleState, OutcomeError, OutcomeRecord
from payguard.policy.config import OutcomesConfig
from payguard.policy.stepup import LINE_METHODS
from payguard.types import HOUR_MS

NOT_RULES: frozenset[str] = frozenset({"policy", "model"})
"""Reason `rule` values that name no rule (score thresholds, the learned model's
factors): a step-up clears rules, not the model's view or a threshold."""
STOPS: frozenset[str] = frozenset({"review", "block"})
"""Decisions that stop an operation (and, through the `stopped` features, what follows it)."""
ANY_DEVICE = ""
"""The device of a clearance that holds on every device (no client device id is empty)."""
_REPORT_SOURCES: dict[str, str] = {"fraud_report": "customer", "chargeback": "chargeback"}
"""The `source` a fraud report or chargeback files its `fraud` label with."""


def initial_state(action: str) -> LifecycleState:
    """The state of a decision no outcome has touched yet."""
    return "review:open" if action == "review" else "decided"


def check(event: Event, decision: Decision | None, challenged: Event | None) -> None:
    """Raise OutcomeError unless `event` (a `challenge_result` or `label`) fits the decision
    it references: a label needs a recorded event; a challenge result needs a challenge of
    the same account that offered its method. `challenged` is the referenced event."""
    if decision is None:
        raise OutcomeError("ref_event_id", "no decision is recorded for this event_id")
    if event.type != "challenge_result":
        return
    if decision.action != "challenge":
        raise OutcomeError("ref_event_id", f"the decision was `{decision.action}`, not a challenge")
    if challenged is not None and challenged.user_id != event.user_id:
        raise OutcomeError("user_id", "not the account of the challenged event")
    offered = decision.challenge if isinstance(decision.challenge, list) else []
    if event.method not in offered:
        listed = ", ".join(offered) or "none"
        raise OutcomeError("method", f"`{event.method}` was not offered (offered: {listed})")


def record(event: Event, current: LifecycleState, action: str) -> OutcomeRecord:
    """The outcome as filed against a decision of `action` now in state `current`."""
    if event.type == "challenge_result":
        state: LifecycleState = _challenge_state(event.outcome)
        return OutcomeRecord(
            event_id=event.event_id,
            type=event.type,
            ts=event.ts,
            state=state,
            method=event.method,
            outcome=event.outcome,
            device_id=event.device_id,
        )
    verdict = "fraud" if is_fraud_verdict(event) else "not_fraud"
    if action == "review":
        state = "review:resolved:fraud" if verdict == "fraud" else "review:resolved:not_fraud"
    else:
        state = current
    return OutcomeRecord(
        event_id=event.event_id,
        type=event.type,
        ts=event.ts,
        state=state,
        label=verdict,
        source=event.source or _REPORT_SOURCES.get(event.type),
        scenario=event.scenario,
    )


def clearances(event: Event, decision: Decision, config: OutcomesConfig) -> list[Clearance]:
    """The causes a challenge result clears, for the account and the device that passed,
    for `clear_hours` from the result. A strong method (config.strong) clears every rule
    the challenged decision names. A line method (an SMS code, a callback) clears only
    the rules of `config.line_cleared` (the cumulative limits, whose cause is the amount):
    it proves the line, which the other causes of a challenge (a SIM swap, a new device)
    put in doubt in the first place. Nothing for a result that did not pass."""
    if (
        event.outcome != "passed"
        or config.clear_hours == 0
        or event.user_id is None
        or event.device_id is None
    ):
        return []
    rules = dict.fromkeys(r.rule for r in decision.reasons if r.rule not in NOT_RULES)
    if event.method not in config.strong:
        if event.method not in LINE_METHODS:
            return []
        rules = {rule: None for rule in rules if rule in config.line_cleared}
    until = event.ts + config.clear_hours * HOUR_MS
    return [
        Clearance(event.user_id, event.device_id, rule, until, event.event_id) for rule in rules
    ]


def releases(
    event: Event, decision: Decision, stopped: Event | None, config: OutcomesConfig
) -> list[Clearance]:
    """The follow-on rules a `not_fraud` label lifts: `config.released_by_label`, for the
    stopped account (the referenced event's, `stopped`) on every device (`ANY_DEVICE`),
    for `clear_hours` from the label. Only a label on a stop (review or block) from one of
    `config.release_sources`: the stop was wrong, so what it set off is lifted too.

    Scoped to what the reviewer saw: the stops up to the label (a stop after it, which
    nobody has looked at, sets the follow-on off again) and amounts up to the reviewed
    operation's (a larger one is not what was judged). A verdict on one payment does not
    open the account to every other cause and amount for days. A `fraud` label keeps the
    stop; a label on an allowed payment has nothing to lift."""
    account = stopped.user_id if stopped is not None else None
    if (
        event.type != "label"
        or event.label != "not_fraud"
        or event.source not in config.release_sources
        or decision.action not in STOPS
        or account is None
        or config.clear_hours == 0
    ):
        return []
    until = event.ts + config.clear_hours * HOUR_MS
    band = stopped.amount if stopped is not None else None
    return [
        Clearance(account, ANY_DEVICE, rule, until, event.event_id, event.ts, band)
        for rule in dict.fromkeys(config.released_by_label)
    ]


def _challenge_state(outcome: str | None) -> LifecycleState:
    if outcome == "passed":
        return "challenge:passed"
    if outcome == "failed":
        return "challenge:failed"
    return "challenge:abandoned"
