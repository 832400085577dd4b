"""What rules read from outside the event stream, as the narrow interfaces the engine is
given: the allow/deny lists (`ListReader`) and the analysts' controls on one entity
(`EntityControls`: block, step-up on the next event, a rule snoozed). Both live in rooms
above the engine (`lists/`, `cases/`), which hand an implementation to `Engine.lists` /
`Engine.controls`; the engine imports neither room.
"""

from typing import Protocol

from payguard.cel.lists import Membership, membership
from payguard.events import Event
from payguard.rules.types import RuleHit


class ListReader(Protocol):
    def contains(self, kind: str, name: str, subject: str, value: str, at_ms: int) -> bool:
        """Whether `value` (a token or id as the event carries it) is live on the `kind`
        list `name` of `subject`s at `at_ms`. Called on the decision path: answer from
        memory."""
        ...


class EntityControls(Protocol):
    def adjust(self, event: Event, hits: list[RuleHit]) -> list[RuleHit]:
        """The rule hits with the analysts' controls on the event's entities applied:
        snoozed rules dropped, a block or a required step-up added as a hit of its own.
        Called on the decision path for every decided event: answer from memory, and
        return `hits` itself when nothing applies."""
        ...


def subject_value(event: Event, subject: str) -> str | None:
    """The value of a list subject in the event (None when it has none)."""
    match subject:
        case "card":
            return event.card.token if event.card is not None else None
        case "phone":
            return event.phone
        case "id_number":
            return event.id_number
        case "device":
            return event.device_id
        case "ip":
            return event.ip
        case "payee":
            return event.payee.id if event.payee is not None else None
        case "merchant":
            return event.merchant.id if event.merchant is not None else None
        case "account":
            return event.user_id
    return None


def list_reads(names: frozenset[str] | set[str]) -> dict[str, Membership]:
    """The membership variables among `names`, with what each asks, in name order: the
    order their values join a decision's features, so the same in every process (a set's
    order follows the string hash seed, and each order was a feature set of its own)."""
    found = {name: membership(name) for name in sorted(names)}
    return {name: asked for name, asked in found.items() if asked is not None}


def list_values(
    reader: ListReader | None, reads: dict[str, Membership], event: Event
) -> dict[str, bool]:
    """Each membership variable's value for `event` (all false without a reader)."""
    values: dict[str, bool] = {}
    for name, (kind, list_name, subject) in reads.items():
        value = subject_value(event, subject)
        values[name] = (
            reader is not None
            and value is not None
            and reader.contains(kind, list_name, subject, value, event.ts)
        )
    return values
