"""The outcomes service the engine and the API call: check an outcome against the
decision it references, file it, drop challenges a strong step-up cleared, and show a
decision with its lifecycle.

The engine calls `check` before it records an outcome event (a refusal records nothing),
`file` when it applies a recorded one (live or in recovery), and `uncleared` on the rule
hits of every decision of an account that has a clearance. A `not_fraud` label on a stop
releases the follow-on rules (`lifecycle.releases`) the same way, on every device.
"""

from collections.abc import Callable, Mapping
from typing import Any

from payguard.decision import Decision
from payguard.events import LABEL_TYPES, OUTCOME_TYPES, Event
from payguard.features import NEVER
from payguard.holds import HoldBook
from payguard.outcomes import lifecycle
from payguard.outcomes.book import OutcomeBook
from payguard.outcomes.lifecycle import ANY_DEVICE
from payguard.outcomes.types import LifecycleState, OutcomeError, OutcomeRecord
from payguard.policy.config import OutcomesConfig
from payguard.rules import RuleHit
from payguard.store import Recorder
from payguard.types import MINUTE_MS

CLEARABLE: frozenset[str] = frozenset({"challenge", "hold"})
"""Actions a clearance drops: asking the customer or making the money wait, never a stop."""
FILED_TYPES: frozenset[str] = OUTCOME_TYPES | LABEL_TYPES
"""Events filed in the book: the outcomes, and fraud reports and chargebacks as labels."""
HISTORY_RULESET = "warm-up"
"""The `ruleset` of the decision recorded for a history event (`engine.WARM_UP`): an
allow that payguard did not decide."""


class Outcomes:
    """Lifecycle rules over one `OutcomeBook` and the engine's event log."""

    def __init__(self, book: OutcomeBook, recorder: Recorder) -> None:
        self.book = book
        self._recorder = recorder
        self._deciding_history = False
        """True while `decide` runs for an outcome about history: the rules' challenges
        then stand even where a clearance would drop them, so a second strong step-up
        passed for the same cause extends its clearance (as it does live)."""

    def check(self, event: Event) -> None:
        """Raise OutcomeError (naming the field) unless the `challenge_result` or `label`
        fits the decision it references. Other types pass: a `fraud_report` or
        `chargeback` about an event payguard never saw keeps working as it always did."""
        if event.type not in OUTCOME_TYPES or event.ref_event_id is None:
            return
        stored = self._recorder.lookup(event.ref_event_id)
        decision = stored.decision if stored is not None else None
        challenged = None
        if decision is not None and event.type == "challenge_result":
            challenged = self._recorder.get_event(event.ref_event_id)
        try:
            lifecycle.check(event, decision, challenged)
        except OutcomeError as exc:
            exc.event_id = event.event_id
            raise

    def file(
        self,
        seq: int,
        event: Event,
        config: OutcomesConfig,
        referenced: Event | None = None,
        decide: Callable[[Event], Decision] | None = None,
    ) -> None:
        """File a recorded outcome or label against its decision (nothing if that decision
        is unknown, as for a report about an event payguard never saw). Idempotent.

        History (`payguard warm-up`) records no decisions, and a load's own events are not
        readable from the log until it commits: there `referenced` is the event pointed
        at, and a challenge result is filed against what `decide` (the engine's rules,
        reading the state as loaded so far) makes of it, so that a strong step-up passed
        before go-live clears the rules that would challenge that event now."""
        ref = event.ref_event_id
        if ref is None or self.book.is_filed(event.event_id):
            return
        stored = self._recorder.lookup(ref)
        decision = stored.decision if stored is not None else None
        if decision is None or decision.ruleset == HISTORY_RULESET:
            decision = self._past_decision(event, decision, referenced, decide)
            if decision is None:
                return
        current = self.book.state(ref) or lifecycle.initial_state(decision.action)
        record = lifecycle.record(event, current, decision.action)
        if event.type == "challenge_result":
            cleared = lifecycle.clearances(event, decision, config)
        elif event.type == "label" and config.released_by_label:
            stopped = referenced or self._recorder.get_event(ref)
            cleared = lifecycle.releases(event, decision, stopped, config)
        else:
            cleared = []
        self.book.file(ref, seq, record, current, cleared)

    def _past_decision(
        self,
        event: Event,
        recorded: Decision | None,
        referenced: Event | None,
        decide: Callable[[Event], Decision] | None,
    ) -> Decision | None:
        """What an outcome about history is filed against: for a challenge result, the
        decision the rules make of the referenced event now; else the recorded allow."""
        if referenced is None and recorded is None:
            return None
        if event.type == "challenge_result" and referenced is not None and decide is not None:
            self._deciding_history = True
            try:
                return decide(referenced)
            finally:
                self._deciding_history = False
        if recorded is not None:
            return recorded
        return Decision(
            event_id=event.ref_event_id or "",
            action="allow",
            score=0,
            reasons=[],
            ruleset=HISTORY_RULESET,
            model=None,
            latency_us=0,
        )

    def uncleared(
        self, event: Event, hits: list[RuleHit], features: Mapping[str, Any] | None = None
    ) -> list[RuleHit]:
        """The hits without the live challenges (and holds) a strong step-up cleared for
        this account and device, or a `not_fraud` label released on every device: the same
        rule does not ask the same customer again for the same cause until the clearance
        ends. Reviews and blocks are never cleared. (A step-up clears only the rules of a
        challenge it answered, so only a release ever names a hold rule.) A release covers
        only the stops up to its label and amounts up to the reviewed one: `features`
        (the decision's) tell when the account was last stopped."""
        user, device = event.user_id, event.device_id
        if user is None or not self.book.clears_any(user):
            return hits
        if self._deciding_history:
            return hits
        if device is None:
            device = ANY_DEVICE  # a device-less debit: only what holds on every device
        cleared = self.book.cleared
        last_stop = _last_stop_ms(event.ts, features)
        return [
            hit
            for hit in hits
            if not (
                hit.action in CLEARABLE
                and hit.status == "hit"
                and hit.mode == "live"
                and cleared(user, device, hit.rule, event.ts, event.amount, last_stop)
            )
        ]

    def state(self, decision: Decision, holds: HoldBook, now_ms: int) -> LifecycleState:
        """The decision's lifecycle state now: what its outcomes made it, and for a hold
        still `decided`, what the hold book says (revoked, or released, by expiry too)."""
        state = self.book.state(decision.event_id) or lifecycle.initial_state(decision.action)
        if state == "decided" and decision.action == "hold" and decision.hold:
            hold = holds.get(decision.hold.hold_id)
            if hold is not None:
                resolved = hold.as_of(now_ms).state
                if resolved == "revoked":
                    return "hold:revoked"
                if resolved == "released":
                    return "hold:released"
        return state

    def history(self, event_id: str) -> list[OutcomeRecord]:
        return self.book.history(event_id)


LAST_STOP = "minutes_since_stopped_by_user_7d"
"""The feature saying when the account was last stopped (what the follow-on rules read)."""


def _last_stop_ms(at_ms: int, features: Mapping[str, Any] | None) -> int | None:
    """The latest time the account's last stop can have been (minutes are whole, so up
    to a minute later than it was), or None when no stop is known or the decision does
    not read the feature (then a release covers it as it did before it was scoped)."""
    minutes = features.get(LAST_STOP) if features is not None else None
    if not isinstance(minutes, int) or minutes >= NEVER:
        return None
    return at_ms - minutes * MINUTE_MS
