"""Decision search, an account's timeline, its identity graph, and hold actions.

Search runs `outcomes.search` (what `GET /v1/decisions` runs) for account, action, state,
rule and time; a card token or device narrows its pages further here, reading up to
`_MAX_PAGES` pages so a rare token costs a bounded scan. The timeline reads the account's
records newest first from the event log, each decision with its reasons, the features it
read and the chain matches its rules named; holds come from the hold book.
"""

from typing import Any, Final

import msgspec
from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery

from payguard.console.web import (
    ConsoleRefusal,
    ConsoleServices,
    audit_action,
    checked_form,
    render_page,
    required,
    session_of,
)
from payguard.decision import Decision
from payguard.events import Event, EventError, parse_ts
from payguard.holds import HoldError, HoldState
from payguard.outcomes import LIFECYCLE_STATES, DecisionSearch, DecisionView, search
from payguard.store import LogFilter
from payguard.types import ACTIONS

_PAGE: Final = 50
_MAX_PAGES: Final = 20
TIMELINE_LIMIT: Final = 200
_GRAPH_KINDS: Final = ("account", "identity", "phone", "device", "card", "payee", "ip")
_STAGES: Final = sorted({s.split(":")[0] for s in LIFECYCLE_STATES} | set(LIFECYCLE_STATES))


class TimelineRow(msgspec.Struct, frozen=True):
    """One record of an account's history as the case view shows it."""

    seq: int
    event: Event
    decision: Decision
    state: str
    outcomes: list[Any]


def _time_param(value: str, name: str) -> int | None:
    if not value:
        return None
    try:
        return parse_ts(int(value) if value.isdigit() else value)
    except EventError as exc:
        raise ConsoleRefusal(422, f"{name}: {exc.reason}") from None


def _choice(value: str, allowed: list[str] | tuple[str, ...], name: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise ConsoleRefusal(422, f"{name}: expected one of {', '.join(allowed)}")
    return value


def parse_filters(params: dict[str, str]) -> tuple[DecisionSearch, str | None, str | None]:
    """The search form's fields as a search, plus the card token and device filters."""
    since = _time_param(params.get("since", ""), "since")
    until = _time_param(params.get("until", ""), "until")
    if since is not None and until is not None and since >= until:
        raise ConsoleRefusal(422, "until: must be after since")
    query = DecisionSearch(
        user_id=params.get("user_id") or None,
        action=_choice(params.get("action", ""), list(ACTIONS), "action"),
        state=_choice(params.get("state", ""), _STAGES, "state"),
        rule=params.get("rule") or None,
        since_ms=since,
        until_ms=until,
        limit=_PAGE,
    )
    return query, params.get("card") or None, params.get("device") or None


def _matches(
    view: DecisionView, events: dict[str, Event], card: str | None, device: str | None
) -> bool:
    event = events.get(view.event_id)
    if event is None:
        return False
    if card is not None and (event.card is None or event.card.token != card):
        return False
    return device is None or event.device_id == device


def find_decisions(
    services: ConsoleServices, query: DecisionSearch, card: str | None, device: str | None
) -> list[DecisionView]:
    """Up to a page of matching decisions, newest first."""
    engine, now = services.engine, services.clock()
    if card is None and device is None:
        return search(engine.recorder, engine.outcomes, engine.holds, query, now).decisions
    found: list[DecisionView] = []
    for _ in range(_MAX_PAGES):
        page = search(engine.recorder, engine.outcomes, engine.holds, query, now)
        events = {
            v.event_id: e
            for v in page.decisions
            if (e := engine.recorder.get_event(v.event_id)) is not None
        }
        found += [v for v in page.decisions if _matches(v, events, card, device)]
        if len(found) >= _PAGE or page.next_cursor is None:
            break
        query = msgspec.structs.replace(query, before_seq=int(page.next_cursor))
    return found[:_PAGE]


def timeline(services: ConsoleServices, user_id: str) -> list[TimelineRow]:
    """The account's newest records (decisions and the outcomes filed), newest first."""
    engine, now = services.engine, services.clock()
    rows: list[TimelineRow] = []
    for seq, event, decision in engine.recorder.newest(None, LogFilter(user_id=user_id)):
        state = engine.outcomes.state(decision, engine.holds, now)
        history = engine.outcomes.history(event.event_id)
        rows.append(TimelineRow(seq, event, decision, state, history))
        if len(rows) == TIMELINE_LIMIT:
            break
    return rows


def entity_handlers(services: ConsoleServices) -> list[HTTPRouteHandler]:
    signer, engine = services.signer, services.engine

    @get("/decisions", sync_to_thread=False, opt={"scope": "decisions:read"})
    def decisions_page(request: Request[Any, Any, Any]) -> Response[str]:
        params = {k: v.strip() for k, v in request.query_params.items() if isinstance(v, str)}
        query, card, device = parse_filters(params)
        found = find_decisions(services, query, card, device) if params else []
        template = "decision_rows.html" if request.headers.get("hx-request") else "decisions.html"
        return render_page(
            template,
            session_of(request),
            signer,
            params=params,
            found=found,
            searched=bool(params),
            actions=ACTIONS,
            states=_STAGES,
        )

    @get("/accounts/{user_id:str}", sync_to_thread=False, opt={"scope": "decisions:read"})
    def account_page(request: Request[Any, Any, Any], user_id: FromPath[str]) -> Response[str]:
        rows = timeline(services, user_id)
        holds = engine.holds.find(user_id=user_id, now_ms=services.clock(), limit=50)
        return render_page(
            "account.html",
            session_of(request),
            signer,
            user_id=user_id,
            rows=rows,
            holds=holds,
            case=None,
        )

    @get("/graph/{kind:str}/{entity_id:str}", sync_to_thread=False, opt={"scope": "decisions:read"})
    def graph_json(
        kind: FromPath[str], entity_id: FromPath[str], depth: FromQuery[int] = 1
    ) -> dict[str, Any]:
        """The neighbourhood Cytoscape draws; a click on a node asks for its own."""
        if kind not in _GRAPH_KINDS:
            raise ConsoleRefusal(422, f"kind: expected one of {', '.join(_GRAPH_KINDS)}")
        found = engine.neighbourhood(kind, entity_id, max(1, min(depth, 2)))
        return found if found is not None else {"nodes": [], "edges": [], "found": False}

    @post("/holds/{hold_id:str}", opt={"scope": "holds:write"})
    async def change_hold(request: Request[Any, Any, Any], hold_id: FromPath[str]) -> Response[str]:
        """Revoke or release a hold from the case view (as `POST /v1/holds` by staff)."""
        fields = await checked_form(request, signer)
        session = session_of(request)
        action = fields.get("action")
        if action not in ("revoke", "release"):
            raise ConsoleRefusal(422, "action: expected revoke or release")
        note = required(fields, "note", max_len=512)
        state: HoldState = "revoked" if action == "revoke" else "released"
        try:
            hold = engine.resolve_hold(
                hold_id, state, at_ms=services.clock(), by="staff", note=note
            )
        except HoldError as exc:
            raise ConsoleRefusal(404 if exc.status == 404 else 409, f"hold: {exc.reason}") from None
        audit_action(
            services, session, f"hold.{action}", hold_id, {"state": "held"},
            {"state": hold.state, "by": "staff", "note": note},
        )  # fmt: skip
        return render_page("hold_row.html", session, signer, hold=hold)

    return [decisions_page, account_page, graph_json, change_hold]
