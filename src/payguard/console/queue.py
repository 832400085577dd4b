"""The queue and the case view over the case service (payguard.cases), and the case
actions: every one goes through `CaseService.act` (what `POST /v1/cases/{id}/actions`
runs), which carries it out and writes the audit entry with the user as the actor.

A form posts its action's fields by the names of the action structs in `cases.types`
(`verdict`, `comment`, `hold_id`, `list_name`, …); they are converted with msgspec, so a
bad value is answered 422 naming the field, as the API answers it.
"""

from typing import Any, Final

import msgspec
from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from payguard.auth import Actor
from payguard.cases import (
    CASE_STATUSES,
    QUEUE_ORDERS,
    CaseAction,
    CaseDetail,
    CaseError,
    CaseQuery,
    CaseService,
    QueueSummary,
)
from payguard.console.entities import timeline
from payguard.console.session import Session
from payguard.console.web import (
    PREFIX,
    ConsoleRefusal,
    ConsoleServices,
    checked_form,
    render_page,
    session_of,
)
from payguard.events import EventError, parse_ts
from payguard.holds import Hold

HOUR_MS: Final = 3_600_000
PAGE: Final = 50
_INT_FIELDS: Final = frozenset({"days"})
_TIME_FIELDS: Final = frozenset({"until_ts", "expires_ts"})


def _cases(services: ConsoleServices) -> CaseService:
    if services.cases is None:
        raise ConsoleRefusal(404, "cases: this server runs no case service")
    return services.cases


def actor_of(session: Session) -> Actor:
    return Actor(f"user:{session.login}", session.login)


def queue_ages(services: ConsoleServices) -> list[dict[str, Any]]:
    """Per queue, hours since its oldest open case was opened (the dashboard's bars)."""
    if services.cases is None:
        return []
    now = services.clock()
    return [
        {
            "queue": q.queue,
            "open": q.open,
            "oldest_hours": 0 if q.oldest_open_ts is None else (now - q.oldest_open_ts) / HOUR_MS,
        }
        for q in queue_summaries(services)
    ]


def queue_summaries(services: ConsoleServices) -> list[QueueSummary]:
    """Per queue, its counts and held money, counted at most every few seconds: a GROUP BY
    over every case not closed costs tens of ms per 100,000 cases."""
    summaries: list[QueueSummary] = services.queue_summary.get("all", _cases(services).queues)
    return summaries


def parse_query(params: dict[str, str]) -> CaseQuery:
    """The queue filters as a CaseQuery, or 422 naming the bad one. Without a status the
    queue shows the open cases (the work waiting); `status=any` shows every status."""
    wanted = params.get("status", "open") or "open"
    status = None if wanted == "any" else wanted
    if status is not None and status not in CASE_STATUSES:
        raise ConsoleRefusal(422, f"status: expected one of {', '.join(CASE_STATUSES)}")
    order = params.get("order") or "time_left"
    if order not in QUEUE_ORDERS:
        raise ConsoleRefusal(422, f"order: expected one of {', '.join(QUEUE_ORDERS)}")
    return msgspec.convert(
        {
            "queue": params.get("queue") or None,
            "status": status,
            "entity_id": params.get("entity_id") or None,
            "order": order,
            "limit": PAGE,
            "cursor": params.get("cursor") or None,
        },
        CaseQuery,
    )


def action_of(fields: dict[str, str]) -> CaseAction:
    """The form's fields as a case action (tagged by `action`), or 422 naming the field."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        value = value.strip()
        if not value:
            continue
        if name in _INT_FIELDS:
            if not value.isdigit():
                raise ConsoleRefusal(422, f"{name}: a whole number")
            body[name] = int(value)
        elif name in _TIME_FIELDS:
            body[name] = _time(value, name)
        else:
            body[name] = value
    try:
        action: CaseAction = msgspec.convert(body, CaseAction)
    except msgspec.ValidationError as exc:
        raise ConsoleRefusal(422, _field_reason(str(exc))) from None
    return action


def _time(value: str, name: str) -> int:
    """A `datetime-local` value (read as UTC) or RFC 3339 time as epoch ms."""
    text = value if value[-1:] == "Z" or "+" in value[10:] else value + ":00Z"
    try:
        return parse_ts(text)
    except EventError as exc:
        raise ConsoleRefusal(422, f"{name}: {exc.reason}") from None


def _field_reason(message: str) -> str:
    """msgspec's `Expected … - at `$.comment`` as `comment: Expected …`."""
    reason, _, where = message.partition(" - at `$.")
    return f"{where.rstrip('`')}: {reason}" if where else message


