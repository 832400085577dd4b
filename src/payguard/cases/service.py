"""`CaseService`: the one place cases are opened, worked and closed; the API routes and
the console pages call it (docs/cases.md).

Intake. The service is an engine listener (as the webhook notifier is) and an outcome
listener: a `review` or `hold` decision, a failed strong step-up (`challenge_result`
failed with a strong method) and a customer's fraud label (`label` from `customer`,
`fraud_report`) each become an `Alert`, queued while the request runs and filed at the
engine's flush, right after the event log's commit. An alert goes to the open case of its
entity (account, else card, device, merchant) in its queue, or opens one.

Work. `claim` / `release` / `next_case` (claims the most urgent open case of a queue,
within the analyst's assignment cap), and `act` for every action of `types.CaseAction`
(resolve as fraud / not fraud, which files a `label` through the engine and so the
outcomes service; revoke or release holds; require a step-up; block or unblock; add to a
list; snooze a rule for the entity; snooze the case; notes). `bulk` runs one action on
many cases with a required comment. Every action is written to the audit log (who, why,
before/after) and to the case's history.

Money. A case's `due_ts` is the earliest release time of a hold still held in it: at that
moment the money leaves unless someone acts. `enforce_sla(now)` carries out the case's
`breach_action` for holds that reached it (`revoke` takes the money back; `release` lets
expiry pay it out, as holds do anyway).
"""

import hashlib
import logging
import os
import secrets
from collections.abc import Callable
from typing import Any, Final

import msgspec

from payguard.auth import Actor, AuditLog
from payguard.cases.controls import STEP_UP_RULE, ControlIndex, entities_of
from payguard.cases.report import StrFormat, str_report
from payguard.cases.store import DSN_ENV, CaseStore, Control, ControlKind, SqlCaseStore
from payguard.cases.types import (
    MAX_ATTACHMENT_BYTES,
    ActionRecord,
    ActionResult,
    AddNote,
    AddToList,
    Alert,
    AlertKind,
    Attachment,
    Block,
    BreachAction,
    Case,
    CaseAction,
    CaseDetail,
    CaseError,
    CasePage,
    CaseQuery,
    Claim,
    EntityKind,
    HoldDecision,
    Note,
    QueueSummary,
    Release,
    Reopen,
    RequireStepUp,
    Resolve,
    Snooze,
    SnoozeRule,
    Unblock,
)
from payguard.decision import Decision
from payguard.engine import DuplicateEventError, Engine
from payguard.events import Event, EventError
from payguard.events.tokenize import clear_pii_in
from payguard.holds import Hold, HoldError, HoldState
from payguard.lists import ListError, ListService
from payguard.types import DAY_MS, HOUR_MS, ChallengeMethod, EpochMs

log = logging.getLogger("payguard.cases")

SYSTEM: Final = Actor("system:cases", "case service")
"""The actor of what the service does by itself (SLA breach actions)."""


class CaseConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How cases are opened and worked (defaults fit the demo; docs/cases.md)."""

    queues: dict[str, str] = msgspec.field(
        default_factory=lambda: {
            "review": "review",
            "hold": "holds",
            "step_up_failed": "step_up",
            "customer_label": "customer_reports",
        }
    )
    """Alert kind → the queue its cases are worked in."""
    entity_order: list[EntityKind] = msgspec.field(
        default_factory=lambda: ["account", "card", "device", "merchant"]
    )
    """The first of these an event names is the entity its alert's case is about."""
    sla_hours: int = 24
    """A case with no hold is due this long after it opened."""
    assignment_cap: int = 20
    """Cases one analyst may be investigating at once."""
    breach_action: BreachAction = "release"
    """What happens to a case's held money at its deadline if nobody acted."""
    breach_lead_ms: int = 60_000
    """`revoke` is carried out this long before the release time (before expiry pays out)."""
    institution: str = "payguard demo bank"
    """The reporting institution an STR names."""
    step_up_methods: list[ChallengeMethod] = msgspec.field(
        default_factory=lambda: ["face", "in_app_confirm"]
    )


