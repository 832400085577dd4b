"""The HTTP edge: a Litestar app over one `Engine` (contract in docs/decisions.md).

`create_app` only wires: each resource's routes live in their own module (`events`,
`decisions`, `holds`, `graph`, `rulesets`, `otp`, `webhooks`, `operations`, and the
keys and audit routes in `access`), the error answers in `errors`. Handlers run on the
event-loop thread (`sync_to_thread=False`, or coroutines): the engine is not thread-safe,
and one decision costs microseconds, so serialising decisions on the loop is both the
simplest correct choice and the fastest one. Only the event log's commits leave the loop,
for the group committer's writer thread (`commits`), so that one fsync answers many
requests.
"""

import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from payguard.api.access import (
    AuthProblem,
    access_guard,
    audit_handlers,
    on_auth_problem,
    openapi_security,
)
from payguard.api.cases import case_handlers, list_handlers
from payguard.api.commits import GroupCommitter
from payguard.api.decisions import decision_handlers
from payguard.api.errors import ApiError, exception_handlers
from payguard.api.events import EventRoutes
from payguard.api.fast_events import PATH as FAST_PATH
from payguard.api.fast_events import FastEventRoute
from payguard.api.graph import graph_handlers
from payguard.api.hold_expiry import HoldExpiry
from payguard.api.holds import hold_handlers
from payguard.api.loop_watch import LoopWatch
from payguard.api.operations import operation_handlers
from payguard.api.otp import otp_handlers
from payguard.api.publication import Publication
from payguard.api.rulesets import ruleset_handlers
from payguard.api.schema_page import OperationIndex
from payguard.api.webhooks import webhook_handlers
from payguard.auth import Access
from payguard.board import open_board
from payguard.cases import CaseService
from payguard.config import Settings
from payguard.console import Console
from payguard.engine import Engine
from payguard.lists import ListService
from payguard.otp import OtpService
from payguard.outcomes import OutcomeListener
from payguard.webhooks import Webhooks

__all__ = ["FROM_SETTINGS", "ApiError", "create_app", "wall_clock_ms"]

FROM_SETTINGS: Final = "settings"
"""`create_app(webhooks=...)` default: webhooks as configured (none without endpoints)."""
_DESCRIPTION: Final = (
    "Real-time risk decisions for quick payments. Decision contract: "
    "docs/decisions.md; event contract v1: docs/events.md."
)


def wall_clock_ms() -> int:
    """The server's clock in epoch ms: future-dated events are refused against it."""
    return time.time_ns() // 1_000_000