def case_context(services: ConsoleServices, detail: CaseDetail) -> dict[str, Any]:
    """What the case view shows beside the case: the accounts its alerts name, the first
    one's timeline, and the holds of the case's alerts as they stand now."""
    engine, now = services.engine, services.clock()
    case = detail.case
    accounts = list(dict.fromkeys(a.user_id for a in detail.alerts if a.user_id is not None))
    if case.entity_kind == "account":
        accounts = [case.entity_id, *(a for a in accounts if a != case.entity_id)]
    user_id = accounts[0] if accounts else None
    holds = _holds_of(services, detail, accounts)
    cards = list(dict.fromkeys(a.card for a in detail.alerts if a.card is not None))
    return {
        "accounts": accounts,
        "user_id": user_id,
        "rows": timeline(services, user_id) if user_id is not None else [],
        "holds": holds,
        "cards": cards,
        "rules": [c.rule.id for c in engine.ruleset.rules],
        "controls": _cases(services).controls_of(case.entity_kind, case.entity_id),
        "now": now,
    }


def _holds_of(services: ConsoleServices, detail: CaseDetail, accounts: list[str]) -> list[Hold]:
    """The case's own holds and the other holds of its accounts, newest first, as they
    stand now: a review case on an account shows the money that account has waiting."""
    engine, now = services.engine, services.clock()
    found: dict[str, Hold] = {}
    for hold_id in (a.hold_id for a in detail.alerts if a.hold_id is not None):
        hold = engine.holds.get(hold_id)
        if hold is not None:
            found[hold_id] = hold.as_of(now)
    for user_id in accounts[:5]:
        for hold in engine.holds.find(user_id=user_id, now_ms=now, limit=20):
            found.setdefault(hold.hold_id, hold)
    return sorted(found.values(), key=lambda h: h.placed_ts, reverse=True)


def _refusal(exc: CaseError) -> ConsoleRefusal:
    return ConsoleRefusal(exc.status, f"{exc.field}: {exc.reason}")


def case_handlers(services: ConsoleServices) -> list[HTTPRouteHandler]:
    signer = services.signer

    @get("/queue", sync_to_thread=False, opt={"scope": "cases:read"})
    def queue_page(request: Request[Any, Any, Any]) -> Response[str]:
        params = {k: v.strip() for k, v in request.query_params.items() if isinstance(v, str)}
        query = parse_query(params)
        cases = _cases(services)
        try:
            page = cases.find(query)
        except CaseError as exc:
            raise _refusal(exc) from None
        return render_page(
            "queue.html", session_of(request), signer, page=page, queues=queue_summaries(services),
            params=params, statuses=CASE_STATUSES, orders=QUEUE_ORDERS, now=services.clock(),
        )  # fmt: skip

    @post("/queue/next", opt={"scope": "cases:write"})
    async def next_case(request: Request[Any, Any, Any]) -> Response[str]:
        """Claim the most urgent open case of a queue and open it."""
        fields = await checked_form(request, signer)
        session = session_of(request)
        try:
            case = _cases(services).next_case(fields.get("queue", ""), actor_of(session))
        except CaseError as exc:
            raise _refusal(exc) from None
        target = f"{PREFIX}/cases/{case.case_id}" if case is not None else f"{PREFIX}/queue"
        return Response(content="", status_code=303, headers={"Location": target})

    @get("/cases/{case_id:str}", sync_to_thread=False, opt={"scope": "cases:read"})
    def case_page(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Response[str]:
        try:
            detail = _cases(services).get(case_id)
        except CaseError as exc:
            raise _refusal(exc) from None
        return render_page(
            "case.html", session_of(request), signer, detail=detail, case=detail.case,
            **case_context(services, detail),
        )  # fmt: skip

    @post("/cases/{case_id:str}/actions", opt={"scope": "cases:write"})
    async def act(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Response[str]:
        """Carry out one action; the page reloads the case (its own URL, PRG)."""
        fields = await checked_form(request, signer)
        session = session_of(request)
        action = action_of(fields)
        if _needs_lists_scope(action) and not _may(services, session, "lists:write"):
            raise ConsoleRefusal(403, f"your role ({session.role}) may not change lists")
        try:
            result = _cases(services).act(case_id, action, actor_of(session))
        except CaseError as exc:
            raise _refusal(exc) from None
        target = f"{PREFIX}/cases/{case_id}?done={result.action}"
        return Response(content="", status_code=303, headers={"Location": target})

    return [queue_page, next_case, case_page, act]


def _needs_lists_scope(action: CaseAction) -> bool:
    return str(type(action).__struct_config__.tag) == "add_to_list"


def _may(services: ConsoleServices, session: Session, scope: str) -> bool:
    user = services.users.get(session.login)
    return user is not None and user.allows(scope)