class CaseService:
    """Cases over one store, acting through one engine, lists and audit log."""

    def __init__(
        self,
        store: CaseStore,
        engine: Engine,
        lists: ListService,
        audit: AuditLog | None,
        config: CaseConfig | None = None,
        *,
        clock: Callable[[], int],
    ) -> None:
        self.store = store
        self.engine = engine
        self.lists = lists
        self.audit = audit
        self.config = config if config is not None else CaseConfig()
        self.clock = clock
        self.controls = ControlIndex(store.controls(), self.config.step_up_methods)
        self._pending: list[Alert] = []
        self._hold_changes: list[Hold] = []
        self._used_step_ups: list[str] = []

    @classmethod
    def open(
        cls,
        engine: Engine,
        lists: ListService,
        audit: AuditLog | None,
        config: CaseConfig | None = None,
        *,
        clock: Callable[[], int],
        dsn: str | None = None,
    ) -> "CaseService":
        """The service on the configured store: Postgres at `dsn` or `PAYGUARD_CASES_DSN`
        when set, else `cases.db` in the engine's data directory."""
        dsn = dsn if dsn is not None else os.environ.get(DSN_ENV) or None
        store = SqlCaseStore.open(engine.settings.data_dir, dsn)
        return cls(store, engine, lists, audit, config, clock=clock)

    def close(self) -> None:
        self.detach()
        self.store.close()

    # -- wiring ------------------------------------------------------------------------------

    def attach(self) -> None:
        """Listen to the engine's decisions and hold resolutions; give it the lists and
        the controls (the engine imports neither room)."""
        if self not in self.engine.listeners:
            self.engine.listeners.append(self)
        self.engine.lists = self.lists
        self.engine.controls = self.controls

    def detach(self) -> None:
        if self in self.engine.listeners:
            self.engine.listeners.remove(self)
        self.engine.controls = None

    # -- as an engine listener (intake) ------------------------------------------------------

    def recorded(self, event: Event, decision: Decision) -> None:
        """Queue the alert this decision or outcome raises, if any (written at flush)."""
        if any(r.rule == STEP_UP_RULE for r in decision.reasons):
            self._used_step_ups.extend(self._step_up_ids(event))
        kind = self._alert_kind(event, decision)
        if kind is None:
            return
        if kind in ("review", "hold"):
            self._pending.append(_alert(kind, event, decision))
            return
        ref = event.ref_event_id
        about = self.engine.recorder.get_event(ref) if ref is not None else None
        if about is None:
            return
        stored = self.engine.stored_decision(about.event_id)
        self._pending.append(_alert(kind, about, stored, ts=event.ts, origin=event.event_id))

    def hold_resolved(self, hold: Hold) -> None:
        self._hold_changes.append(hold)

    def flush(self) -> None:
        """File the queued alerts and hold changes (the decisions are durable now), all
        in one store transaction (`SqlCaseStore.batch`: one fsync, not one per alert)."""
        pending, self._pending = self._pending, []
        changes, self._hold_changes = self._hold_changes, []
        used, self._used_step_ups = self._used_step_ups, []
        if not (pending or changes or used):
            return
        with self.store.batch():  # one failing write (a savepoint) spares the others
            for alert in pending:
                _logged(self.file_alert, alert)
            for hold in changes:
                _logged(self._refresh_cases_of_hold, hold)
            for control_id in used:
                _logged(self._lift_control, control_id)

    def discard_pending(self) -> None:
        self._pending.clear()
        self._hold_changes.clear()
        self._used_step_ups.clear()

    def file_alert(self, alert: Alert) -> Case | None:
        """Attach `alert` to its entity's open case in its queue, or open one. Idempotent:
        an alert filed before changes nothing (returns None)."""
        entity = self._entity(alert)
        if entity is None:
            return None
        queue = self.config.queues.get(alert.kind, alert.kind)
        kind, entity_id = entity
        case = self.store.open_case(queue, kind, entity_id)
        now = self.clock()
        if case is None:
            case = Case(
                case_id=_case_id(queue, kind, entity_id, alert.alert_id),
                queue=queue,
                entity_kind=kind,
                entity_id=entity_id,
                status="open",
                opened_ts=now,
                updated_ts=now,
                due_ts=now + self.config.sla_hours * HOUR_MS,
                currency=alert.currency,
                breach_action=self.config.breach_action,
            )
        if not self.store.add_alert(case.case_id, alert):
            return None
        status = "open" if case.status == "snoozed" else case.status
        case = msgspec.structs.replace(
            case,
            status=status,
            snoozed_until=None if status == "open" else case.snoozed_until,
            alerts=case.alerts + 1,
            score=max(case.score, alert.score),
            amount=case.amount + alert.amount,
            updated_ts=now,
        )
        case = self._with_money(case, self.store.alerts(case.case_id), now)
        self.store.put(case)
        return case

    # -- reading -----------------------------------------------------------------------------

    def find(self, query: CaseQuery) -> CasePage:
        """Cases matching the query, ordered and paged (`GET /v1/cases`). Snoozed cases
        whose time is up are opened first."""
        if not 1 <= query.limit <= 500:
            raise CaseError("limit", "1 to 500")
        self.wake_snoozed(self.clock())
        return self.store.find(query)

    def get(self, case_id: str) -> CaseDetail:
        """One case with its alerts, notes, attachments and history (CaseError 404)."""
        case = self._case(case_id)
        return CaseDetail(
            case=case,
            alerts=self.store.alerts(case_id),
            notes=self.store.notes(case_id),
            attachments=self.store.attachments(case_id),
            history=self.store.history(case_id),
        )

    def queues(self) -> list[QueueSummary]:
        return self.store.queues()

    def controls_of(self, entity_kind: str, entity_id: str) -> list[Control]:
        """The live controls on one entity (blocks, step-ups, snoozed rules)."""
        return self.controls.of(entity_kind, entity_id)

    def attachment(self, case_id: str, attachment_id: str) -> tuple[Attachment, bytes]:
        for meta in self.store.attachments(case_id):
            if meta.attachment_id == attachment_id:
                data = self.store.attachment_data(case_id, attachment_id)
                if data is not None:
                    return meta, data
        raise CaseError("attachment_id", "no such attachment in this case", 404)

    def export_str(self, case_id: str, fmt: StrFormat, *, institution: str) -> str:
        """The case as a suspicious transaction report (CSV or JSON; report.py)."""
        detail = self.get(case_id)
        return str_report(detail, fmt, institution=institution, now_ms=self.clock())

    # -- working -----------------------------------------------------------------------------

    def claim(self, case_id: str, actor: Actor) -> Case:
        return self.act(case_id, Claim(), actor).case

    def release(self, case_id: str, actor: Actor) -> Case:
        return self.act(case_id, Release(), actor).case

    def next_case(self, queue: str, actor: Actor) -> Case | None:
        """Claim the most urgent open, unassigned case of `queue` (least time left);
        None when the queue is empty. CaseError 409 past the assignment cap."""
        self._check_cap(actor)
        self.wake_snoozed(self.clock())
        query = CaseQuery(queue=queue, status="open", order="time_left", limit=20)
        for case in self.store.find(query).cases:
            if case.assignee is None:
                try:
                    return self.claim(case.case_id, actor)
                except CaseError as exc:
                    if exc.status != 409:
                        raise
        return None

    def add_note(self, case_id: str, text: str, actor: Actor) -> Note:
        self.act(case_id, AddNote(text=text), actor)
        return self.store.notes(case_id)[-1]

    def attach_file(
        self, case_id: str, name: str, content_type: str, data: bytes, actor: Actor
    ) -> Attachment:
        """Keep a small file with the case (CaseError 413 past MAX_ATTACHMENT_BYTES)."""
        case = self._case(case_id)
        if not data:
            raise CaseError("file", "empty")
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise CaseError("file", f"larger than {MAX_ATTACHMENT_BYTES} bytes", 413)
        if not name or len(name) > 200 or "/" in name or "\\" in name:
            raise CaseError("name", "a file name of 1 to 200 characters, no path")
        now = self.clock()
        meta = Attachment(
            attachment_id=f"att_{secrets.token_hex(8)}",
            case_id=case_id,
            name=name,
            content_type=content_type[:100] or "application/octet-stream",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            author=actor.id,
            ts=now,
        )
        self.store.add_attachment(meta, data)
        after = {"attachment_id": meta.attachment_id, "size": meta.size, "sha256": meta.sha256}
        self._audit(case, "attach", actor, None, {}, after, now)
        return meta

    def bulk(
        self, case_ids: list[str], action: CaseAction, comment: str, actor: Actor
    ) -> list[ActionResult | CaseError]:
        """One action on each case, each audited with the bulk `comment` (required);
        a case that refuses it gives its CaseError in its place, the others go on."""
        if not comment.strip():
            raise CaseError("comment", "a bulk action needs a comment")
        results: list[ActionResult | CaseError] = []
        for case_id in dict.fromkeys(case_ids):
            try:
                results.append(self.act(case_id, action, actor, comment=comment))
            except (CaseError, ListError, HoldError) as exc:
                results.append(_as_case_error(exc))
        return results

    def act(
        self, case_id: str, action: CaseAction, actor: Actor, *, comment: str | None = None
    ) -> ActionResult:
        """Carry out one action on the case; audited with who, why, before and after.
        CaseError: 404 unknown case, 409 not possible in its state, 422 a bad value."""
        case = self._case(case_id)
        now = self.clock()
        why = comment or getattr(action, "comment", None)
        _no_clear_pii("comment", why)
        if isinstance(action, AddNote):
            _no_clear_pii("text", action.text)
        name = str(type(action).__struct_config__.tag)
        try:
            after, effects = self._do(case, action, actor, now)
        except (ListError, HoldError) as exc:
            raise _as_case_error(exc) from None
        before = _summary(case)
        self._audit(after, name, actor, why, before, {**_summary(after), "effects": effects}, now)
        return ActionResult(case=after, action=name, effects=effects)

    def wake_snoozed(self, now_ms: EpochMs) -> list[Case]:
        """Open the snoozed cases whose time is up."""
        woken = []
        for case in self.store.due_snoozed(now_ms):
            case = msgspec.structs.replace(case, status="open", snoozed_until=None)
            self.store.put(case)
            woken.append(case)
        return woken

    def enforce_sla(self, now_ms: EpochMs) -> list[Hold]:
        """Revoke the held money of open cases whose breach action is `revoke` and whose
        deadline is within `breach_lead_ms` (before expiry would pay it out)."""
        done: list[Hold] = []
        for case in self.store.holding_money_due(now_ms + self.config.breach_lead_ms):
            if case.breach_action == "revoke":
                done += self._revoke_at_breach(case)
        return done

    def _revoke_at_breach(self, case: Case) -> list[Hold]:
        comment = "SLA breached: the case's breach action revokes its held money"
        result = self.act(case.case_id, HoldDecision(decision="revoke", comment=comment), SYSTEM)
        return [h for h in self._holds(case.case_id) if h.hold_id in result.effects]

    # -- the actions -------------------------------------------------------------------------

    def _do(self, case: Case, action: CaseAction, actor: Actor, now: int) -> tuple[Case, list[str]]:
        """The case after `action`, and what it touched outside the case."""
        match action:
            case Claim():
                return self._claim(case, actor, now), []
            case Release():
                if case.status != "investigating":
                    raise CaseError("action", f"the case is {case.status}, not investigating", 409)
                return self._put(case, now, status="open", assignee=None), []
            case Resolve(verdict=verdict):
                self._open_only(case)
                labels = self._file_labels(case, verdict, now)
                closed = self._put(case, now, status="closed", verdict=verdict, closed_ts=now)
                return self._with_money_put(closed, now), labels
            case Reopen():
                if case.status != "closed":
                    raise CaseError("action", "only a closed case can be reopened", 409)
                return self._put(case, now, status="open", verdict=None, closed_ts=None), []
            case Snooze(until_ts=until):
                self._open_only(case)
                if until <= now:
                    raise CaseError("until_ts", "must be in the future")
                if until > now + 180 * DAY_MS:
                    raise CaseError("until_ts", "at most 180 days ahead")
                return self._put(
                    case, now, status="snoozed", snoozed_until=until, assignee=None
                ), []
            case HoldDecision(decision=decision, hold_id=hold_id):
                return case, self._resolve_holds(case, decision, hold_id, actor, now)
            case RequireStepUp():
                self._open_only(case)
                return case, [self._add_control(case, "step_up", now).control_id]
            case Block():
                self._open_only(case)
                return case, [self._add_control(case, "block", now).control_id]
            case Unblock():
                lifted = [
                    c
                    for c in self.controls_of(case.entity_kind, case.entity_id)
                    if c.kind == "block"
                ]
                if not lifted:
                    raise CaseError("action", "the entity is not blocked", 409)
                for control in lifted:
                    self._lift_control(control.control_id)
                return case, [c.control_id for c in lifted]
            case AddToList():
                return case, [self._add_to_list(case, action, actor, now)]
            case SnoozeRule(rule=rule, days=days):
                if rule not in {r.rule.id for r in self.engine.ruleset.rules}:
                    raise CaseError("rule", f"no rule {rule!r} in the live ruleset")
                until = now + days * DAY_MS
                return case, [self._add_control(case, "snooze_rule", now, rule, until).control_id]
            case AddNote(text=text):
                note = Note(f"note_{secrets.token_hex(8)}", case.case_id, actor.id, now, text)
                self.store.add_note(note)
                return self._put(case, now), [note.note_id]
        raise CaseError("action", "unknown action")  # pragma: no cover

    def _claim(self, case: Case, actor: Actor, now: int) -> Case:
        if case.status == "closed":
            raise CaseError("action", "the case is closed", 409)
        if case.assignee == actor.id:
            return case
        if case.assignee is not None:
            raise CaseError("action", f"the case is claimed by {case.assignee}", 409)
        self._check_cap(actor)
        claimed = msgspec.structs.replace(
            case, status="investigating", assignee=actor.id, snoozed_until=None, updated_ts=now
        )
        if not self.store.claim(case.case_id, actor.id, claimed):
            raise CaseError("action", "the case was claimed by someone else", 409)
        return claimed

    def _check_cap(self, actor: Actor) -> None:
        cap = self.config.assignment_cap
        if self.store.assigned(actor.id) >= cap:
            raise CaseError("action", f"assignment cap reached ({cap} cases investigating)", 409)

    def _file_labels(self, case: Case, verdict: str, now: int) -> list[str]:
        """A `label` (source analyst) for each decided event of the case, through the
        engine, so the outcomes service files it as any label (lifecycle, features,
        a fraud label revoking the account's pending holds)."""
        filed: list[str] = []
        for alert in self.store.alerts(case.case_id):
            event = Event(
                event_id=f"lbl-{case.case_id}-{verdict}-{alert.event_id}"[:128],
                type="label",
                ts=now,
                user_id=alert.user_id,
                ref_event_id=alert.event_id,
                label=verdict,
                source="analyst",
            )
            if event.event_id in filed:
                continue
            try:
                self.engine.process(event, commit=True)
            except (DuplicateEventError, EventError) as exc:
                raise CaseError(
                    "verdict", f"the label on {alert.event_id} was refused: {exc}", 409
                ) from None
            filed.append(event.event_id)
        self.engine.flush()
        return filed

    def _resolve_holds(
        self, case: Case, decision: str, hold_id: str | None, actor: Actor, now: int
    ) -> list[str]:
        held = [h for h in self._holds(case.case_id) if h.as_of(now).state == "held"]
        if hold_id is not None:
            held = [h for h in held if h.hold_id == hold_id]
            if not held:
                raise CaseError("hold_id", "no hold of this case is still held with that id", 409)
        if not held:
            raise CaseError("action", "the case holds no money now", 409)
        state: HoldState = "revoked" if decision == "revoke" else "released"
        for hold in held:
            note = f"case {case.case_id} by {actor.id}"
            self.engine.resolve_hold(hold.hold_id, state, at_ms=now, by="staff", note=note)
        return [h.hold_id for h in held]

    def _add_to_list(self, case: Case, action: AddToList, actor: Actor, now: int) -> str:
        value = action.value
        if value is None:
            value = _entity_as_subject(case, action.subject)
        lists = self.lists
        try:
            lists.get(action.kind, action.list_name)
        except ListError:
            lists.create(
                action.kind,
                action.list_name,
                action.subject,
                owner=actor.name or actor.id,
                reason=action.comment or f"created from case {case.case_id}",
                actor=actor,
                now_ms=now,
            )
        info = lists.get(action.kind, action.list_name)
        if info.subject != action.subject:
            raise CaseError("subject", f"list {info.name!r} holds {info.subject}s")
        entry = lists.add(
            action.kind,
            action.list_name,
            value,
            reason=action.comment or f"case {case.case_id}",
            actor=actor,
            now_ms=now,
            expires_ms=action.expires_ts,
            case_id=case.case_id,
        )
        return entry.entry_id

    def _add_control(
        self,
        case: Case,
        kind: ControlKind,
        now: int,
        rule: str | None = None,
        until: int | None = None,
    ) -> Control:
        control = Control(
            control_id=f"ctl_{secrets.token_hex(8)}",
            kind=kind,
            entity_kind=case.entity_kind,
            entity_id=case.entity_id,
            case_id=case.case_id,
            created_ts=now,
            rule=rule,
            until_ts=until,
        )
        self.store.put_control(control)
        self.controls.add(control)
        return control

    def _lift_control(self, control_id: str) -> None:
        for control in self.store.controls():
            if control.control_id == control_id:
                self.store.delete_control(control_id)
                self.controls.remove(control)

    def _step_up_ids(self, event: Event) -> list[str]:
        return [
            c.control_id
            for kind, entity in entities_of(event)
            for c in self.controls.of(kind, entity)
            if c.kind == "step_up"
        ]

    # -- internals ---------------------------------------------------------------------------

    def _alert_kind(self, event: Event, decision: Decision) -> AlertKind | None:
        if decision.action in ("review", "hold"):
            return "review" if decision.action == "review" else "hold"
        if event.type == "challenge_result":
            strong = self.engine.ruleset.policy.outcomes.strong
            if event.outcome == "failed" and event.method in strong:
                return "step_up_failed"
            return None
        if event.type == "fraud_report" or (
            event.type == "label" and event.label == "fraud" and event.source == "customer"
        ):
            return "customer_label"
        return None

    def _entity(self, alert: Alert) -> tuple[EntityKind, str] | None:
        values: dict[EntityKind, str | None] = {
            "account": alert.user_id,
            "card": alert.card,
            "device": alert.device_id,
            "merchant": alert.merchant_id,
        }
        for kind in self.config.entity_order:
            value = values.get(kind)
            if value:
                return kind, value
        return None

    def _case(self, case_id: str) -> Case:
        case = self.store.get(case_id)
        if case is None:
            raise CaseError("case_id", f"no case {case_id!r}", 404)
        return case

    def _open_only(self, case: Case) -> None:
        if case.status == "closed":
            raise CaseError("action", "the case is closed", 409)

    def _put(self, case: Case, now: int, **changes: object) -> Case:
        updated = msgspec.structs.replace(case, updated_ts=now, **changes)
        self.store.put(updated)
        return updated

    def _holds(self, case_id: str) -> list[Hold]:
        holds = []
        for alert in self.store.alerts(case_id):
            if alert.hold_id is not None:
                hold = self.engine.holds.get(alert.hold_id)
                if hold is not None:
                    holds.append(hold)
        return holds

    def _with_money(self, case: Case, alerts: list[Alert], now: int) -> Case:
        """`held` and `due_ts` from the case's holds as they stand at `now`."""
        held = [
            h
            for a in alerts
            if a.hold_id is not None
            and (h := self.engine.holds.get(a.hold_id)) is not None
            and h.as_of(now).state == "held"
        ]
        due = min(
            (h.release_ts for h in held), default=case.opened_ts + self.config.sla_hours * HOUR_MS
        )
        return msgspec.structs.replace(case, held=sum(h.amount for h in held), due_ts=due)

    def _with_money_put(self, case: Case, now: int) -> Case:
        updated = self._with_money(case, self.store.alerts(case.case_id), now)
        if updated != case:
            self.store.put(updated)
        return updated

    def _refresh_cases_of_hold(self, hold: Hold) -> None:
        if hold.user_id is None:
            return
        now = self.clock()
        for case in self.store.cases_of("account", hold.user_id):
            if any(a.hold_id == hold.hold_id for a in self.store.alerts(case.case_id)):
                self._with_money_put(case, now)

    def _audit(
        self,
        case: Case,
        action: str,
        actor: Actor,
        why: str | None,
        before: dict[str, object] | None,
        after: dict[str, object],
        now: int,
    ) -> None:
        record = ActionRecord(case.case_id, action, actor.id, now, why, before or {}, after)
        self.store.add_history(record)
        if self.audit is not None:
            self.audit.record(
                actor.id,
                f"case.{action}",
                case.case_id,
                before,
                {**after, "comment": why},
                at_ms=now,
                actor_name=actor.name,
            )


