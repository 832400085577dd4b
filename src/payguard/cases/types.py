"""What the cases room holds and answers: cases, their alerts, notes, attachments and the
actions an analyst takes (a tagged union, one small struct per action).

Money is integer fen inside (`amount`, `held`), shown beside it in yuan strings where a
person reads it (`CaseView`); times are epoch ms; entities are tokens or ids as events
carry them, never clear card, phone or ID numbers.
"""

from typing import Annotated, Final, Literal, get_args

import msgspec

from payguard.lists.types import ListKind, ListName, ListSubject
from payguard.types import EpochMs, Fen

EntityKind = Literal["account", "card", "merchant", "device"]
ENTITY_KINDS: Final[tuple[EntityKind, ...]] = get_args(EntityKind)
CaseStatus = Literal["open", "investigating", "snoozed", "closed"]
CASE_STATUSES: Final[tuple[CaseStatus, ...]] = get_args(CaseStatus)
AlertKind = Literal["review", "hold", "step_up_failed", "customer_label"]
ALERT_KINDS: Final[tuple[AlertKind, ...]] = get_args(AlertKind)
QueueOrder = Literal["time_left", "score", "amount", "newest"]
QUEUE_ORDERS: Final[tuple[QueueOrder, ...]] = get_args(QueueOrder)
BreachAction = Literal["release", "revoke"]
Verdict = Literal["fraud", "not_fraud"]

Comment = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
"""Why: required wherever an action needs one (snooze a rule, every bulk action)."""
NoteText = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
ShortId = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
MAX_SNOOZE_DAYS: Final = 180
MAX_ATTACHMENT_BYTES: Final = 1_048_576
"""Attachments are screenshots and letters, kept in the case store: at most 1 MiB each."""


class Alert(msgspec.Struct, frozen=True, omit_defaults=True):
    """One reason a case was opened or updated: a decision that needs someone (review,
    hold), a failed strong step-up, a customer's fraud label. `event_id` is the decided
    event (for a label: the event it is about)."""

    alert_id: str
    kind: AlertKind
    event_id: str
    ts: EpochMs
    score: int = 0
    amount: Fen = 0
    currency: str = "CNY"
    reasons: list[str] = msgspec.field(default_factory=list)
    """The decision's reason codes (rules), for the queue and the STR narrative."""
    rules: list[str] = msgspec.field(default_factory=list)
    hold_id: str | None = None
    release_ts: EpochMs | None = None
    """For a hold: when the money is paid out unless revoked (the SLA deadline)."""
    user_id: str | None = None
    card: str | None = None
    device_id: str | None = None
    merchant_id: str | None = None
    payee_id: str | None = None
    type: str | None = None
    """The decided event's type (`transfer`, `card_bind`, …)."""


class Case(msgspec.Struct, frozen=True, omit_defaults=True):
    """One case: an entity in a queue, with its status, who has it, and what it holds.

    `due_ts` is the SLA deadline: the earliest release time of a hold still held in the
    case (money leaves then unless someone acts), else `opened_ts + sla_hours`.
    `breach_action` is what happens to that money at the deadline if nobody acts."""

    case_id: str
    queue: str
    entity_kind: EntityKind
    entity_id: str
    status: CaseStatus
    opened_ts: EpochMs
    updated_ts: EpochMs
    due_ts: EpochMs
    score: int = 0
    """The highest alert score."""
    amount: Fen = 0
    """The sum of the alerts' amounts (fen)."""
    held: Fen = 0
    """Money in holds still held (fen)."""
    currency: str = "CNY"
    alerts: int = 0
    assignee: str | None = None
    snoozed_until: EpochMs | None = None
    breach_action: BreachAction = "release"
    verdict: Verdict | None = None
    closed_ts: EpochMs | None = None


class Note(msgspec.Struct, frozen=True):
    note_id: str
    case_id: str
    author: str
    ts: EpochMs
    text: str


class Attachment(msgspec.Struct, frozen=True):
    """An attachment's metadata (its bytes are read with `CaseService.attachment`)."""

    attachment_id: str
    case_id: str
    name: str
    content_type: str
    size: int
    sha256: str
    author: str
    ts: EpochMs


class ActionRecord(msgspec.Struct, frozen=True):
    """An action taken on a case, as its history shows it (the audit log has the same
    with the hash chain)."""

    case_id: str
    action: str
    actor: str
    ts: EpochMs
    comment: str | None
    before: dict[str, object]
    after: dict[str, object]


class CaseDetail(msgspec.Struct, frozen=True):
    case: Case
    alerts: list[Alert]
    notes: list[Note]
    attachments: list[Attachment]
    history: list[ActionRecord]


class CaseQuery(msgspec.Struct, frozen=True):
    """`GET /v1/cases`: filters (all optional), order and a page. `cursor` is the opaque
    `next_cursor` of the previous page."""

    queue: str | None = None
    status: CaseStatus | None = None
    entity_kind: EntityKind | None = None
    entity_id: str | None = None
    assignee: str | None = None
    order: QueueOrder = "time_left"
    limit: int = 50
    cursor: str | None = None


