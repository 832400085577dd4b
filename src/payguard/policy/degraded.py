"""The decision of an event decided without its state (degraded mode, docs/scale.md):
fail closed or fail open by event type (`DegradedConfig`), always with the reason."""

from typing import Final

from payguard.decision import Decision, Reason
from payguard.events import Event
from payguard.policy.config import DegradedConfig

REASON_CODE: Final = "degraded_state_unavailable"


def degraded_decision(
    event: Event, config: DegradedConfig, ruleset: str, cause: str, latency_us: int = 0
) -> Decision:
    """`closed_action` for an event type that fails closed, else `allow`; the reason
    names the mode and the cause (no rule ran: no feature could be read)."""
    closed = event.type in config.closed
    action = config.closed_action if closed else "allow"
    mode = f"fail-closed ({action})" if closed else "fail-open"
    text = f"state store unreachable, {mode} for {event.type}: {cause}"[:300]
    return Decision(
        event_id=event.event_id,
        action=action,
        score=0,
        reasons=[Reason(code=REASON_CODE, rule="policy", text=text)],
        ruleset=ruleset,
        model=None,
        latency_us=latency_us,
    )
