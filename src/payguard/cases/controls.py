"""Analysts' controls on one entity, applied on the decision path (rules.EntityControls):
a block, a strong step-up required on the next money-out event, a rule snoozed.

They are kept in the case store (`case_controls`) and mirrored here in memory, so `adjust`
costs a few dict lookups per event and a change is seen by the next event. A control adds
a hit of its own (rule `case_block` / `case_step_up`), so the decision's reasons say an
analyst did it; a snoozed rule's hit is dropped, for that entity only, until it ends.
"""

from collections.abc import Iterable
from typing import Final

from payguard.cases.store import Control
from payguard.events import Event
from payguard.rules import RuleHit
from payguard.types import MONEY_OUT_TYPES, Action, ChallengeMethod

BLOCK_RULE: Final = "case_block"
STEP_UP_RULE: Final = "case_step_up"


def entities_of(event: Event) -> list[tuple[str, str]]:
    """The (kind, id) of every case entity the event names."""
    found: list[tuple[str, str]] = []
    if event.user_id is not None:
        found.append(("account", event.user_id))
    if event.card is not None:
        found.append(("card", event.card.token))
    if event.device_id is not None:
        found.append(("device", event.device_id))
    if event.merchant is not None:
        found.append(("merchant", event.merchant.id))
    return found


class ControlIndex:
    """The live controls by entity; `adjust` is the engine's EntityControls."""

    def __init__(self, controls: Iterable[Control], step_up_methods: list[ChallengeMethod]):
        self._by_entity: dict[tuple[str, str], dict[str, Control]] = {}
        self._methods = tuple(step_up_methods)
        for control in controls:
            self.add(control)

    def add(self, control: Control) -> None:
        key = (control.entity_kind, control.entity_id)
        self._by_entity.setdefault(key, {})[control.control_id] = control

    def remove(self, control: Control) -> None:
        found = self._by_entity.get((control.entity_kind, control.entity_id))
        if found is not None:
            found.pop(control.control_id, None)
            if not found:
                del self._by_entity[(control.entity_kind, control.entity_id)]

    def of(self, entity_kind: str, entity_id: str) -> list[Control]:
        return list(self._by_entity.get((entity_kind, entity_id), {}).values())

    def adjust(self, event: Event, hits: list[RuleHit]) -> list[RuleHit]:
        if not self._by_entity:
            return hits
        live = [
            c
            for key in entities_of(event)
            for c in self._by_entity.get(key, {}).values()
            if c.until_ts is None or event.ts < c.until_ts
        ]
        if not live:
            return hits
        snoozed = {c.rule for c in live if c.kind == "snooze_rule"}
        adjusted = [h for h in hits if h.rule not in snoozed] if snoozed else list(hits)
        blocks = [c for c in live if c.kind == "block"]
        if blocks:
            adjusted.append(_hit(BLOCK_RULE, "block", "CASE_BLOCK", blocks[0], ()))
        step_ups = [c for c in live if c.kind == "step_up"]
        if step_ups and event.type in MONEY_OUT_TYPES:
            hit = _hit(STEP_UP_RULE, "challenge", "CASE_STEP_UP", step_ups[0], self._methods)
            adjusted.append(hit)
        return adjusted


def _hit(
    rule: str, action: Action, code: str, control: Control, methods: tuple[ChallengeMethod, ...]
) -> RuleHit:
    words = "blocked" if action == "block" else "a strong step-up required"
    return RuleHit(
        rule=rule,
        status="hit",
        mode="live",
        action=action,
        score=100 if action == "block" else 60,
        code=code,
        reason=f"{words} by an analyst (case {control.case_id})",
        challenge=methods,
    )
