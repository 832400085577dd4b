"""Decision listing and search (`GET /v1/decisions`): newest first, by account, action,
lifecycle state, rule and event-time range, a page at a time behind an opaque cursor.

The event log is scanned backwards from the cursor on its primary key, narrowed in SQL by
account, action and time, and by state and rule here. A scan stops after `max_scan`
records even if the page is not full, and hands back a cursor to go on from: a search for
something rare costs a bounded amount per request, never the whole log at once. Outcome
events themselves (`challenge_result`, `label`, reports, chargebacks) are not listed:
they appear in the history of the decision they reference.
"""

from collections.abc import Iterator

import msgspec

from payguard.decision import Decision
from payguard.events import Event
from payguard.holds import HoldBook
from payguard.outcomes.service import FILED_TYPES, Outcomes
from payguard.outcomes.types import LifecycleState, OutcomeRecord
from payguard.store import LogFilter, Recorder

MAX_SCAN = 50_000
"""Records one search request reads at most before answering with a cursor."""


class DecisionView(Decision, frozen=True):
    """A recorded decision with what payguard knows of it since: the event's type,
    account and time (epoch ms), its lifecycle `state` and the `outcomes` filed against
    it, oldest first. Every field of the decision is kept, so a client reading a
    `Decision` reads this too."""

    type: str = ""
    user_id: str | None = None
    ts: int = 0
    state: LifecycleState = "decided"
    outcomes: list[OutcomeRecord] = msgspec.field(default_factory=list)


class DecisionPage(msgspec.Struct):
    """One page, newest first; `next_cursor` (None at the end of the log) continues it."""

    decisions: list[DecisionView]
    next_cursor: str | None


class DecisionSearch(msgspec.Struct, frozen=True):
    """What to list. `state` matches a whole state (`challenge:passed`) or its stage
    (`challenge` for any challenge outcome); `rule` a rule a reason names; times are
    event times in epoch ms, `since` inclusive, `until` exclusive."""

    user_id: str | None = None
    action: str | None = None
    state: str | None = None
    rule: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 50
    before_seq: int | None = None


def view(
    event: Event, decision: Decision, outcomes: Outcomes, holds: HoldBook, now_ms: int
) -> DecisionView:
    """One decision with its lifecycle (the public form, without the explanation)."""
    public = decision.public()
    return DecisionView(
        **msgspec.structs.asdict(public),
        type=event.type,
        user_id=event.user_id,
        ts=event.ts,
        state=outcomes.state(decision, holds, now_ms),
        outcomes=outcomes.history(decision.event_id),
    )


def search(
    recorder: Recorder,
    outcomes: Outcomes,
    holds: HoldBook,
    query: DecisionSearch,
    now_ms: int,
    max_scan: int = MAX_SCAN,
) -> DecisionPage:
    """The page of decisions matching `query`, newest first (see the module docstring).
    A full page, or a scan cut at `max_scan`, hands back a cursor even if nothing older
    matches (the next page is then empty): finding out would scan the rest of the log."""
    found: list[DecisionView] = []
    for scanned, (seq, event, decision) in enumerate(_scan(recorder, query), start=1):
        if _rule_matches(decision, query.rule):
            shown = view(event, decision, outcomes, holds, now_ms)
            if query.state is None or _state_matches(shown.state, query.state):
                found.append(shown)
        if len(found) == query.limit or scanned == max_scan:
            return DecisionPage(found, str(seq) if seq > 1 else None)
    return DecisionPage(found, None)


def _scan(recorder: Recorder, query: DecisionSearch) -> Iterator[tuple[int, Event, Decision]]:
    filters = LogFilter(
        user_id=query.user_id,
        action=query.action,
        since_ms=query.since_ms,
        until_ms=query.until_ms,
        exclude_types=FILED_TYPES,
    )
    return recorder.newest(query.before_seq, filters)


def _rule_matches(decision: Decision, rule: str | None) -> bool:
    return rule is None or any(r.rule == rule for r in decision.reasons)


def _state_matches(state: str, wanted: str) -> bool:
    return state == wanted or state.startswith(wanted + ":")
