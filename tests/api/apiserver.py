"""A real payguard server on loopback (uvicorn in a thread) and event helpers for the API tests.

Every route needs an API key (docs/security.md). So that the tests of other features need
not carry one, the server creates a real admin key in its data directory and, unless
`authorize=False`, adds it to any request that arrives without an Authorization header;
the key still goes through the real guard. The auth tests turn that off.
"""

import socket
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import uvicorn
from litestar.types import ASGIApp, Receive, Scope, Send

from payguard.api import create_app
from payguard.api.server import uvicorn_limits
from payguard.auth import Access
from payguard.config import Settings, load_settings
from payguard.engine import Engine

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RULESET = REPO / "rules" / "default.yaml"


class Server:
    def __init__(
        self, data_dir: Path, settings: Settings | None = None, *, authorize: bool = True
    ) -> None:
        """Serve the default ruleset from `data_dir`, or the given settings; `authorize`:
        requests without an Authorization header use the server's admin key."""
        if settings is None:
            loaded = load_settings(env={"PAYGUARD_DATA_DIR": str(data_dir)})
            settings = msgspec.structs.replace(loaded, ruleset=DEFAULT_RULESET)
        self.settings: Settings = settings
        self.data_dir = data_dir
        self.engine = Engine.open(self.settings)
        self.access = Access.open(
            self.settings.data_dir,
            rate_per_s=self.settings.rate_limit_per_s,
            burst=self.settings.rate_limit_burst,
        )
        self.admin_key = self.access.create_key(
            ["admin"],
            name="test admin",
            actor="test",
            now_ms=time.time_ns() // 1_000_000,
            rate_per_s=1_000_000,
            burst=1_000_000,
        ).secret
        self.app = create_app(self.engine, access=self.access)
        app = with_default_key(self.app, self.admin_key) if authorize else self.app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            **uvicorn_limits(self.settings),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("payguard test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
        self.engine.close()
        self.access.close()


def with_default_key(app: ASGIApp, secret: str) -> ASGIApp:
    """`app`, with `Authorization: Bearer <secret>` added to requests that have none."""
    header = (b"authorization", f"Bearer {secret}".encode())

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not any(
            name == b"authorization" for name, _ in scope["headers"]
        ):
            scope = {**scope, "headers": [*scope["headers"], header]}  # type: ignore[typeddict-item]
        await app(scope, receive, send)

    return asgi


def event(event_id: str, type_: str, user: str, ts: int, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": event_id, "type": type_, "ts": ts, "user_id": user}
    body.update(fields)
    return body
