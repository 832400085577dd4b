"""The HTTP edge: a Litestar app over one `Engine` (contract in docs/decisions.md).

Bodies are read raw and handed to payguard's own decoder, so every rejection names the
field the way the CLI does, and Litestar never parses (or logs) an event. Handlers are
synchronous and run on the event-loop thread (`sync_to_thread=False`): the engine is not
thread-safe, and one decision costs microseconds, so serialising requests on the loop is
both the simplest correct choice and the fastest one. An accepted event is flushed to the
recorder before it is answered.

Request bodies hold card, ID and phone numbers in clear: nothing here logs a body. One log
line per rejected event names only its event_id, field and reason.
"""

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import Litestar, MediaType, Request, Response, get, post, put
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter, RawBody

from payguard.api.access import (
    AuthProblem,
    access_guard,
    actor_of,
    audit_handlers,
    audit_labels,
    on_auth_problem,
    openapi_security,
    require_label_scope,
)
from payguard.api.decisions import decision_handlers
from payguard.api.holds import hold_handlers
from payguard.api.openapi import (
    BatchOperation,
    EventOperation,
    RulesetOperation,
)
from payguard.api.otp import otp_handlers
from payguard.api.schema_page import OperationIndex
from payguard.api.webhooks import webhook_handlers
from payguard.auth import Access
from payguard.cel import RuleError
from payguard.config import Settings
from payguard.decision import Decision
from payguard.engine import DuplicateEventError, Engine, StorageError
from payguard.events import Event, EventError
from payguard.metrics import Metrics
from payguard.otp import OtpService
from payguard.outcomes import OutcomeListener
from payguard.webhooks import Webhooks

log = logging.getLogger("payguard.api")

MAX_BATCH_EVENTS: Final = 10_000
MAX_RULESET_BYTES: Final = 1024 * 1024
RULESET_MEDIA_TYPES: Final = frozenset(
    {"text/yaml", "application/yaml", "application/x-yaml", "text/x-yaml", "text/plain"}
)
IDEMPOTENT_REPLAY: Final = "Idempotent-Replay"
PROMETHEUS_TEXT: Final = "text/plain; version=0.0.4"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
FROM_SETTINGS: Final = "settings"
"""`create_app(webhooks=...)` default: webhooks as configured (none without endpoints)."""
Explain = Annotated[
    str | None,
    QueryParameter(description="`1` (or `true`) adds `features`, `shadow` and `rule_errors`"),
]
Depth = Annotated[int, QueryParameter(ge=0, le=4, description="hops from the entity, 0 to 4")]
_BATCH_PATH = re.compile(r"^\[(?P<index>\d+)\]\.?(?P<field>.*)$")


# -- response bodies (also the OpenAPI schemas) ---------------------------------------------


class InvalidEvent(msgspec.Struct, omit_defaults=True):
    """400 (malformed JSON) or 422 (contract violation); `index` only for batches."""

    error: str
    field: str
    reason: str
    event_id: str | None = None
    index: int | None = None


class Conflict(msgspec.Struct, omit_defaults=True):
    """409: the event_id was already recorded with a different payload."""

    error: str
    event_id: str
    reason: str
    index: int | None = None


class TooLarge(msgspec.Struct):
    """413: `limit` in bytes (`body_too_large`) or events (`too_many_events`)."""

    error: str
    limit: int


class NotFound(msgspec.Struct):
    error: str


class BadField(msgspec.Struct):
    """400 (a bad query parameter) or 404 (an unknown path segment): `field` names it."""

    error: str
    field: str
    reason: str


class GraphNode(msgspec.Struct, omit_defaults=True):
    """`key` is `<kind>:<id>`; ids are the tokens the graph holds, never clear numbers.
    `reported` (accounts only): named by a fraud report or chargeback."""

    key: str
    kind: str
    id: str
    distance: int
    degree: int
    hub: bool
    reported: bool | None = None


class GraphEdge(msgspec.Struct):
    """An account–entity link; times in epoch ms, `bound_at` for a bound card only."""

    source: str
    target: str
    first_seen: int
    last_seen: int
    bound_at: int | None


class Neighbourhood(msgspec.Struct):
    """The nodes within `depth` hops of `root` and the links among them (docs/graph.md)."""

    root: str
    depth: int
    found: bool
    truncated: bool
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class InvalidRuleset(msgspec.Struct):
    """422: `rule` names the rule (`-` for the file as a whole); `reason` says what and where."""

    error: str
    rule: str
    reason: str


class Batch(msgspec.Struct):
    decisions: list[Decision]


class RulesetInfo(msgspec.Struct):
    version: str
    source: str


