"""`GET /v1/decisions` and `GET /v1/decisions/{event_id}`: recorded decisions with their
lifecycle (docs/decisions.md, "Lifecycle"), over the engine's event log and outcome book.

Query parameters are checked here and a bad one is answered 400 naming it, in the API's
`{"error", "field", "reason"}` body. Hold states are read as of the wall clock (a hold past
its release time reads as released), as `GET /v1/holds` reads them.
"""

import time
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter
from litestar.types import ExceptionHandlersMap

from payguard.api.errors import documented_error, literal_param
from payguard.engine import Engine
from payguard.events import EventError, parse_ts
from payguard.outcomes import (
    LIFECYCLE_STATES,
    DecisionPage,
    DecisionSearch,
    DecisionView,
    search,
    view,
)
from payguard.types import ACTIONS

Limit = Annotated[int, QueryParameter(ge=1, le=500, description="page size, 1 to 500")]
Text = Annotated[str | None, QueryParameter(max_length=256)]
STATE_FILTERS: frozenset[str] = frozenset(LIFECYCLE_STATES) | {
    state.split(":")[0] for state in LIFECYCLE_STATES
}
"""A whole state (`challenge:passed`) or its stage (`challenge`, `hold`, `review`)."""


class DecisionProblem(msgspec.Struct):
    """400: a bad query parameter, named by `field`."""

    error: str
    field: str
    reason: str


class _Problem(Exception):
    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.field, self.reason = status, field, reason


def _on_problem(_: Request[Any, Any, Any], exc: _Problem) -> Response[bytes]:
    """400 names the parameter; 404 keeps the body it always had (`{"error": "not_found"}`)."""
    if exc.status == 404:
        body = msgspec.json.encode({"error": "not_found"})
    else:
        problem = DecisionProblem(error="bad_request", field=exc.field, reason=exc.reason)
        body = msgspec.json.encode(problem)
    return Response(content=body, status_code=exc.status, media_type=MediaType.JSON)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_search(params: dict[str, str | None], limit: int) -> DecisionSearch:
    """The query parameters as a search, or _Problem naming the first bad one."""
    action, state, cursor = params.get("action"), params.get("state"), params.get("cursor")
    action = literal_param(action, ACTIONS, "action")
    state = literal_param(state, sorted(STATE_FILTERS), "state")
    if cursor is not None and not (cursor.isascii() and cursor.isdigit() and len(cursor) < 19):
        raise _Problem(400, "cursor", "not a cursor this API returned (`next_cursor`)")
    since, until = _time(params, "since"), _time(params, "until")
    if since is not None and until is not None and since >= until:
        raise _Problem(400, "until", "must be after `since`")
    return DecisionSearch(
        user_id=params.get("user_id"),
        action=action,
        state=state,
        rule=params.get("rule"),
        since_ms=since,
        until_ms=until,
        limit=limit,
        before_seq=int(cursor) if cursor is not None else None,
    )


def _time(params: dict[str, str | None], name: str) -> int | None:
    """An event time bound: epoch ms digits or RFC 3339 with an offset."""
    value = params.get(name)
    if value is None:
        return None
    try:
        return parse_ts(int(value) if value.isascii() and value.isdigit() else value)
    except EventError as exc:
        raise _Problem(400, name, exc.reason) from None


def decision_handlers(engine: Engine) -> list[HTTPRouteHandler]:
    """The decision routes over `engine`, for `create_app`."""
    errors: ExceptionHandlersMap = {_Problem: _on_problem}
    problem = documented_error(DecisionProblem)

    @get(
        "/v1/decisions",
        sync_to_thread=False,
        summary="List and search decisions, newest first",
        description=(
            "Filters: `user_id`, `action`, `state` (a lifecycle state such as "
            "`challenge:passed`, or a stage: `decided`, `challenge`, `hold`, `review`), "
            "`rule` (a rule a reason names), `since` / `until` (event time, epoch ms or RFC "
            "3339; since inclusive, until exclusive). `limit` per page (default 50); pass "
            "`next_cursor` back as `cursor` for the next page (null: no more). A page may "
            "hold fewer than `limit` with a cursor when the scan of one request ended. "
            "Outcome events themselves are not listed; they are in `outcomes`."
        ),
        tags=["decisions"],
        exception_handlers=errors,
        responses={400: problem},
    )
    def list_decisions(
        request: Request[Any, Any, Any],
        user_id: Text = None,
        action: Text = None,
        rule: Text = None,
        since: Text = None,
        until: Text = None,
        cursor: Text = None,
        limit: Limit = 50,
    ) -> DecisionPage:
        params = {
            "user_id": user_id,
            "action": action,
            "rule": rule,
            "since": since,
            "until": until,
            "cursor": cursor,
            "state": request.query_params.get("state"),  # Litestar reserves `state`
        }
        query = parse_search(params, limit)
        return search(engine.recorder, engine.outcomes, engine.holds, query, _now_ms())

    @get(
        "/v1/decisions/{event_id:str}",
        sync_to_thread=False,
        summary="One recorded decision with its lifecycle",
        description=(
            "The decision recorded for `event_id`, with the event's `type`, `user_id` and "
            "`ts`, its lifecycle `state` and the `outcomes` filed against it. "
            "`?explain=1` adds `features`, `shadow` and `rule_errors`."
        ),
        tags=["decisions"],
        exception_handlers=errors,
        responses={400: problem, 404: ResponseSpec(dict[str, str], description="Unknown event_id")},
    )
    def get_decision(event_id: FromPath[str], explain: Text = None) -> DecisionView:
        stored = engine.recorder.lookup(event_id)
        event = engine.recorder.get_event(event_id)
        if stored is None or event is None:
            raise _Problem(404, "event_id", "no decision is recorded for this event_id")
        shown = view(event, stored.decision, engine.outcomes, engine.holds, _now_ms())
        if explain is not None and explain.lower() in ("1", "true", "yes", "on"):
            full = stored.decision.public(explain=True)
            shown = msgspec.structs.replace(
                shown,
                features=full.features,
                shadow=full.shadow,
                rule_errors=full.rule_errors,
                units=full.units,
            )
        return shown

    return [list_decisions, get_decision]
