"""A request deadline for uvicorn's HTTP/1.1 protocols: slow clients are cut off.

uvicorn times out only idle keep-alive connections; a client that opens a connection and
sends its headers or body a byte at a time (slowloris, a stalled upload) holds a
connection slot forever. Both protocols here give each request `request_timeout_s` from
the connection's opening (or the end of the previous response) until its last body byte
has arrived; past that, the connection is closed without an answer. A request that
arrived in time is never cut off while the engine works on it.

`DeadlineHttpToolsProtocol` (the default, `PAYGUARD_HTTP=httptools`) runs on llhttp, a C
parser, about twice as fast as h11 per request (docs/benchmarks.md); it also refuses a
request line and headers longer than `max_header_bytes` with a 400, which uvicorn's
httptools protocol has no option for (h11 has `h11_max_incomplete_event_size`).
`DeadlineH11Protocol` (`PAYGUARD_HTTP=h11`) is the pure-Python fallback.
"""

import asyncio
import functools
import logging
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

log = logging.getLogger("payguard.api")


class _RequestDeadline:
    """The whole-request deadline both protocols share: armed when the connection opens
    and when a response ends, disarmed once a request has fully arrived; at expiry the
    connection is closed if a request is still arriving (`_awaiting_request`)."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _request_timeout_s: float
    _deadline: asyncio.TimerHandle | None = None

    def _awaiting_request(self) -> bool:
        """Whether a request is still arriving: what the deadline guards."""
        raise NotImplementedError

    def _rearm_unless_closing(self) -> None:
        """After a response: the next request's deadline starts now."""
        if not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self._request_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self._awaiting_request() and not self.transport.is_closing():
            log.info("closing a connection: request not received within the deadline")
            self.transport.close()


class DeadlineH11Protocol(_RequestDeadline, H11Protocol):
    """uvicorn's h11 protocol with a whole-request deadline (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        request_timeout_s: float,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._request_timeout_s = request_timeout_s
        self._deadline = None

    @classmethod
    def with_timeout(cls, request_timeout_s: float) -> Any:
        """The protocol factory uvicorn's `http=` option takes."""
        return functools.partial(cls, request_timeout_s=request_timeout_s)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.SEND_BODY and self.conn.their_state is not h11.IDLE:
            self._disarm()  # the whole request is in (or the connection is done)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._rearm_unless_closing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _awaiting_request(self) -> bool:
        return self.conn.their_state in (h11.IDLE, h11.SEND_BODY)


class DeadlineHttpToolsProtocol(_RequestDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol with the whole-request deadline and a limit on the
    request line and headers (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        request_timeout_s: float,
        max_header_bytes: int,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._request_timeout_s = request_timeout_s
        self._max_header_bytes = max_header_bytes
        self._deadline = None
        self._receiving = True
        """From the connection's opening or the last request's end until a request has
        fully arrived: what the deadline guards."""
        self._in_head = True
        self._head_bytes = 0
        """Bytes received while a request's line and headers are incomplete."""

    @classmethod
    def with_limits(cls, request_timeout_s: float, max_header_bytes: int) -> Any:
        """The protocol factory uvicorn's `http=` option takes."""
        return functools.partial(
            cls, request_timeout_s=request_timeout_s, max_header_bytes=max_header_bytes
        )

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        limit = self._max_header_bytes
        if self._in_head and self._head_bytes > limit and not self.transport.is_closing():
            log.info("refusing a request: line and headers over %d bytes", limit)
            self.send_400_response("Request line and headers too large.")

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()  # the whole request is in
        self._in_head, self._head_bytes = True, 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._rearm_unless_closing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        super()._arm()
        self._receiving = True

    def _disarm(self) -> None:
        self._receiving = False
        super()._disarm()

    def _awaiting_request(self) -> bool:
        return self._receiving
