"""The API's error answers: one JSON shape per kind of rejection, and the handlers that
turn Litestar's own rejections (routing, size limits, query parsing) and payguard's into
them. Every 4xx names the field it is about; a 500 logs the traceback, never the body.

Bad query parameters raise `BadParameter`; `literal_param` reads one that must be one
of a fixed set of values (an action, a hold state, a delivery status) for every listing.
"""

import logging
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from payguard.metrics import Metrics

log = logging.getLogger("payguard.api")

L = TypeVar("L", bound=str)


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


class InvalidRuleset(msgspec.Struct):
    """422: `rule` names the rule (`-` for the file as a whole); `reason` says what and where."""

    error: str
    rule: str
    reason: str


class ApiError(Exception):
    """Raised by a handler to answer with `status` and a JSON `body`."""

    def __init__(self, status: int, body: msgspec.Struct | dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class BadParameter(Exception):
    """A query parameter that is not one of its allowed values: 400 naming it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def literal_param(value: str | None, allowed: Sequence[L], field: str) -> L | None:
    """`value` as one of `allowed` (a Literal's values, e.g. `get_args(HoldState)`), None
    when the parameter is absent; else BadParameter naming `field` and the choices. Read
    by hand rather than by Litestar so that a bad value is answered in payguard's shape
    (and because Litestar reserves some names, such as `state`)."""
    if value is None:
        return None
    for option in allowed:
        if value == option:
            return option
    raise BadParameter(field, f"expected one of {', '.join(allowed)}, got {value[:40]!r}")


_encode_json = msgspec.json.Encoder().encode


def error_response(status: int, body: msgspec.Struct | dict[str, Any]) -> Response[bytes]:
    return Response(content=_encode_json(body), status_code=status, media_type=MediaType.JSON)


def _on_api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    return error_response(exc.status, exc.body)


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
            refused = body_too_large(request.url.path, limit, metrics)
            return error_response(refused.status, refused.body)
        return _http_error(request, exc)

    return handle


def body_too_large(path: str, limit: int, metrics: Metrics) -> ApiError:
    """413 for a body over `limit` bytes, counted as an invalid event on the event routes."""
    if path.startswith("/v1/events"):
        metrics.invalid_events += 1
    log.info("rejected request to %s: body over %d bytes", path, limit)
    return ApiError(413, TooLarge(error="body_too_large", limit=limit))


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """A bug, not bad input: log the traceback (never the body) and answer 500."""
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, {"error": "internal_error"})


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if exc.status_code == 404:
        return error_response(404, NotFound(error="not_found"))
    if exc.status_code >= 500:
        log.error("internal error on %s %s: %s", request.method, request.url.path, exc.detail)
        return error_response(exc.status_code, {"error": "internal_error"})
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


def on_bad_parameter(_: Request[Any, Any, Any], exc: BadParameter) -> Response[bytes]:
    return error_response(400, BadField(error="bad_request", field=exc.field, reason=exc.reason))


def _named_field(exc: HTTPException) -> tuple[str, str] | None:
    """(field, message) of the first parameter Litestar's validation names, if any."""
    extra = exc.extra
    if isinstance(extra, list) and extra and isinstance(extra[0], dict) and "key" in extra[0]:
        return str(extra[0]["key"]), str(extra[0].get("message", exc.detail))
    return None


def exception_handlers(metrics: Metrics) -> ExceptionHandlersMap:
    """The app-wide handlers (a route's own handlers take precedence for its errors)."""
    return {
        ApiError: _on_api_error,
        BadParameter: on_bad_parameter,
        HTTPException: _on_http_exception(metrics),
        Exception: _on_unexpected,
    }


def documented_error(model: Any, description: str = "") -> ResponseSpec:
    """An error answer for the OpenAPI document: its body's shape, with no generated
    example (Litestar's would invent field values that contradict the documented ones)."""
    return ResponseSpec(model, description=description, generate_examples=False)
