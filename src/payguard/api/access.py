"""Who may call which route: the one table of route scopes, the guard that enforces it
(authentication, per-key rate limit, scope), and `GET /v1/audit` (docs/security.md).

Every route is listed in `ROUTE_SCOPES` under its method and path template, with the
scope a key needs or `OPEN`. The guard runs on every route of the app and denies any
route the table does not name — for every key, admin included — so a new route is
closed until someone decides its scope here (tests/auth walk the app's routes and fail
on an undeclared one). Open routes are liveness, metrics and the OpenAPI document: they
reveal no event, decision or PII, and monitoring must reach them without a secret.

Answers: 401 with `WWW-Authenticate: Bearer` for a missing, malformed, unknown, expired
or revoked key; 429 with `Retry-After` when the key's bucket is empty; 403 for a key
without the route's scope. Bodies are JSON naming the reason; nothing logs a secret.
"""

import asyncio
import logging
import re
import time
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import MediaType, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme
from litestar.params import QueryParameter

from payguard.api.errors import documented_error
from payguard.auth import Access, ApiKey, AuditEntry, AuditLog, AuthRefused, Scope
from payguard.events import LABEL_TYPES, Event

log = logging.getLogger("payguard.api")

OPEN: Final = "open"
Requirement = Scope | Literal["open"]
ROUTE_SCOPES: Final[dict[tuple[str, str], Requirement]] = {
    ("POST", "/v1/events"): "events:write",
    ("POST", "/v1/events/batch"): "events:write",
    ("POST", "/v1/otp/send"): "events:write",
    ("POST", "/v1/otp/verify"): "events:write",
    ("GET", "/v1/decisions"): "decisions:read",
    ("GET", "/v1/decisions/{event_id}"): "decisions:read",
    ("GET", "/v1/entities/{kind}/{entity_id}/graph"): "decisions:read",
    ("GET", "/v1/holds"): "decisions:read",
    ("GET", "/v1/holds/{hold_id}"): "decisions:read",
    ("POST", "/v1/holds"): "holds:write",
    ("GET", "/v1/ruleset"): "rules:admin",
    ("PUT", "/v1/ruleset"): "rules:admin",
    ("GET", "/v1/webhooks/deliveries"): "admin",
    ("GET", "/v1/webhooks/deliveries/{delivery_id}"): "admin",
    ("POST", "/v1/webhooks/deliveries/{delivery_id}/retry"): "admin",
    ("GET", "/v1/audit"): "admin",
    ("GET", "/v1/cases"): "cases:read",
    ("GET", "/v1/cases/queues"): "cases:read",
    ("GET", "/v1/cases/{case_id}"): "cases:read",
    ("GET", "/v1/cases/{case_id}/str"): "cases:read",
    ("GET", "/v1/cases/{case_id}/attachments/{attachment_id}"): "cases:read",
    ("POST", "/v1/cases/{case_id}/actions"): "cases:write",
    ("POST", "/v1/cases/{case_id}/attachments"): "cases:write",
    ("POST", "/v1/cases/bulk"): "cases:write",
    ("POST", "/v1/cases/next"): "cases:write",
    ("GET", "/v1/lists"): "cases:read",
    ("GET", "/v1/lists/{kind}/{name}"): "cases:read",
    ("POST", "/v1/lists"): "lists:write",
    ("POST", "/v1/lists/{kind}/{name}/entries"): "lists:write",
    ("DELETE", "/v1/lists/{kind}/{name}/entries/{entry_id}"): "lists:write",
    ("GET", "/healthz"): OPEN,
    ("GET", "/readyz"): OPEN,
    ("GET", "/metrics"): OPEN,
    ("GET", "/schema"): OPEN,
    ("GET", "/schema/openapi.json"): OPEN,
    ("GET", "/schema/openapi.yaml"): OPEN,
    ("GET", "/schema/openapi.yml"): OPEN,
    ("GET", "/schema/swagger"): OPEN,
    ("GET", "/schema/redoc"): OPEN,
    ("GET", "/schema/rapidoc"): OPEN,
    ("GET", "/schema/elements"): OPEN,
    ("GET", "/schema/oauth2-redirect.html"): OPEN,
    ("GET", "/schema/{path}"): OPEN,
}
"""(method, path template as OpenAPI writes it) → the scope a key needs, or OPEN. HEAD follows
GET's entry; OPTIONS is open everywhere (it answers only the allowed methods)."""
_PARAM_TYPE: Final = re.compile(r"\{(\w+):\w+\}")
BEARER: Final = "bearerAuth"
LABEL_SCOPE: Final = "labels:write"
_REALM: Final = 'Bearer realm="payguard"'
_KEY_STATE: Final = "payguard_api_key"
_REASONS: Final[dict[str, str]] = {
    "missing": "send Authorization: Bearer <api key>",
    "malformed": "the bearer token is not a payguard API key",
    "unknown": "no such API key",
    "expired": "the API key has expired",
    "revoked": "the API key has been revoked",
}


