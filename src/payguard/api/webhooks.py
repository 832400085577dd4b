"""`GET /v1/webhooks/deliveries`, `GET /v1/webhooks/deliveries/{id}` and
`POST /v1/webhooks/deliveries/{id}/retry` over the webhook outbox (docs/webhooks.md).

For the operator: what was sent where, which deliveries failed and why (every attempt's
status, error and duration), and a way to send a failed one again once the endpoint is
fixed. Without configured endpoints every route answers 404 naming `webhooks`. Errors use
the API's `{"error", "field", "reason"}` body; the routes answer them themselves.
"""

import time
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, QueryParameter
from litestar.types import ExceptionHandlersMap

from payguard.api.errors import documented_error, literal_param
from payguard.webhooks import (
    DELIVERY_STATES,
    Attempt,
    Delivery,
    OutboxError,
    Webhooks,
)

Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="at most this many, 1 to 1000")]
EventFilter = Annotated[
    str | None, QueryParameter(description="deliveries about one decision's event_id")
]


class DeliveryList(msgspec.Struct):
    deliveries: list[Delivery]


class DeliveryDetail(msgspec.Struct):
    """One delivery, every attempt at it (first first) and the JSON body it sends."""

    delivery: Delivery
    attempts: list[Attempt]
    payload: dict[str, Any]


class WebhookProblem(msgspec.Struct, omit_defaults=True):
    """400 (a bad query: `field` names it), 404 (unknown delivery, or webhooks off), 409
    (only a failed delivery can be retried; `state` says what it is)."""

    error: str
    reason: str
    field: str | None = None
    state: str | None = None


class _Problem(Exception):
    def __init__(self, status: int, body: WebhookProblem) -> None:
        super().__init__(body.reason)
        self.status, self.body = status, body


_encode = msgspec.json.Encoder().encode
_OFF = WebhookProblem(
    error="not_found",
    field="webhooks",
    reason="no webhook endpoints are configured (PAYGUARD_WEBHOOK_URLS)",
)


def _on_problem(_: Request[Any, Any, Any], exc: _Problem) -> Response[bytes]:
    return Response(content=_encode(exc.body), status_code=exc.status, media_type=MediaType.JSON)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def webhook_handlers(webhooks: Webhooks | None) -> list[HTTPRouteHandler]:
    """The delivery routes over `webhooks.outbox`, for `create_app`."""
    errors: ExceptionHandlersMap = {_Problem: _on_problem}
    problem = documented_error(WebhookProblem)

    def configured() -> Webhooks:
        if webhooks is None:
            raise _Problem(404, _OFF)
        return webhooks

    def unknown(delivery_id: str) -> _Problem:
        reason = f"no delivery {delivery_id[:80]!r}"
        return _Problem(404, WebhookProblem(error="not_found", field="delivery_id", reason=reason))

    @get(
        "/v1/webhooks/deliveries",
        sync_to_thread=False,
        summary="List webhook deliveries",
        description=(
            "Newest first; filter by `status` (`pending`, `delivered` or `failed`) and by "
            "`event_id` (the decision a delivery is about)."
        ),
        tags=["webhooks"],
        exception_handlers=errors,
        responses={400: problem, 404: problem},
    )
    def list_deliveries(
        request: Request[Any, Any, Any], event_id: EventFilter = None, limit: Limit = 100
    ) -> DeliveryList:
        outbox = configured().outbox
        state = literal_param(request.query_params.get("status"), DELIVERY_STATES, "status")
        return DeliveryList(outbox.find(state=state, subject=event_id, limit=limit))

    @get(
        "/v1/webhooks/deliveries/{delivery_id:str}",
        sync_to_thread=False,
        summary="One webhook delivery with its attempts and payload",
        tags=["webhooks"],
        exception_handlers=errors,
        responses={404: problem},
    )
    def get_delivery(delivery_id: FromPath[str]) -> DeliveryDetail:
        outbox = configured().outbox
        delivery, body = outbox.get(delivery_id), outbox.body(delivery_id)
        if delivery is None or body is None:
            raise unknown(delivery_id)
        payload = msgspec.json.decode(body, type=dict[str, Any])
        return DeliveryDetail(delivery, outbox.attempts(delivery_id), payload)

    @post(
        "/v1/webhooks/deliveries/{delivery_id:str}/retry",
        sync_to_thread=False,
        status_code=200,
        summary="Send a failed delivery again",
        description=(
            "The delivery becomes `pending`, due now, with a fresh round of attempts "
            "(`max_attempts`, `max_age_s`); earlier attempts stay in its history. Only a "
            "`failed` delivery can be retried (409 otherwise, with its state)."
        ),
        tags=["webhooks"],
        exception_handlers=errors,
        responses={404: problem, 409: problem},
    )
    def retry_delivery(delivery_id: FromPath[str]) -> Delivery:
        hooks = configured()
        try:
            delivery = hooks.outbox.retry(delivery_id, _now_ms())
        except OutboxError as exc:
            if exc.status == 404:
                raise unknown(delivery_id) from None
            found = hooks.outbox.get(delivery_id)
            state = found.state if found is not None else None
            body = WebhookProblem(error="conflict", reason=exc.reason, state=state)
            raise _Problem(409, body) from None
        hooks.dispatcher.wake()
        return delivery

    return [list_deliveries, get_delivery, retry_delivery]
