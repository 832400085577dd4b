"""`/v1/events` and `/v1/events/batch`: decide events, record them durably, answer.

Bodies are read raw and handed to payguard's own decoder, so every rejection names the
field the way the CLI does, and Litestar never parses (or logs) an event. An accepted
event is decided at once and answered once the group commit that holds it is durable
(api/commits.py); the handlers are coroutines so that the loop goes on deciding other
requests while a commit runs on the writer thread. Request bodies hold card, ID and
phone numbers in clear: nothing here logs a body; one log line per rejected event names
only its event_id, field and reason.
"""

import logging
import re
from collections.abc import Callable
from typing import Annotated, Any, Final

import msgspec
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import QueryParameter, RawBody

from payguard.api.access import audit_labels, caller, require_label_scope
from payguard.api.commits import GroupCommitter
from payguard.api.errors import ApiError, Conflict, InvalidEvent, TooLarge, documented_error
from payguard.api.openapi import BatchOperation, EventOperation
from payguard.auth import ApiKey, AuditLog
from payguard.decision import Decision
from payguard.engine import DuplicateEventError, Engine, StorageError
from payguard.events import Event, EventError
from payguard.state import StateUnavailable

log = logging.getLogger("payguard.api")

MAX_BATCH_EVENTS: Final = 10_000
IDEMPOTENT_REPLAY: Final = "Idempotent-Replay"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
Explain = Annotated[
    str | None,
    QueryParameter(description="`1` (or `true`) adds `features`, `shadow` and `rule_errors`"),
]
_BATCH_PATH = re.compile(r"^\[(?P<index>\d+)\]\.?(?P<field>.*)$")


class Batch(msgspec.Struct):
    decisions: list[Decision]


class EventRoutes:
    """The event routes over `engine`, recording through `commits`; `clock` (epoch ms)
    refuses future-dated events, `audit` records who filed labels. `decide_one` is the
    whole of `POST /v1/events` after authorization, shared by the Litestar handler (the
    route as documented) and the plain ASGI route that serves it (api/fast_events.py)."""

    def __init__(
        self, engine: Engine, commits: GroupCommitter, audit: AuditLog, clock: Callable[[], int]
    ) -> None:
        self._engine = engine
        self._commits = commits
        self._audit = audit
        self._clock = clock
        self._decoder = engine.decoder
        self._metrics = engine.metrics

    async def decide_one(self, body: bytes, key: ApiKey | None) -> tuple[Decision, bool]:
        """Decode, check, decide and record one event; (decision, was_repeat) once it is
        durable, or ApiError / AuthProblem with the answer. `key`: the caller's."""
        try:
            event = self._decoder.decode(body)
            self._engine.check_time(event, self._clock())
        except EventError as exc:
            raise self._reject(exc, 400 if exc.malformed else 422) from None
        require_label_scope(key, [event])
        try:
            decision, repeat = await self._commits.process(event)
        except DuplicateEventError as exc:
            raise _conflict(exc) from None
        except (StorageError, StateUnavailable):  # nothing recorded, no state changed
            raise _storage_unavailable() from None
        except EventError as exc:  # an outcome that fits no decision: nothing recorded
            raise self._reject(exc, 422) from None
        if not repeat:
            audit_labels(self._audit, key, [event])
        return decision, repeat

    def _reject(self, exc: EventError, status: int, index: int | None = None) -> ApiError:
        self._metrics.invalid_events += 1
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

    def handlers(self) -> list[HTTPRouteHandler]:
        """The Litestar route handlers of both routes."""
        return [self._post_event_handler(), self._post_batch_handler()]

    def _post_event_handler(self) -> HTTPRouteHandler:
        decide_one = self.decide_one

        @post(
            "/v1/events",
            status_code=200,
            summary="Decide one event",
            description=(
                "Body: one contract-v1 event (docs/events.md), at most `max_body_bytes` "
                "(64 KiB by default). The event is decided, recorded durably, and answered "
                "with its decision. `?explain=1` adds `features`, `shadow` and `rule_errors`. "
                "Re-sending an event_id with the same payload returns the stored decision "
                "with header `Idempotent-Replay: true` and changes nothing; with another "
                "payload → 409."
            ),
            tags=["events"],
            request_max_body_size=self._engine.settings.max_body_bytes,
            operation_class=EventOperation,
            responses={
                400: documented_error(InvalidEvent, "Malformed JSON"),
                409: documented_error(Conflict, "event_id reused"),
                413: documented_error(TooLarge, "Body too large"),
                422: documented_error(InvalidEvent, "Event violates contract v1"),
            },
        )
        async def post_event(
            request: Request[Any, Any, Any], body: RawBody, explain: Explain = None
        ) -> Response[Decision]:
            decision, repeat = await decide_one(body, caller(request))
            headers = {IDEMPOTENT_REPLAY: "true"} if repeat else None
            return Response(decision.public(explain_on(explain)), headers=headers)

        return post_event

    def _post_batch_handler(self) -> HTTPRouteHandler:
        engine, decoder, metrics = self._engine, self._decoder, self._metrics
        reject, commits, clock, audit = self._reject, self._commits, self._clock, self._audit

        @post(
            "/v1/events/batch",
            status_code=200,
            summary="Decide a batch of events, all or nothing",
            description=(
                "Body: a JSON array of at most 10,000 contract-v1 events, at most "
                "`max_batch_bytes` (8 MiB by default). Every event is validated and checked "
                "for id conflicts first; if any fails, the answer names its `index` and "
                "nothing from the batch is recorded. Otherwise events are decided in order, "
                'recorded with one flush, and answered as `{"decisions": [...]}` in the '
                "same order."
            ),
            tags=["events"],
            request_max_body_size=engine.settings.max_batch_bytes,
            operation_class=BatchOperation,
            responses={
                400: documented_error(InvalidEvent, "Malformed JSON"),
                409: documented_error(Conflict, "event_id reused"),
                413: documented_error(TooLarge, "Too large"),
                422: documented_error(InvalidEvent, "An event violates contract v1"),
            },
        )
        async def post_batch(
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
            key = caller(request)
            require_label_scope(key, events)
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
                    raise _conflict(exc, index) from None
                try:  # an outcome must reference a decision recorded before the batch
                    engine.check_outcome(event)
                except EventError as exc:
                    raise reject(exc, 422, index) from None
            show = explain_on(explain)
            try:
                processed = await commits.process_all(events)
            except (StorageError, StateUnavailable):  # nothing of the batch recorded
                raise _storage_unavailable() from None
            new = [e for e, (_, repeat) in zip(events, processed, strict=True) if not repeat]
            audit_labels(audit, key, new)
            return Batch(decisions=[decision.public(show) for decision, _ in processed])

        return post_batch


def _conflict(exc: DuplicateEventError, index: int | None = None) -> ApiError:
    log.info("rejected event event_id=%r: id reused with another payload", exc.event_id)
    body = Conflict(
        error="conflict",
        event_id=exc.event_id,
        reason="event_id was already recorded with a different payload",
        index=index,
    )
    return ApiError(409, body)


def _storage_unavailable() -> ApiError:
    return ApiError(503, {"error": "storage_unavailable"})


def explain_on(value: str | None) -> bool:
    return value is not None and value.lower() in _TRUE


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