class CasePage(msgspec.Struct, frozen=True):
    cases: list[Case]
    next_cursor: str | None = None


class QueueSummary(msgspec.Struct, frozen=True):
    queue: str
    open: int
    investigating: int
    snoozed: int
    oldest_open_ts: EpochMs | None
    held: Fen


# -- actions (POST /v1/cases/{id}/actions): one struct per action, tagged by `action` ------


class _Action(msgspec.Struct, frozen=True, tag_field="action", forbid_unknown_fields=True):
    """The base of every case action: the JSON body names it in `action`."""


class Claim(
    msgspec.Struct, frozen=True, tag_field="action", tag="claim", forbid_unknown_fields=True
):
    """Take the case (status → investigating); refused past the assignment cap."""


class Release(
    msgspec.Struct, frozen=True, tag_field="action", tag="release", forbid_unknown_fields=True
):
    """Give the case back to its queue (status → open)."""


class Resolve(
    msgspec.Struct, frozen=True, tag_field="action", tag="resolve", forbid_unknown_fields=True
):
    """Close the case with a verdict, filed as a `label` (source `analyst`) on every
    alert's event through the outcomes service."""

    verdict: Verdict
    comment: Comment | None = None


class Reopen(
    msgspec.Struct, frozen=True, tag_field="action", tag="reopen", forbid_unknown_fields=True
):
    comment: Comment


class Snooze(
    msgspec.Struct, frozen=True, tag_field="action", tag="snooze", forbid_unknown_fields=True
):
    """Put the case aside until `until_ts` (then it is open again)."""

    until_ts: EpochMs
    comment: Comment | None = None


class HoldDecision(
    msgspec.Struct, frozen=True, tag_field="action", tag="hold", forbid_unknown_fields=True
):
    """Revoke (the money never leaves) or release (paid out now) one hold of the case;
    without `hold_id`, every hold of the case still held."""

    decision: Literal["revoke", "release"]
    hold_id: ShortId | None = None
    comment: Comment | None = None


class RequireStepUp(
    msgspec.Struct,
    frozen=True,
    tag_field="action",
    tag="require_step_up",
    forbid_unknown_fields=True,
):
    """The entity's next money-out event is challenged (a strong method), once."""

    comment: Comment | None = None


class Block(
    msgspec.Struct, frozen=True, tag_field="action", tag="block", forbid_unknown_fields=True
):
    """Block every later event of the entity (until unblocked)."""

    comment: Comment


class Unblock(
    msgspec.Struct, frozen=True, tag_field="action", tag="unblock", forbid_unknown_fields=True
):
    comment: Comment


class AddToList(
    msgspec.Struct, frozen=True, tag_field="action", tag="add_to_list", forbid_unknown_fields=True
):
    """Put a subject of the case on a list. `value` is a token or id from the case's
    alerts (or a clear number, tokenized at once); without it, the case's entity. The
    list is created (owner: the actor) if it does not exist."""

    list_name: ListName
    subject: ListSubject
    kind: ListKind = "deny"
    value: ShortId | None = None
    expires_ts: EpochMs | None = None
    comment: Comment | None = None


class SnoozeRule(
    msgspec.Struct, frozen=True, tag_field="action", tag="snooze_rule", forbid_unknown_fields=True
):
    """One rule stops hitting the case's entity for `days` (1–180); a comment is required."""

    rule: ShortId
    days: Annotated[int, msgspec.Meta(ge=1, le=MAX_SNOOZE_DAYS)]
    comment: Comment


class AddNote(
    msgspec.Struct, frozen=True, tag_field="action", tag="note", forbid_unknown_fields=True
):
    text: NoteText


CaseAction = (
    Claim
    | Release
    | Resolve
    | Reopen
    | Snooze
    | HoldDecision
    | RequireStepUp
    | Block
    | Unblock
    | AddToList
    | SnoozeRule
    | AddNote
)
ACTION_NAMES: Final[tuple[str, ...]] = tuple(
    str(t.__struct_config__.tag) for t in get_args(CaseAction)
)


class BulkAction(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/cases/bulk`: one action on many cases, with the required comment."""

    case_ids: Annotated[list[ShortId], msgspec.Meta(min_length=1, max_length=500)]
    action: CaseAction
    comment: Comment


class ActionResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """What an action did: the case after it, and what it touched (holds, labels filed,
    list entries), for the answer and the audit log."""

    case: Case
    action: str
    effects: list[str] = msgspec.field(default_factory=list)


class CaseError(ValueError):
    """An action or query that cannot be done: `field` names what is wrong, `status` is
    the HTTP answer (404 unknown case, 409 state conflict or cap, 422 a bad value)."""

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.status = field, reason, status
