"""A request deadline for uvicorn's HTTP/1.1 protocol: slow clients are cut off.

uvicorn times out only idle keep-alive connections; a client that opens a connection and
sends its headers or body a byte at a time (slowloris, a stalled upload) holds a
connection slot forever. `DeadlineH11Protocol` gives each request `request_timeout_s`
from the connection's opening (or the end of the previous response) until its last body
byte has arrived; past that, the connection is closed without an answer. A request that
arrived in time is never cut off while the engine works on it.
"""

import asyncio
import functools
import logging
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

log = logging.getLogger("payguard.api")


class DeadlineH11Protocol(H11Protocol):
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
        self._deadline: asyncio.TimerHandle | None = None

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
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self._request_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            log.info("closing a connection: request not received within the deadline")
            self.transport.close()
