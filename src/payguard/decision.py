"""The decision contract (docs/decisions.md): what payguard answers for every event.

It sits on the ground floor beside the event contract: the policy fills it, the engine
stamps it, the recorder stores it and every caller reads it, so none of them has to
import the stage that made it.
"""

from typing import Any

import msgspec

from payguard.explanation import UNITS, shown_features
from payguard.types import Action, ChallengeMethod


class ChainEvidence(msgspec.Struct, frozen=True):
    """The attack chain a rule read, as matched when the event was decided: its furthest
    step and the ids of the events that took it there (this event last if it completed
    the chain), so a reviewer sees the whole chain, not one ordinary-looking event."""

    chain: str
    step: int
    event_ids: list[str]


class Reason(msgspec.Struct, frozen=True):
    """Why the action is what it is: a stable `code`, the rule (or `policy`), prose, and
    for a rule that reads chain features the chains matched (`chains`)."""

    code: str
    rule: str
    text: str
    chains: list[ChainEvidence] | msgspec.UnsetType = msgspec.UNSET


class ShadowHit(msgspec.Struct, frozen=True):
    """A shadow rule that would have fired; recorded, never acted on."""

    rule: str
    action: Action
    score: int


class HoldTerms(msgspec.Struct, frozen=True):
    """A `hold` decision's terms: the money is accepted but paid out only at
    `release_ts` (epoch ms) unless revoked first (`POST /v1/holds`)."""

    hold_id: str
    release_ts: int


class Decision(msgspec.Struct, frozen=True):
    """One decision. `challenge` appears only when action is challenge (any one method
    suffices); `hold` only when action is hold; `model_score` only when a model scored
    the event; `features` and `shadow` only when explanation was requested."""

    event_id: str
    action: Action
    score: int
    reasons: list[Reason]
    ruleset: str
    model: str | None
    latency_us: int
    challenge: list[ChallengeMethod] | msgspec.UnsetType = msgspec.UNSET
    hold: HoldTerms | msgspec.UnsetType = msgspec.UNSET
    model_score: float | msgspec.UnsetType = msgspec.UNSET
    """The learned model's calibrated fraud probability (0–1), present when a model scored
    the event. `score` stays the rules' 0–100 risk score that the policy thresholds read."""
    features: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    shadow: list[ShadowHit] | msgspec.UnsetType = msgspec.UNSET
    rule_errors: list[dict[str, str]] | msgspec.UnsetType = msgspec.UNSET
    units: dict[str, str] | msgspec.UnsetType = msgspec.UNSET
    """With `features` in an answer: what their numbers are (money in fen, null for never;
    payguard.explanation). Never stored: the stored `features` are the rules' own values."""

    def public(self, explain: bool = False) -> "Decision":
        """The decision as returned to a client: explanation fields only on request, the
        features as `payguard.explanation` shows them (null for never, `units` beside)."""
        if explain:
            if isinstance(self.features, msgspec.UnsetType):
                return self
            return msgspec.structs.replace(
                self, features=shown_features(self.features), units=dict(UNITS)
            )
        return msgspec.structs.replace(
            self,
            features=msgspec.UNSET,
            shadow=msgspec.UNSET,
            rule_errors=msgspec.UNSET,
            units=msgspec.UNSET,
        )
