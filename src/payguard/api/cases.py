"""`/v1/cases…` and `/v1/lists…`: the case and list routes over `CaseService` and
`ListService` (docs/cases.md). The console calls the same services.

Bodies are read raw and decoded by msgspec against the wire types the services use
(`CaseAction`, `BulkAction`, `NewList`, `NewEntry`), so an error names the field: 400 for
a body that is not JSON, 422 for a bad value, 404 for an unknown case, list or entry, 409
for an action the case's state refuses (claimed by someone else, closed, the assignment
cap), 413 for an attachment over its cap. Who acted is the API key (`key:<id>`), recorded
with every change in the audit log.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import MediaType, Request, Response, delete, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody
from litestar.params import FromPath, QueryParameter, RawBody
from litestar.types import ExceptionHandlersMap

from payguard.api.access import actor_of
from payguard.api.errors import documented_error, literal_param
from payguard.api.openapi import schema_of
from payguard.auth import Actor
from payguard.cases import (
    CASE_STATUSES,
    ENTITY_KINDS,
    MAX_ATTACHMENT_BYTES,
    QUEUE_ORDERS,
    STR_FORMATS,
    ActionResult,
    Attachment,
    BulkAction,
    Case,
    CaseAction,
    CaseDetail,
    CaseError,
    CasePage,
    CaseQuery,
    CaseService,
    QueueSummary,
)
from payguard.events import NESTED_TOO_DEEPLY, msgspec_field_and_reason, not_utf8
from payguard.lists import (
    LIST_KINDS,
    ListEntry,
    ListError,
    ListInfo,
    ListKind,
    ListService,
    ListSubject,
)
from payguard.lists.types import ListName, Owner, Reason
from payguard.types import EpochMs

T = TypeVar("T")
Text = Annotated[str | None, QueryParameter(max_length=256)]
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="page size, 1 to 500")]
_encode = msgspec.json.Encoder().encode


class CaseProblem(msgspec.Struct, omit_defaults=True):
    """An error naming the field (`body`, `case_id`, `action`, a body field, …)."""

    error: str
    field: str
    reason: str


class NextCase(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/cases/next`: claim the most urgent open case of `queue`."""

    queue: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class NextCaseAnswer(msgspec.Struct):
    case: Case | None


class BulkItem(msgspec.Struct, omit_defaults=True):
    """One case's outcome in a bulk action: its `result`, or the `error` it refused with."""

    case_id: str
    result: ActionResult | None = None
    error: CaseProblem | None = None


class BulkAnswer(msgspec.Struct):
    results: list[BulkItem]


class QueueList(msgspec.Struct):
    queues: list[QueueSummary]


class NewList(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/lists`: a new, empty list."""

    kind: ListKind
    name: ListName
    subject: ListSubject
    owner: Owner
    reason: Reason


class NewEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/lists/{kind}/{name}/entries`: `value` in clear (card, phone and ID
    numbers are tokenized at once and never stored) or as the token/id events carry."""

    value: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    reason: Reason
    expires_ms: EpochMs | None = None


class ListDetail(msgspec.Struct):
    info: ListInfo
    entries: list[ListEntry]


class ListIndex(msgspec.Struct):
    lists: list[ListInfo]


class _Problem(Exception):
    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.field, self.reason = status, field, reason


def _answer(status: int, field: str, reason: str) -> Response[bytes]:
    error = {400: "bad_request", 404: "not_found", 409: "conflict", 413: "too_large"}
    body = CaseProblem(error=error.get(status, "invalid_request"), field=field, reason=reason)
    return Response(content=_encode(body), status_code=status, media_type=MediaType.JSON)


def _on_problem(_: Request[Any, Any, Any], exc: _Problem) -> Response[bytes]:
    return _answer(exc.status, exc.field, exc.reason)


def _on_case_error(_: Request[Any, Any, Any], exc: CaseError | ListError) -> Response[bytes]:
    return _answer(exc.status, exc.field, exc.reason)


def decode(body: bytes, type_: type[T] | Any) -> T:
    """`body` as `type_`, or _Problem naming the field (400 not JSON, 422 a bad value)."""
    try:
        decoded: T = msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        field, reason = msgspec_field_and_reason(str(exc))
        raise _Problem(422, "body" if field == "$" else field, reason) from None
    except msgspec.DecodeError as exc:
        raise _Problem(400, "body", f"not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise _Problem(400, "body", not_utf8(exc)) from None
    except RecursionError:
        raise _Problem(400, "body", NESTED_TOO_DEEPLY) from None
    return decoded


def _body_operation(wire_type: Any, title: str) -> type[Operation]:
    """An Operation class whose request body is `wire_type`'s schema."""

    @dataclass
    class BodyOperation(Operation):
        def __post_init__(self) -> None:
            schema = schema_of(wire_type, title=title)
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=schema)}, required=True
            )

    return BodyOperation