class AuthProblem(Exception):
    """401, 403 or 429 with a JSON body and its headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        super().__init__(body.get("reason", ""))
        self.status, self.body, self.headers = status, body, headers


_encode = msgspec.json.Encoder().encode


def on_auth_problem(_: Request[Any, Any, Any], exc: AuthProblem) -> Response[bytes]:
    return Response(
        content=_encode(exc.body),
        status_code=exc.status,
        media_type=MediaType.JSON,
        headers=exc.headers,
    )


def route_template(path: str) -> str:
    """`/v1/holds/{hold_id:str}` → `/v1/holds/{hold_id}` (how the table names routes)."""
    return _PARAM_TYPE.sub(r"{\1}", path)


CONSOLE_PREFIX: Final = "/console"
"""The analyst console's routes: it authenticates people with its own signed session
cookie, checks each page's scope against their role and CSRF tokens on every change
(payguard.console), so API keys are not asked for there."""


def _in_console(path_template: str) -> bool:
    return path_template == CONSOLE_PREFIX or path_template.startswith(CONSOLE_PREFIX + "/")


def required_scope(method: str, path_template: str) -> Requirement | None:
    """The table's entry for a route, or None if it is undeclared."""
    if method == "OPTIONS" or _in_console(path_template):
        return OPEN
    lookup = "GET" if method == "HEAD" else method
    return ROUTE_SCOPES.get((lookup, route_template(path_template)))


def bearer_secret(header: str | None) -> str | None:
    """The secret of an `Authorization: Bearer <secret>` header (None without one);
    another scheme gives a string the authenticator refuses as malformed."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else f"not bearer: {scheme[:20]}"


def _unauthorized(refusal: AuthRefused) -> AuthProblem:
    challenge = _REALM if refusal.reason == "missing" else f'{_REALM}, error="invalid_token"'
    body = {"error": "unauthorized", "reason": _REASONS[refusal.reason], "field": "Authorization"}
    return AuthProblem(401, body, {"WWW-Authenticate": challenge})


class KeyCheck:
    """Authenticate, rate-limit, then check a route's scope (`authorize`), asking the key
    store whether it changed (`payguard keys revoke` in another process: a SQLite query)
    once per turn of the event loop rather than once per request.

    Why that still gives every request the key store as it stood after the request
    arrived: a request is authorized in the first step of its task, which the HTTP
    protocol schedules once its headers are in. A check marks the copy fresh and
    schedules its expiry with `call_soon`; the loop runs callbacks in the order they were
    scheduled, so every request authorized on the fresh copy had its first step scheduled
    before the expiry, that is before the check, after its headers had arrived. A request
    scheduled after the check meets the expiry first and asks the store again. Without a
    running loop (or outside one), every call asks."""

    def __init__(self, access: Access) -> None:
        self.access = access
        self._fresh = False

    def authorize(
        self, needed: Requirement | None, method: str, path: str, authorization: str | None
    ) -> ApiKey | None:
        """The key (None on an open route), or AuthProblem (401, 429, 403). `needed` is
        the route's `required_scope`, `path` the request's (for the log),
        `authorization` the header's value."""
        if needed == OPEN:
            return None
        access = self.access
        try:
            key = access.authenticator.authenticate(
                bearer_secret(authorization),
                time.time_ns() // 1_000_000,
                recheck=self._recheck(),
            )
        except AuthRefused as exc:
            log.info("refused %s %s: %s key", method, path, exc.reason)
            raise _unauthorized(exc) from None
        wait_s = access.limiter.check(key.key_id, time.monotonic_ns(), key.rate_per_s, key.burst)
        if wait_s:
            reason = "too many requests for this API key"
            body = {"error": "rate_limited", "reason": reason, "retry_after_s": wait_s}
            raise AuthProblem(429, body, {"Retry-After": str(wait_s)})
        if needed is None:
            log.error("route %s %s has no declared scope: denied", method, path)
            reason = "this route has no declared scope (ROUTE_SCOPES): denied to every key"
            raise AuthProblem(403, {"error": "forbidden", "reason": reason}, {})
        if not key.allows(needed):
            reason = f"the API key lacks scope {needed}"
            raise AuthProblem(403, {"error": "forbidden", "reason": reason, "scope": needed}, {})
        return key

    def _recheck(self) -> bool:
        """Whether to ask the key store (see the class docstring)."""
        if self._fresh:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return True
        self._fresh = True
        loop.call_soon(self._expire)
        return True

    def _expire(self) -> None:
        self._fresh = False


