"""`POST /v1/events` as a plain ASGI route, in front of Litestar: the hot route's answers
at a fraction of the framework's cost per request (issue 16; docs/benchmarks.md).

A profile of the server at saturation put about half of the event loop's time in
Litestar's layers around this one handler (the route's scope copies, the signature
model, parameter extraction, the response object and its ASGI wrapper), more than the
engine's decision and filing. This route does for `POST /v1/events` only what those
layers did, with the same code for everything that decides an answer:

- `api.access.KeyCheck.authorize`: the key, its rate limit and the route's scope (401, 429, 403);
- the body read within `max_body_bytes` (413 by `Content-Length`, or by the bytes
  received, after the key check, as Litestar did);
- `?explain=` read as Litestar reads a query parameter (the last value);
- `EventRoutes.decide_one`: decoding (400/422 naming the field), the label scope, the
  group commit (answered once durable), 409, 503, the label audit;
- the same JSON bodies, status codes and headers (`Idempotent-Replay`,
  `WWW-Authenticate`, `Retry-After`); a bug is logged and answered 500 as the app-wide
  handler does.

Litestar keeps the route's definition: its handler documents it in the OpenAPI document
and answers every request this route leaves to it (another spelling of the path, a
`Content-Length` that is not a number). tests/api/test_api_fast_events.py sends the same
requests to both and compares the answers byte for byte.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import parse_qsl

import msgspec
from litestar.types import HTTPResponseStartEvent, Receive, Scope, Send

from payguard.api.access import AuthProblem, KeyCheck, required_scope
from payguard.api.errors import ApiError, body_too_large
from payguard.api.events import EventRoutes, explain_on
from payguard.auth import Access
from payguard.metrics import Metrics

log = logging.getLogger("payguard.api")

PATH: Final = "/v1/events"
_JSON: Final = (b"content-type", b"application/json")
_REPLAY: Final = (b"idempotent-replay", b"true")
_encode = msgspec.json.Encoder().encode


class _ClientGone(Exception):
    """The client disconnected before its body arrived: nothing to answer."""


class FastEventRoute:
    """`POST /v1/events` over the same services as its Litestar handler (see the module
    docstring). `fallback` is the app that answers whatever this route leaves to it."""

    def __init__(
        self,
        events: EventRoutes,
        access: Access,
        metrics: Metrics,
        max_body_bytes: int,
        fallback: Callable[[Scope, Receive, Send], Awaitable[None]],
    ) -> None:
        self._events = events
        self._keys = KeyCheck(access)
        self._metrics = metrics
        self._limit = max_body_bytes
        self._fallback = fallback
        self._needed = required_scope("POST", PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization: str | None = None
        length: int | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"content-length":
                if not value.isdigit():  # Litestar's 400 names it
                    await self._fallback(scope, receive, send)
                    return
                length = int(value)
        try:
            status, content, headers = await self._answer(scope, receive, authorization, length)
        except _ClientGone:
            log.info("client disconnected before its request to %s arrived", PATH)
            return
        headers.append(_JSON)
        headers.append((b"content-length", str(len(content)).encode()))
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": status,
            "headers": headers,
        }
        await send(start)
        await send({"type": "http.response.body", "body": content, "more_body": False})

    async def _answer(
        self, scope: Scope, receive: Receive, authorization: str | None, length: int | None
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """(status, JSON body, headers before the content type and length)."""
        try:
            key = self._keys.authorize(self._needed, "POST", PATH, authorization)
            if length is not None and length > self._limit:
                raise body_too_large(PATH, self._limit, self._metrics)
            body = await self._body(receive)
            decision, repeat = await self._events.decide_one(body, key)
            content = _encode(decision.public(explain_on(_explain(scope["query_string"]))))
            return 200, content, [_REPLAY] if repeat else []
        except AuthProblem as problem:
            extra = [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in problem.headers.items()
            ]
            return problem.status, _encode(problem.body), extra
        except ApiError as refused:
            return refused.status, _encode(refused.body), []
        except _ClientGone:
            raise
        except Exception as exc:  # a bug, not bad input: as errors._on_unexpected
            log.error("internal error on POST %s", PATH, exc_info=exc)
            return 500, _encode({"error": "internal_error"}), []

    async def _body(self, receive: Receive) -> bytes:
        """The whole body, or a 413 once more than the limit has arrived."""
        chunks: list[bytes] = []
        received = 0
        while True:
            message: Any = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if chunk:
                    received += len(chunk)
                    if received > self._limit:
                        raise body_too_large(PATH, self._limit, self._metrics)
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
            elif message["type"] == "http.disconnect":
                raise _ClientGone


def _explain(query: bytes) -> str | None:
    """The `explain` query parameter as Litestar reads a single-valued one (the last)."""
    if not query:
        return None
    found = None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "explain":
            found = value
    return found