def _alert(
    kind: AlertKind,
    event: Event,
    decision: Decision | None,
    *,
    ts: int | None = None,
    origin: str | None = None,
) -> Alert:
    """The alert for `event` (the decided one) and its decision."""
    hold = decision.hold if decision is not None else None
    has_hold = isinstance(hold, msgspec.Struct)
    return Alert(
        alert_id=f"{kind}:{origin or event.event_id}",
        kind=kind,
        event_id=event.event_id,
        ts=ts if ts is not None else event.ts,
        score=decision.score if decision is not None else 0,
        amount=event.amount or 0,
        currency=event.currency,
        reasons=[r.code for r in decision.reasons] if decision is not None else [],
        rules=[r.rule for r in decision.reasons] if decision is not None else [],
        hold_id=hold.hold_id if has_hold else None,  # type: ignore[union-attr]
        release_ts=hold.release_ts if has_hold else None,  # type: ignore[union-attr]
        user_id=event.user_id,
        card=event.card.token if event.card is not None else None,
        device_id=event.device_id,
        merchant_id=event.merchant.id if event.merchant is not None else None,
        payee_id=event.payee.id if event.payee is not None else None,
        type=event.type,
    )


def _case_id(queue: str, kind: str, entity_id: str, alert_id: str) -> str:
    digest = hashlib.sha256(f"{queue}\x1f{kind}\x1f{entity_id}\x1f{alert_id}".encode())
    return f"case_{digest.hexdigest()[:20]}"