def _actor(request: Request[Any, Any, Any]) -> Actor:
    actor, name = actor_of(request)
    return Actor(actor, name)


def case_handlers(cases: CaseService) -> list[HTTPRouteHandler]:
    """The case routes, for `create_app`."""
    errors: ExceptionHandlersMap = {_Problem: _on_problem, CaseError: _on_case_error}
    problem = documented_error(CaseProblem)
    max_body = cases.engine.settings.max_body_bytes

    @get(
        "/v1/cases",
        sync_to_thread=False,
        summary="List cases: filter by queue, status and entity; ordered and paged",
        description=(
            "Filters: `queue`, `status` (open, investigating, snoozed, closed), "
            "`entity_kind` (account, card, merchant, device) with `entity_id`, `assignee`. "
            "`order`: `time_left` (default: the SLA deadline, soonest first), `score`, "
            "`amount` (highest first) or `newest`. Pass `next_cursor` back as `cursor`."
        ),
        tags=["cases"],
        exception_handlers=errors,
        responses={400: problem},
    )
    def list_cases(
        request: Request[Any, Any, Any],
        queue: Text = None,
        entity_kind: Text = None,
        entity_id: Text = None,
        assignee: Text = None,
        order: Text = None,
        cursor: Text = None,
        limit: Limit = 50,
    ) -> CasePage:
        try:
            query = CaseQuery(
                queue=queue,
                status=literal_param(request.query_params.get("status"), CASE_STATUSES, "status"),
                entity_kind=literal_param(entity_kind, ENTITY_KINDS, "entity_kind"),
                entity_id=entity_id,
                assignee=assignee,
                order=literal_param(order, QUEUE_ORDERS, "order") or "time_left",
                limit=limit,
                cursor=cursor,
            )
            return cases.find(query)
        except CaseError as exc:
            raise _Problem(400, exc.field, exc.reason) from None

    @get(
        "/v1/cases/queues",
        sync_to_thread=False,
        summary="The queues with their counts, oldest open case and held money",
        tags=["cases"],
    )
    def list_queues() -> QueueList:
        return QueueList(cases.queues())

    @get(
        "/v1/cases/{case_id:str}",
        sync_to_thread=False,
        summary="One case with its alerts, notes, attachments and history",
        tags=["cases"],
        exception_handlers=errors,
        responses={404: problem},
    )
    def get_case(case_id: FromPath[str]) -> CaseDetail:
        return cases.get(case_id)

    @post(
        "/v1/cases/{case_id:str}/actions",
        sync_to_thread=False,
        status_code=200,
        summary="Act on a case (claim, resolve, hold, block, list, snooze, note, …)",
        description=(
            "Body: one action, named by `action`: `claim`, `release`, `resolve` "
            "(`verdict`: fraud | not_fraud, filed as a label), `reopen`, `snooze` "
            "(`until_ts`), `hold` (`decision`: revoke | release, optional `hold_id`), "
            "`require_step_up`, `block`, `unblock`, `add_to_list` (`list_name`, "
            "`subject`, optional `kind`, `value`, `expires_ts`), `snooze_rule` (`rule`, "
            "`days` 1-180, `comment` required), `note` (`text`). Audited."
        ),
        tags=["cases"],
        exception_handlers=errors,
        operation_class=_body_operation(CaseAction, "Case action"),
        request_max_body_size=max_body,
        responses={400: problem, 404: problem, 409: problem, 422: problem},
    )
    def act(request: Request[Any, Any, Any], case_id: FromPath[str], body: RawBody) -> ActionResult:
        action: CaseAction = decode(body, CaseAction)
        return cases.act(case_id, action, _actor(request))

    @post(
        "/v1/cases/bulk",
        sync_to_thread=False,
        status_code=200,
        summary="One action on many cases, with a required comment",
        description="Each case's result in order: the action's result or its error.",
        tags=["cases"],
        exception_handlers=errors,
        operation_class=_body_operation(BulkAction, "Bulk case action"),
        request_max_body_size=max_body,
        responses={400: problem, 422: problem},
    )
    def bulk(request: Request[Any, Any, Any], body: RawBody) -> BulkAnswer:
        wanted: BulkAction = decode(body, BulkAction)
        done = cases.bulk(wanted.case_ids, wanted.action, wanted.comment, _actor(request))
        items = []
        for case_id, outcome in zip(dict.fromkeys(wanted.case_ids), done, strict=True):
            if isinstance(outcome, ActionResult):
                items.append(BulkItem(case_id, result=outcome))
            else:
                error = CaseProblem(error="refused", field=outcome.field, reason=outcome.reason)
                items.append(BulkItem(case_id, error=error))
        return BulkAnswer(items)

    @post(
        "/v1/cases/next",
        sync_to_thread=False,
        status_code=200,
        summary="Claim the most urgent open case of a queue",
        description="`case` is null when the queue has no open, unassigned case.",
        tags=["cases"],
        exception_handlers=errors,
        operation_class=_body_operation(NextCase, "Next case"),
        request_max_body_size=max_body,
        responses={400: problem, 409: problem, 422: problem},
    )
    def next_case(request: Request[Any, Any, Any], body: RawBody) -> NextCaseAnswer:
        wanted: NextCase = decode(body, NextCase)
        return NextCaseAnswer(cases.next_case(wanted.queue, _actor(request)))

    @get(
        "/v1/cases/{case_id:str}/str",
        sync_to_thread=False,
        summary="The case as a suspicious transaction report (JSON or CSV)",
        description="`format`: json (default) or csv. Subjects are tokens; amounts yuan strings.",
        tags=["cases"],
        exception_handlers=errors,
        responses={400: problem, 404: problem},
    )
    def export_str(case_id: FromPath[str], format: Text = None) -> Response[str]:
        fmt = literal_param(format, STR_FORMATS, "format") or "json"
        text = cases.export_str(case_id, fmt, institution=cases.config.institution)
        media = MediaType.JSON if fmt == "json" else "text/csv; charset=utf-8"
        return Response(content=text, media_type=media)

    @post(
        "/v1/cases/{case_id:str}/attachments",
        sync_to_thread=False,
        status_code=201,
        summary="Attach a small file (at most 1 MiB) to a case",
        description="The body is the file; `name` (query) its file name; Content-Type kept.",
        tags=["cases"],
        exception_handlers=errors,
        request_max_body_size=MAX_ATTACHMENT_BYTES + 1,
        responses={400: problem, 404: problem, 413: problem, 422: problem},
    )
    def attach(
        request: Request[Any, Any, Any], case_id: FromPath[str], body: RawBody, name: Text = None
    ) -> Attachment:
        content_type = request.headers.get("content-type", "application/octet-stream")
        if name is None:
            raise _Problem(422, "name", "give the file's name as `?name=`")
        return cases.attach_file(case_id, name, content_type, body, _actor(request))

    @get(
        "/v1/cases/{case_id:str}/attachments/{attachment_id:str}",
        sync_to_thread=False,
        summary="An attachment's bytes",
        tags=["cases"],
        exception_handlers=errors,
        responses={404: problem},
    )
    def attachment(case_id: FromPath[str], attachment_id: FromPath[str]) -> Response[bytes]:
        meta, data = cases.attachment(case_id, attachment_id)
        disposition = f'attachment; filename="{meta.name}"'
        return Response(
            content=data,
            media_type=meta.content_type,
            headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"},
        )

    return [
        list_cases,
        list_queues,
        get_case,
        act,
        bulk,
        next_case,
        export_str,
        attach,
        attachment,
    ]