class RulesetVersion(msgspec.Struct):
    version: str


class Health(msgspec.Struct):
    status: str
    ruleset: str
    recorded: int


class Readiness(msgspec.Struct):
    """`ready` (200) or `not_ready` (503) with the reasons (docs/security.md, "Operations")."""

    status: str
    reasons: list[str]


class ApiError(Exception):
    """Raised by a handler to answer with `status` and a JSON `body`."""

    def __init__(self, status: int, body: msgspec.Struct | dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


_encode_json = msgspec.json.Encoder().encode


def _error_response(status: int, body: msgspec.Struct | dict[str, Any]) -> Response[bytes]:
    return Response(content=_encode_json(body), status_code=status, media_type=MediaType.JSON)


def _on_api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    return _error_response(exc.status, exc.body)


_HTTP_ERRORS: Final = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    415: "unsupported_media_type",
}


def _on_http_exception(
    metrics: Metrics,
) -> Callable[[Request[Any, Any, Any], HTTPException], Response[bytes]]:
    def handle(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
        """Litestar's own rejections (routing, size limit, query parsing) in payguard's shape."""
        if exc.status_code == 413:
            limit = request.route_handler.resolve_request_max_body_size() or 0
            if request.url.path.startswith("/v1/events"):
                metrics.invalid_events += 1
            log.info("rejected request to %s: body over %d bytes", request.url.path, limit)
            return _error_response(413, TooLarge(error="body_too_large", limit=limit))
        return _http_error(request, exc)

    return handle


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """A bug, not bad input: log the traceback (never the body) and answer 500."""
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_response(500, {"error": "internal_error"})


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if exc.status_code == 404:
        return _error_response(404, NotFound(error="not_found"))
    if exc.status_code >= 500:
        log.error("internal error on %s %s: %s", request.method, request.url.path, exc.detail)
        return _error_response(exc.status_code, {"error": "internal_error"})
    error = _HTTP_ERRORS.get(exc.status_code, "http_error")
    body: dict[str, Any] = {"error": error, "reason": exc.detail}
    named = _named_field(exc)
    if named is not None:  # a query or path parameter failed validation
        body["field"], body["reason"] = named
    if exc.status_code == 405:
        body.pop("reason")
    headers = exc.headers or {}
    return Response(
        content=_encode_json(body),
        status_code=exc.status_code,
        media_type=MediaType.JSON,
        headers=headers,
    )


# -- the app ----------------------------------------------------------------------------------


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
) -> Litestar:
    """The payguard HTTP API over `engine`; the caller owns the engine unless it passes
    `engine.close` in `on_shutdown` (as `serve` does). Webhooks (docs/webhooks.md) are
    built from the settings unless given; the app starts their dispatcher on startup and
    closes them on shutdown, after `on_shutdown`. Each of `outcome_listeners` is called
    `(decision_event_id, old_state, new_state)` on every lifecycle change, once it is
    durable. Every route needs an API key with its scope (api/access.py,
    docs/security.md): `access` holds the keys, rate limits and audit log, opened from
    `<data_dir>/auth.db` (and closed on shutdown) unless given."""
    settings = engine.settings
    decoder = engine.decoder
    metrics = engine.metrics
    otp = OtpService.for_engine(engine)
    hooks = Webhooks.open(settings) if webhooks == FROM_SETTINGS else webhooks
    if hooks is not None:
        hooks.attach(engine)
    for listener in outcome_listeners:
        engine.outcomes.book.subscribe(listener)
    gate = _open_access(settings) if access == FROM_SETTINGS else access
    closers = [gate.close] if access == FROM_SETTINGS else []
    components, security = openapi_security()

    def explain_on(value: str | None) -> bool:
        return value is not None and value.lower() in _TRUE

    def reject(exc: EventError, status: int, index: int | None = None) -> ApiError:
        metrics.invalid_events += 1
        log.info(
            "rejected event event_id=%r field=%r reason=%r%s",
            exc.event_id,
            exc.field,
            exc.reason,
            "" if index is None else f" batch_index={index}",
        )
        body = InvalidEvent(
            error="invalid_event",
            field=exc.field,
            reason=exc.reason,
            event_id=exc.event_id,
            index=index,
        )
        return ApiError(status, body)

    def conflict(exc: DuplicateEventError, index: int | None = None) -> ApiError:
        log.info("rejected event event_id=%r: id reused with another payload", exc.event_id)
        body = Conflict(
            error="conflict",
            event_id=exc.event_id,
            reason="event_id was already recorded with a different payload",
            index=index,
        )
        return ApiError(409, body)

    discard_pending = engine.discard_pending

    def storage_unavailable() -> ApiError:
        return ApiError(503, {"error": "storage_unavailable"})

    def durable(*, batch: bool = False) -> None:
        """Flush; if that fails, drop the queued records so nothing half-answered remains,
        and after a batch (whose events were filed as they were decided) put the state back
        to what the log holds."""
        try:
            engine.flush()
        except Exception:
            metrics.storage_errors += 1
            discard_pending()
            log.exception("recorder flush failed; request not recorded")
            if batch:
                engine.rebuild_state()
            raise storage_unavailable() from None

    @post(
        "/v1/events",
        sync_to_thread=False,
        status_code=200,
        summary="Decide one event",
        description=(
            "Body: one contract-v1 event (docs/events.md), at most `max_body_bytes` "
            "(64 KiB by default). The event is decided, recorded durably, and answered with "
            "its decision. `?explain=1` adds `features`, `shadow` and `rule_errors`. "
            "Re-sending an event_id with the same payload returns the stored decision with "
            "header `Idempotent-Replay: true` and changes nothing; with another payload → 409."
        ),
        tags=["events"],
        request_max_body_size=settings.max_body_bytes,
        operation_class=EventOperation,
        responses={
            400: ResponseSpec(InvalidEvent, description="Malformed JSON", generate_examples=False),
            409: ResponseSpec(Conflict, description="event_id reused", generate_examples=False),
            413: ResponseSpec(TooLarge, description="Body too large", generate_examples=False),
            422: ResponseSpec(
                InvalidEvent, description="Event violates contract v1", generate_examples=False
            ),
        },
    )
    def post_event(
        request: Request[Any, Any, Any], body: RawBody, explain: Explain = None
    ) -> Response[Decision]:
        try:
            event = decoder.decode(body)
            engine.check_time(event, clock())
        except EventError as exc:
            raise reject(exc, 400 if exc.malformed else 422) from None
        require_label_scope(request, [event])
        try:
            decision, repeat = engine.process(event, commit=True)
        except DuplicateEventError as exc:
            raise conflict(exc) from None
        except StorageError:  # nothing recorded, no state changed
            raise storage_unavailable() from None
        except EventError as exc:  # an outcome that fits no decision: nothing recorded
            raise reject(exc, 422) from None
        except Exception:  # a bug on valid input: answer 500 and record nothing
            discard_pending()
            raise
        if not repeat:
            durable()
            audit_labels(gate.audit, request, [event])
        headers = {IDEMPOTENT_REPLAY: "true"} if repeat else None
        return Response(decision.public(explain_on(explain)), headers=headers)

    @post(
        "/v1/events/batch",
        sync_to_thread=False,
        status_code=200,
        summary="Decide a batch of events, all or nothing",
        description=(
            "Body: a JSON array of at most 10,000 contract-v1 events, at most "
            "`max_batch_bytes` (8 MiB by default). Every event is validated and checked for "
            "id conflicts first; if any fails, the answer names its `index` and nothing "
            "from the batch is recorded. Otherwise events are decided in order, recorded "
            'with one flush, and answered as `{"decisions": [...]}` in the same order.'
        ),
        tags=["events"],
        request_max_body_size=settings.max_batch_bytes,
        operation_class=BatchOperation,
        responses={
            400: ResponseSpec(InvalidEvent, description="Malformed JSON", generate_examples=False),
            409: ResponseSpec(Conflict, description="event_id reused", generate_examples=False),
            413: ResponseSpec(TooLarge, description="Too large", generate_examples=False),
            422: ResponseSpec(
                InvalidEvent, description="An event violates contract v1", generate_examples=False
            ),
        },
    )
    def post_batch(
        request: Request[Any, Any, Any], body: RawBody, explain: Explain = None
    ) -> Batch:
        try:
            wires = decoder.decode_many(body)
        except EventError as exc:
            raise _batch_shape_error(exc, body, reject) from None
        if len(wires) > MAX_BATCH_EVENTS:
            metrics.invalid_events += 1
            log.info("rejected batch of %d events (limit %d)", len(wires), MAX_BATCH_EVENTS)
            raise ApiError(413, TooLarge(error="too_many_events", limit=MAX_BATCH_EVENTS))
        events: list[Event] = []
        now_ms = clock()
        for index, wire in enumerate(wires):
            try:
                events.append(decoder.validate(wire))
                engine.check_time(events[-1], now_ms)
            except EventError as exc:
                raise reject(exc, 422, index) from None
        require_label_scope(request, events)
        seen: dict[str, bytes] = {}
        for index, event in enumerate(events):
            digest = engine.payload_hash(event)
            earlier = seen.setdefault(event.event_id, digest)
            try:
                if earlier != digest:
                    raise DuplicateEventError(event.event_id)
                engine.check_conflict(event)
            except DuplicateEventError as exc:
                metrics.conflicts += 1
                raise conflict(exc, index) from None
            try:  # an outcome must reference a decision recorded before the batch
                engine.check_outcome(event)
            except EventError as exc:
                raise reject(exc, 422, index) from None
        show = explain_on(explain)
        try:
            processed = [engine.process(event) for event in events]
        except Exception:  # a bug on valid input: answer 500 and record nothing
            discard_pending()
            raise
        durable(batch=True)
        new = [event for event, (_, repeat) in zip(events, processed, strict=True) if not repeat]
        audit_labels(gate.audit, request, new)
        return Batch(decisions=[decision.public(show) for decision, _ in processed])

    @get(
        "/v1/entities/{kind:str}/{entity_id:str}/graph",
        sync_to_thread=False,
        summary="An entity's neighbourhood in the identity graph",
        description=(
            "The accounts and entities within `depth` hops (default 2, at most 4) of one "
            "node, and the links among them, as the graph holds them now. `kind` is one of "
            "account, identity, phone, device, card, payee, ip; `entity_id` is the id as "
            "payguard holds it: the user_id or device_id as sent, the token (`idn_…`, "
            "`tel_…`, `pan_…`) for ID, phone and card numbers, never a clear number. Hubs "
            "(more than 50 links) are shown, not expanded; at most 300 nodes (`truncated`). "
            "An id the graph does not know answers `found: false`."
        ),
        tags=["graph"],
        responses={
            400: ResponseSpec(BadField, description="Bad depth", generate_examples=False),
            404: ResponseSpec(BadField, description="Unknown kind", generate_examples=False),
        },
    )
    def get_graph(kind: FromPath[str], entity_id: FromPath[str], depth: Depth = 2) -> Neighbourhood:
        try:
            found = engine.neighbourhood(kind, entity_id, depth)
        except ValueError as exc:
            raise ApiError(
                404, BadField(error="not_found", field="kind", reason=str(exc))
            ) from None
        if found is None:
            reason = "the identity graph is off (graph_chains = false)"
            raise ApiError(404, BadField(error="not_found", field="graph", reason=reason))
        return msgspec.convert(found, Neighbourhood)

    @get(
        "/v1/ruleset",
        sync_to_thread=False,
        summary="The active ruleset",
        description="Its version (`<file version>+<sha256 prefix>`) and YAML source.",
        tags=["rules"],
    )
    def get_ruleset() -> RulesetInfo:
        ruleset = engine.ruleset
        return RulesetInfo(version=ruleset.version, source=ruleset.source)

    @put(
        "/v1/ruleset",
        sync_to_thread=False,
        status_code=200,
        summary="Validate and hot-swap the ruleset",
        description=(
            "Body: ruleset YAML (content type text/yaml, application/yaml or text/plain). "
            "Every rule is compiled and every identifier checked against the feature "
            "catalog; on error → 422 naming the rule, with the position of a syntax error "
            "or the nearest known name for an unknown identifier, and the active ruleset "
            "stays. On success later decisions carry the new version; feature state is "
            "untouched. The swap lives in memory: a restart loads the configured file."
        ),
        tags=["rules"],
        request_max_body_size=MAX_RULESET_BYTES,
        operation_class=RulesetOperation,
        responses={
            400: ResponseSpec(BadField, description="Not UTF-8", generate_examples=False),
            413: ResponseSpec(TooLarge, description="Body too large", generate_examples=False),
            415: ResponseSpec(NotFound, description="Not YAML/text", generate_examples=False),
            422: ResponseSpec(
                InvalidRuleset, description="Ruleset rejected", generate_examples=False
            ),
        },
    )
    def put_ruleset(request: Request[Any, Any, Any], body: RawBody) -> RulesetVersion:
        media_type, _ = request.content_type
        if media_type not in RULESET_MEDIA_TYPES:
            raise ApiError(
                415, {"error": "unsupported_media_type", "reason": "send YAML as text/yaml"}
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            reason = f"not valid UTF-8 at byte {exc.start}"
            bad = BadField(error="bad_request", field="body", reason=reason)
            raise ApiError(400, bad) from None
        try:
            ruleset = engine.parse_ruleset(text)
        except RuleError as exc:
            log.info("rejected ruleset: rule=%r reason=%r", exc.rule, exc.message)
            raise ApiError(422, exc.to_dict()) from None
        except (ValueError, TypeError, RecursionError) as exc:
            log.info("rejected ruleset: %s", type(exc).__name__)
            raise ApiError(
                422, InvalidRuleset(error="invalid_ruleset", rule="-", reason=str(exc)[:500])
            ) from None
        previous = engine.ruleset.version
        engine.set_ruleset(ruleset)
        log.warning("ruleset swapped: %s -> %s", previous, ruleset.version)
        actor, actor_name = actor_of(request)
        gate.audit.record(
            actor,
            "ruleset.publish",
            "ruleset",
            {"version": previous},
            {"version": ruleset.version},
            at_ms=time.time_ns() // 1_000_000,
            actor_name=actor_name,
        )
        return RulesetVersion(version=ruleset.version)

    @get(
        "/healthz",
        sync_to_thread=False,
        summary="Liveness",
        description="`recorded` is the sequence number of the newest durable record.",
        tags=["operations"],
    )
    def healthz() -> Health:
        return Health(
            status="ok", ruleset=engine.ruleset.version, recorded=engine.recorder.last_seq()
        )

    @get(
        "/readyz",
        sync_to_thread=False,
        summary="Readiness",
        description=(
            "200 `ready` when state recovery has finished, the ruleset has rules and the "
            "event log takes a write (a real 64 KiB commit, so a full disk shows here); "
            "otherwise 503 `not_ready` with the reasons. Open like /healthz (liveness)."
        ),
        tags=["operations"],
        responses={503: ResponseSpec(Readiness, description="Not ready", generate_examples=False)},
    )
    def readyz() -> Response[Readiness]:
        reasons = engine.readiness()
        status = "not_ready" if reasons else "ready"
        return Response(
            Readiness(status=status, reasons=reasons), status_code=503 if reasons else 200
        )

    @get(
        "/metrics",
        sync_to_thread=False,
        summary="Prometheus metrics",
        description="Decisions by type and action, rejections, latency histogram, gauges.",
        tags=["operations"],
        media_type=PROMETHEUS_TEXT,
    )
    def prometheus() -> str:
        gauges = engine.gauges()
        if hooks is not None:
            for state, count in hooks.outbox.counts().items():
                gauges[f"payguard_webhook_deliveries_{state}"] = count
        return metrics.render(gauges)

    return Litestar(
        route_handlers=[
            post_event,
            post_batch,
            get_graph,
            get_ruleset,
            put_ruleset,
            healthz,
            readyz,
            prometheus,
            *otp_handlers(engine, otp),
            *hold_handlers(engine, gate.audit),
            *webhook_handlers(hooks),
            *decision_handlers(engine),
            *audit_handlers(gate),
        ],
        guards=[access_guard(gate)],
        exception_handlers={
            AuthProblem: on_auth_problem,
            ApiError: _on_api_error,
            HTTPException: _on_http_exception(metrics),
            Exception: _on_unexpected,
        },
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="payguard",
            version="1",
            description=(
                "Real-time risk decisions for quick payments. Decision contract: "
                "docs/decisions.md; event contract v1: docs/events.md."
            ),
            components=components,
            security=security,
            render_plugins=[OperationIndex()],
        ),
        on_startup=[hooks.start] if hooks is not None else [],
        on_shutdown=[
            *on_shutdown,
            otp.close,
            *([hooks.close] if hooks is not None else []),
            *closers,
        ],
        request_max_body_size=settings.max_body_bytes,
        debug=debug,
    )


