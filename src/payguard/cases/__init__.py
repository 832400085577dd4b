"""Cases: queues of entities that need an analyst, the actions that close them, and
the STR export (docs/cases.md).

    engine records review / hold / failed strong step-up / customer fraud label
      → CaseService (an engine listener) files an Alert at the engine's flush
      → the entity's open case in the alert's queue, or a new one   (CaseStore: SQLite or Postgres)
    analyst (API /v1/cases, console) → CaseService.act(case_id, action, actor)
      → label through the engine (outcomes), hold revoke/release, list entry,
        entity control (block, step-up, snoozed rule: rules.EntityControls) → audit log

Interface for the API and the console (kept stable):

- `CaseService.find(CaseQuery) -> CasePage`, `get(case_id) -> CaseDetail`,
  `queues() -> list[QueueSummary]`, `claim(case_id, actor)`, `release(case_id, actor)`,
  `next_case(queue, actor) -> Case | None`, `act(case_id, action, actor) -> ActionResult`,
  `bulk(case_ids, action, comment, actor)`, `add_note(case_id, text, actor)`,
  `attach_file(case_id, name, content_type, data, actor)`, `attachment(case_id, id)`,
  `export_str(case_id, "json" | "csv", institution=...)`, `controls_of(kind, id)`;
- `CaseService.open(engine, lists, audit, config, clock=...)` builds it on the
  configured store (`PAYGUARD_CASES_DSN`: Postgres; else SQLite in the data directory);
  `attach()` wires it to the engine, `close()` closes the store;
- actions are `types.CaseAction` structs tagged by `action` (`claim`, `release`,
  `resolve`, `reopen`, `snooze`, `hold`, `require_step_up`, `block`, `unblock`,
  `add_to_list`, `snooze_rule`, `note`); `Actor(id, name)` comes from `payguard.auth`;
- errors are `CaseError(field, reason, status)`.
"""

from payguard.cases.controls import BLOCK_RULE, STEP_UP_RULE, ControlIndex
from payguard.cases.report import STR_FORMATS, StrFormat, StrReport, str_report
from payguard.cases.service import SYSTEM, CaseConfig, CaseService
from payguard.cases.store import CASES_DB, DSN_ENV, CaseStore, Control, SqlCaseStore
from payguard.cases.types import (
    ACTION_NAMES,
    ALERT_KINDS,
    CASE_STATUSES,
    ENTITY_KINDS,
    MAX_ATTACHMENT_BYTES,
    MAX_SNOOZE_DAYS,
    QUEUE_ORDERS,
    ActionRecord,
    ActionResult,
    AddNote,
    AddToList,
    Alert,
    Attachment,
    Block,
    BulkAction,
    Case,
    CaseAction,
    CaseDetail,
    CaseError,
    CasePage,
    CaseQuery,
    CaseStatus,
    Claim,
    EntityKind,
    HoldDecision,
    Note,
    QueueOrder,
    QueueSummary,
    Release,
    Reopen,
    RequireStepUp,
    Resolve,
    Snooze,
    SnoozeRule,
    Unblock,
)

__all__ = [
    "ACTION_NAMES",
    "ALERT_KINDS",
    "BLOCK_RULE",
    "CASES_DB",
    "CASE_STATUSES",
    "DSN_ENV",
    "ENTITY_KINDS",
    "MAX_ATTACHMENT_BYTES",
    "MAX_SNOOZE_DAYS",
    "QUEUE_ORDERS",
    "STEP_UP_RULE",
    "STR_FORMATS",
    "SYSTEM",
    "ActionRecord",
    "ActionResult",
    "AddNote",
    "AddToList",
    "Alert",
    "Attachment",
    "Block",
    "BulkAction",
    "Case",
    "CaseAction",
    "CaseConfig",
    "CaseDetail",
    "CaseError",
    "CasePage",
    "CaseQuery",
    "CaseService",
    "CaseStatus",
    "CaseStore",
    "Claim",
    "Control",
    "ControlIndex",
    "EntityKind",
    "HoldDecision",
    "Note",
    "QueueOrder",
    "QueueSummary",
    "Release",
    "Reopen",
    "RequireStepUp",
    "Resolve",
    "Snooze",
    "SnoozeRule",
    "SqlCaseStore",
    "StrFormat",
    "StrReport",
    "Unblock",
    "str_report",
]