def access_guard(access: Access) -> Any:
    """The app-wide guard (`KeyCheck.authorize`), which leaves the key in the connection's state
    (`caller`). A coroutine, though it never awaits: Litestar runs a plain function guard
    in a worker thread, a thread hop per request (most of the guard's time in a profile)
    that also ran the key store and the limiter off the loop thread, several requests at
    once."""

    check = KeyCheck(access)

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
    ) -> None:
        scope = connection.scope
        method = str(scope.get("method", "GET"))
        needed = required_scope(method, str(scope.get("path_template", "")))
        if needed == OPEN:
            return
        authorization = connection.headers.get("authorization")
        key = check.authorize(needed, method, connection.url.path, authorization)
        connection.state[_KEY_STATE] = key

    return guard


def caller(request: Request[Any, Any, Any]) -> ApiKey | None:
    """The key that authenticated this request (None on an open route)."""
    key = request.state.get(_KEY_STATE)
    return key if isinstance(key, ApiKey) else None


def actor_of(request: Request[Any, Any, Any]) -> tuple[str, str]:
    """(actor, actor_name) for an audit entry: `key:<key_id>` and the key's name."""
    return _actor(caller(request))


def _actor(key: ApiKey | None) -> tuple[str, str]:
    return ("anonymous", "") if key is None else (f"key:{key.key_id}", key.name)


def require_label_scope(key: ApiKey | None, events: list[Event]) -> None:
    """Fraud reports, chargebacks and labels also need `labels:write`: they mark accounts
    as fraudsters and close decisions, so a front-end key (`events:write`) cannot forge
    them (issue 14, failure 1). 403 naming the scope and the first such event. `key`: the
    request's (`caller`)."""
    for event in events:
        if event.type in LABEL_TYPES and (key is None or not key.allows(LABEL_SCOPE)):
            reason = f"a {event.type} event ({event.event_id[:64]}) needs scope {LABEL_SCOPE}"
            raise AuthProblem(
                403, {"error": "forbidden", "reason": reason, "scope": LABEL_SCOPE}, {}
            )


def audit_labels(audit: AuditLog, key: ApiKey | None, events: list[Event]) -> None:
    """One `label.<type>` entry per newly recorded verdict: who said which event was (not)
    fraud. The event itself is in the event log; this names the key that sent it."""
    actor, actor_name = _actor(key)
    now = time.time_ns() // 1_000_000
    for event in events:
        if event.type in LABEL_TYPES:
            after = {"event_id": event.event_id, "label": event.label, "source": event.source}
            target = event.ref_event_id or event.event_id
            audit.record(
                actor, f"label.{event.type}", target, None, after, at_ms=now, actor_name=actor_name
            )


def openapi_security() -> tuple[Components, list[SecurityRequirement]]:
    """The bearer scheme for the OpenAPI document, required by default."""
    scheme = SecurityScheme(
        type="http",
        scheme="bearer",
        description=(
            "An API key from `payguard keys create`, sent as `Authorization: Bearer "
            "<secret>`. Each route needs one scope (docs/security.md); /healthz, /readyz, "
            "/metrics and /schema are open."
        ),
    )
    return Components(security_schemes={BEARER: scheme}), [{BEARER: []}]


# -- GET /v1/audit ---------------------------------------------------------------------------

Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="at most this many, 1 to 1000")]
SQLITE_MAX_INT = 2**63 - 1
"""Larger integers cannot reach SQLite (OverflowError): refuse them as bad parameters."""
Cursor = Annotated[
    int,
    QueryParameter(
        ge=0, le=SQLITE_MAX_INT, description="entries after this seq (the previous page's `next`)"
    ),
]
Millis = Annotated[int | None, QueryParameter(ge=0, le=SQLITE_MAX_INT, description="epoch ms")]
TextFilter = Annotated[str | None, QueryParameter(max_length=200)]


class AuditPage(msgspec.Struct):
    """Entries oldest first; `next` is the cursor for the following page (None: last)."""

    entries: list[AuditEntry]
    next: int | None


def audit_handlers(access: Access) -> list[HTTPRouteHandler]:
    @get(
        "/v1/audit",
        sync_to_thread=False,
        summary="The audit log",
        description=(
            "Changes of state that are not events (ruleset publishes, hold releases and "
            "revocations, key changes), oldest first, with who, what, before/after and when. "
            "Filter by `action` (exact, or a prefix ending in `.` such as `key.`), `actor` "
            "(`key:<key_id>`, `cli:<login>`), and `since`/`until` (epoch ms, half-open); "
            "page with `after` = the previous page's `next`."
        ),
        tags=["operations"],
        responses={400: documented_error(dict[str, str])},
    )
    def list_audit(
        action: TextFilter = None,
        actor: TextFilter = None,
        since: Millis = None,
        until: Millis = None,
        after: Cursor = 0,
        limit: Limit = 100,
    ) -> AuditPage:
        entries = access.audit.find(
            action=action,
            actor=actor,
            since_ms=since,
            until_ms=until,
            after_seq=after,
            limit=limit,
        )
        following = entries[-1].seq if len(entries) == limit else None
        return AuditPage(entries, following)

    return [list_audit]