def _entity_as_subject(case: Case, subject: str) -> str:
    mapping = {"account": "account", "card": "card", "device": "device", "merchant": "merchant"}
    if mapping.get(case.entity_kind) != subject:
        raise CaseError("value", f"the case is about a {case.entity_kind}: give the {subject}")
    return case.entity_id


def _no_clear_pii(field: str, text: str | None) -> None:
    """Free text kept with a case or in the audit log must not hold a clear card or ID
    number (put the subject on a list, or quote its token, instead)."""
    if text is not None and (kind := clear_pii_in(text)):
        raise CaseError(field, f"holds {kind} in clear: quote its token instead")


def _summary(case: Case) -> dict[str, object]:
    return {"status": case.status, "assignee": case.assignee, "verdict": case.verdict}


def _as_case_error(exc: CaseError | ListError | HoldError) -> CaseError:
    if isinstance(exc, CaseError):
        return exc
    if isinstance(exc, ListError):
        return CaseError(exc.field, exc.reason, exc.status)
    return CaseError("hold_id", exc.reason, 409 if exc.status == 409 else 404)


def _logged(write: Callable[[Any], object], item: Any) -> None:
    """One write of the intake; a failure is logged and the next one goes on (the
    decision it follows is durable whatever happens here)."""
    try:
        write(item)
    except Exception:
        log.exception("filing %r for the case queues failed", item)