def list_handlers(
    lists: ListService, max_body: int, clock: Callable[[], int]
) -> list[HTTPRouteHandler]:
    """The list routes, for `create_app`."""
    errors: ExceptionHandlersMap = {_Problem: _on_problem, ListError: _on_case_error}
    problem = documented_error(CaseProblem)

    @get("/v1/lists", sync_to_thread=False, summary="Every allow and deny list", tags=["lists"])
    def all_lists() -> ListIndex:
        return ListIndex(lists.lists())

    @post(
        "/v1/lists",
        sync_to_thread=False,
        status_code=201,
        summary="Create an allow or deny list",
        tags=["lists"],
        exception_handlers=errors,
        operation_class=_body_operation(NewList, "New list"),
        request_max_body_size=max_body,
        responses={400: problem, 409: problem, 422: problem},
    )
    def create_list(request: Request[Any, Any, Any], body: RawBody) -> ListInfo:
        new: NewList = decode(body, NewList)
        return lists.create(
            new.kind,
            new.name,
            new.subject,
            owner=new.owner,
            reason=new.reason,
            actor=_actor(request),
            now_ms=clock(),
        )

    @get(
        "/v1/lists/{kind:str}/{name:str}",
        sync_to_thread=False,
        summary="One list with its live entries (tokens, never clear numbers)",
        tags=["lists"],
        exception_handlers=errors,
        responses={400: problem, 404: problem},
    )
    def one_list(kind: FromPath[str], name: FromPath[str]) -> ListDetail:
        checked = _kind(kind)
        now = clock()
        return ListDetail(lists.get(checked, name), lists.entries(checked, name, now_ms=now))

    @post(
        "/v1/lists/{kind:str}/{name:str}/entries",
        sync_to_thread=False,
        status_code=201,
        summary="Put a card, device, phone, ID number, IP, payee, merchant or account on a list",
        description=(
            "Card, phone and ID numbers may be sent in clear: they are tokenized at once "
            "with the events' key and only the token is stored, audited and answered. "
            "Effective for the next event decided."
        ),
        tags=["lists"],
        exception_handlers=errors,
        operation_class=_body_operation(NewEntry, "New list entry"),
        request_max_body_size=max_body,
        responses={400: problem, 404: problem, 422: problem},
    )
    def add_entry(
        request: Request[Any, Any, Any], kind: FromPath[str], name: FromPath[str], body: RawBody
    ) -> ListEntry:
        checked = _kind(kind)
        new: NewEntry = decode(body, NewEntry)
        return lists.add(
            checked,
            name,
            new.value,
            reason=new.reason,
            actor=_actor(request),
            now_ms=clock(),
            expires_ms=new.expires_ms,
        )

    @delete(
        "/v1/lists/{kind:str}/{name:str}/entries/{entry_id:str}",
        sync_to_thread=False,
        status_code=200,
        summary="Take an entry off a list",
        tags=["lists"],
        exception_handlers=errors,
        responses={400: problem, 404: problem},
    )
    def remove_entry(
        request: Request[Any, Any, Any],
        kind: FromPath[str],
        name: FromPath[str],
        entry_id: FromPath[str],
        reason: Text = None,
    ) -> ListEntry:
        checked = _kind(kind)
        why = reason or "removed through the API"
        return lists.remove(
            checked, name, entry_id, reason=why, actor=_actor(request), now_ms=clock()
        )

    return [all_lists, create_list, one_list, add_entry, remove_entry]


def _kind(kind: str) -> ListKind:
    checked = literal_param(kind, LIST_KINDS, "kind")
    assert checked is not None
    return checked
