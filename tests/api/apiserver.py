"""A real payguard server on loopback (uvicorn in a thread) and event helpers for the API tests."""

import socket
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import uvicorn

from payguard.api import create_app
from payguard.config import Settings, load_settings
from payguard.engine import Engine

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RULESET = REPO / "rules" / "default.yaml"


class Server:
    def __init__(self, data_dir: Path, settings: Settings | None = None) -> None:
        """Serve the default ruleset from `data_dir`, or the given settings."""
        if settings is None:
            loaded = load_settings(env={"PAYGUARD_DATA_DIR": str(data_dir)})
            settings = msgspec.structs.replace(loaded, ruleset=DEFAULT_RULESET)
        self.settings: Settings = settings
        self.data_dir = data_dir
        self.engine = Engine.open(self.settings)
        app = create_app(self.engine)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
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


def event(event_id: str, type_: str, user: str, ts: int, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": event_id, "type": type_, "ts": ts, "user_id": user}
    body.update(fields)
    return body
