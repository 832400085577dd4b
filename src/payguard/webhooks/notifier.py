"""The notifier: turns what happened into deliveries in the outbox, one per endpoint.

Two verbs are its interface, typed so that any room can call them:

- `decision_needs_attention(decision, event)`: a `review` (an analyst must look) or a
  `hold` (the owner or staff may revoke it) → `decision.review` / `decision.hold`.
- `outcome_changed(event_id, old_state, new_state, detail)`: a decision's lifecycle moved
  → `outcome.changed`. Today the engine calls it (through `hold_resolved`) when a hold is
  revoked or released; the decision lifecycle of issue 12 (challenge results, labels,
  review verdicts) connects its observer here.

It is also an engine listener (`engine.DecisionListener`): `recorded` is called for every
decision the engine records and `flush` when the engine flushes its event log, right
after the log's commit. Deliveries are queued in memory until then, so a webhook is
written immediately after the decision it reports is durable, never for a decision that
was not recorded (a failed request discards the queue). The outbox is a separate SQLite
file, not the event log's transaction: a crash in the instant between the two commits
loses that decision's webhooks (docs/webhooks.md, "Guarantees").
"""

import hashlib
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence

import msgspec

from payguard.decision import Decision
from payguard.events import Event
from payguard.holds import Hold
from payguard.webhooks.dispatcher import Clock, wall_clock_ms
from payguard.webhooks.outbox import NewDelivery, Outbox
from payguard.webhooks.payload import (
    DecisionData,
    DetailValue,
    OutcomeData,
    WebhookBody,
    WebhookType,
    decision_data,
    hold_detail,
    outcome_data,
)

log = logging.getLogger("payguard.webhooks")

_encode = msgspec.json.Encoder().encode
ATTENTION: Mapping[str, WebhookType] = {"review": "decision.review", "hold": "decision.hold"}
"""Actions that need someone, and the webhook type each one sends."""
HOLD_PLACED_STATE = "decided"
"""The lifecycle state of a hold decision before anyone resolves it."""


def delivery_id(type_: WebhookType, subject: str, url: str) -> str:
    """The same webhook about the same thing to the same endpoint always has the same
    id, so writing it twice (a decision re-recorded after a crash) keeps one delivery."""
    digest = hashlib.sha256(f"{type_}\x1f{subject}\x1f{url}".encode()).hexdigest()
    return f"whd_{digest[:32]}"


class WebhookNotifier:
    """Queues webhooks for `urls` and writes them to `outbox` at `flush`."""

    def __init__(
        self,
        outbox: Outbox,
        urls: Sequence[str],
        *,
        clock: Clock = wall_clock_ms,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.urls = tuple(urls)
        self.clock = clock
        self._on_written = on_written
        self._queued: list[NewDelivery] = []

    # -- the interface ---------------------------------------------------------------------

    def decision_needs_attention(self, decision: Decision, event: Event) -> None:
        """Queue a `decision.review` or `decision.hold` (ValueError for other actions)."""
        type_ = ATTENTION.get(decision.action)
        if type_ is None:
            raise ValueError(f"a {decision.action!r} decision needs nobody's attention")
        self._queue(type_, decision.event_id, decision.event_id, decision_data(event, decision))

    def outcome_changed(
        self, event_id: str, old_state: str, new_state: str, detail: Mapping[str, DetailValue]
    ) -> None:
        """Queue an `outcome.changed` for the decision of `event_id`. `detail` holds ids,
        tokens, amounts and times only (it is sent as it is)."""
        data = outcome_data(event_id, old_state, new_state, detail)
        self._queue("outcome.changed", f"{event_id}\x1f{new_state}", event_id, data)

    # -- as an engine listener -------------------------------------------------------------

    def recorded(self, event: Event, decision: Decision) -> None:
        if decision.action in ATTENTION:
            self.decision_needs_attention(decision, event)

    def hold_resolved(self, hold: Hold) -> None:
        """A hold was revoked or released (by its owner, staff, an owner's report or expiry)."""
        self.outcome_changed(
            hold.event_id, HOLD_PLACED_STATE, f"hold:{hold.state}", hold_detail(hold)
        )

    def on_outcome(self, event_id: str, old_state: str, new_state: str) -> None:
        """An outcome listener (payguard.outcomes): a challenge result or a review's
        verdict. Hold resolutions are skipped here: `hold_resolved` sends them with the
        hold's terms."""
        if not new_state.startswith("hold:"):
            self.outcome_changed(event_id, old_state, new_state, {})

    def flush(self) -> None:
        """Write the queued deliveries and wake the dispatcher. A failed write is logged
        and kept queued for the next flush: the decision is already recorded and answered,
        so failing its request now would only tell the client a falsehood."""
        if not self._queued:
            return
        try:
            self.outbox.write(self._queued)
        except sqlite3.Error:
            log.exception(
                "could not write %d webhook deliveries; retrying at the next flush",
                len(self._queued),
            )
            return
        self._queued.clear()
        if self._on_written is not None:
            self._on_written()

    def discard_pending(self) -> None:
        """Forget queued deliveries (their decisions were not recorded: a failed request)."""
        self._queued.clear()

    # -- internals -------------------------------------------------------------------------

    def _queue(
        self, type_: WebhookType, key: str, subject: str, data: DecisionData | OutcomeData
    ) -> None:
        created = self.clock()
        for url in self.urls:
            did = delivery_id(type_, key, url)
            body = _encode(WebhookBody(id=did, type=type_, created=created, data=data))
            self._queued.append(NewDelivery(did, type_, url, subject, body, created))