def _open_access(settings: Settings) -> Access:
    return Access.open(
        settings.data_dir, rate_per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst
    )


def _named_field(exc: HTTPException) -> tuple[str, str] | None:
    """(field, message) of the first parameter Litestar's validation names, if any."""
    extra = exc.extra
    if isinstance(extra, list) and extra and isinstance(extra[0], dict) and "key" in extra[0]:
        return str(extra[0]["key"]), str(extra[0].get("message", exc.detail))
    return None


def _batch_shape_error(
    exc: EventError, body: bytes, reject: Callable[[EventError, int, int | None], ApiError]
) -> ApiError:
    """Split msgspec's `[i].field` path into the batch index and the event's own field."""
    if exc.malformed:
        return reject(exc, 400, None)
    match = _BATCH_PATH.match(exc.field)
    if match is None:
        return reject(exc, 422, None)
    index = int(match.group("index"))
    field = match.group("field") or "$"
    event_id = None
    try:
        items: Any = msgspec.json.decode(body)
        item = items[index]
        if isinstance(item, dict) and isinstance(item.get("event_id"), str):
            event_id = item["event_id"][:128]
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, LookupError, TypeError):
        pass  # the event_id is a courtesy: the error stands without it
    return reject(EventError(field, exc.reason, event_id), 422, index)