def create_app(
    engine: Engine,
    *,
    clock: Callable[[], int] = wall_clock_ms,
    on_shutdown: Sequence[Callable[[], Any]] = (),
    debug: bool = False,
    webhooks: Webhooks | Literal["settings"] | None = FROM_SETTINGS,
    outcome_listeners: Sequence[OutcomeListener] = (),
    access: Access | Literal["settings"] = FROM_SETTINGS,
    cases: CaseService | Literal["settings"] = FROM_SETTINGS,
    console: bool = True,
    fast_events: bool = True,
) -> Litestar:
    """The payguard HTTP API over `engine`; the caller owns the engine unless it passes
    `engine.close` in `on_shutdown` (as `serve` does). Webhooks (docs/webhooks.md) are
    built from the settings unless given; the app starts their dispatcher on startup and
    closes them on shutdown, after `on_shutdown`. Each of `outcome_listeners` is called
    `(decision_event_id, old_state, new_state)` on every lifecycle change, once it is
    durable. Every route needs an API key with its scope (api/access.py,
    docs/security.md): `access` holds the keys, rate limits and audit log, opened from
    `<data_dir>/auth.db` (and closed on shutdown) unless given. `cases` (with its lists)
    is opened on the configured case store (docs/cases.md) and attached to the engine
    unless given; the caller of a given one attaches and closes it. With `console`, the
    analyst console is served under `/console/` (docs/console.md) over the same services:
    it logs people in with its own session cookie, so the key guard leaves its routes to it.
    With `fast_events` (the default), `POST /v1/events` is answered by a plain ASGI route
    in front of Litestar with the same answers at a fraction of the cost
    (api/fast_events.py); without, by Litestar's handler alone (for comparisons)."""
    settings = engine.settings
    otp = OtpService.for_engine(engine)
    hooks = Webhooks.open(settings) if webhooks == FROM_SETTINGS else webhooks
    if hooks is not None:
        hooks.attach(engine)
    for listener in outcome_listeners:
        engine.outcomes.book.subscribe(listener)
    gate = _open_access(settings) if access == FROM_SETTINGS else access
    commits = GroupCommitter(engine)
    events = EventRoutes(engine, commits, gate.audit, clock)
    closers = [gate.close] if access == FROM_SETTINGS else []
    if cases == FROM_SETTINGS:
        lists = ListService.open(
            settings.data_dir, settings.tokenizer(engine.features.knows), gate.audit
        )
        work = CaseService.open(engine, lists, gate.audit, clock=clock)
        work.attach()
        closers = [work.close, lists.close, *closers]
    else:
        work = cases
    publication = _publication(engine, work.lists)
    expiry = HoldExpiry(engine, clock, before=work.enforce_sla)
    watch = LoopWatch()
    pages = Console(engine, gate.audit, data_dir=settings.data_dir, cases=work) if console else None
    components, security = openapi_security()
    app = _App(
        route_handlers=[
            *events.handlers(),
            *graph_handlers(engine),
            *ruleset_handlers(engine, gate.audit),
            *operation_handlers(engine, hooks),
            *otp_handlers(engine, otp),
            *hold_handlers(engine, gate.audit),
            *webhook_handlers(hooks),
            *decision_handlers(engine),
            *audit_handlers(gate),
            *case_handlers(work),
            *list_handlers(work.lists, settings.max_body_bytes, clock),
            *([pages.router()] if pages is not None else []),
        ],
        guards=[access_guard(gate)],
        exception_handlers={AuthProblem: on_auth_problem, **exception_handlers(engine.metrics)},
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="payguard",
            version="1",
            description=_DESCRIPTION,
            components=components,
            security=security,
            render_plugins=[OperationIndex()],
        ),
        on_startup=[
            engine.prepare,
            engine.heap.serving,
            watch.start,
            *([hooks.start] if hooks is not None else []),
            expiry.start,
            *([publication.start] if publication is not None else []),
        ],
        on_shutdown=[
            watch.stop,
            *([publication.stop] if publication is not None else []),
            expiry.stop,
            commits.close,
            *on_shutdown,
            otp.close,
            *([hooks.close] if hooks is not None else []),
            *closers,
            *([pages.close] if pages is not None else []),
        ],
        request_max_body_size=settings.max_body_bytes,
        debug=debug,
    )
    if fast_events and not _wraps_requests(app):
        app.fast_events = FastEventRoute(
            events, gate, engine.metrics, settings.max_body_bytes, app.litestar_call
        )
    return app


def _wraps_requests(app: Litestar) -> bool:
    """Whether the app has anything that acts on every request (middleware, hooks, CORS,
    compression, host or CSRF checks) that the fast route would step around: then
    Litestar answers `POST /v1/events` too, until the fast route does the same."""
    return bool(
        app.middleware
        or app.before_send
        or app.before_request
        or app.after_request
        or app.after_response
        or app.cors_config
        or app.compression_config
        or app.allowed_hosts
        or app.csrf_config
    )


class _App(Litestar):
    """Litestar with `POST /v1/events` answered by `fast_events` when it is set (the
    hot route as plain ASGI, api/fast_events.py); everything else is Litestar's."""

    fast_events: FastEventRoute | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        fast = self.fast_events
        if (
            fast is not None
            and scope["type"] == "http"
            and scope["path"] == FAST_PATH
            and scope["method"] == "POST"
        ):
            await fast(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def litestar_call(self, scope: Any, receive: Any, send: Any) -> None:
        """The request as Litestar alone answers it (what the fast route leaves to it)."""
        await super().__call__(scope, receive, send)


def _publication(engine: Engine, lists: ListService) -> Publication | None:
    """The worker's side of the publication board, when one is configured (the
    `publish_url` setting, else the Postgres event log's): the board's ruleset is taken
    now, before the first request."""
    settings = engine.settings
    url = settings.publish_url or settings.log_dsn
    if not url:
        return None
    publication = Publication(engine, lists, open_board(url))
    publication.adopt()
    return publication


def _open_access(settings: Settings) -> Access:
    return Access.open(
        settings.data_dir, rate_per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst
    )
