"""A real webhook receiver on loopback (http.server in a thread) and the events that make
the default ruleset ask for someone, shared by the webhook tests.

The receiver does what the docs tell an endpoint to do: it checks the signature with
its own HMAC code (not payguard's `verify`, so a bug there cannot hide one in `sign`),
refuses a bad or stale one with 400, and dedupes by delivery id. It can be told to fail
its first N requests (500), to be slow, or to fail every request, to exercise retries.
"""

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "whsec-test-0123456789abcdef"
OLD_SECRET = "whsec-old-fedcba9876543210"
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
DAY_MS = 86_400_000


class Received:
    """One request as the receiver saw it."""

    def __init__(self, headers: dict[str, str], body: bytes, status: int) -> None:
        self.headers, self.body, self.status = headers, body, status
        self.delivery_id = headers.get("Payguard-Delivery", "")
        self.json: dict[str, Any] = json.loads(body) if body else {}


def signature_ok(body: bytes, header: str, secrets: list[str], now_s: int) -> bool:
    """The receiver's own check: some v1 = HMAC-SHA256(secret, f"{t}.{body}") and t
    within 300 s of now."""
    parts = [item.split("=", 1) for item in header.split(",")]
    stamps = [v for k, v in parts if k == "t"]
    if len(stamps) != 1 or abs(now_s - int(stamps[0])) > 300:
        return False
    signed = stamps[0].encode() + b"." + body
    good = {hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets}
    return any(v in good for k, v in parts if k == "v1")


class Receiver:
    def __init__(
        self, secrets: list[str] | None = None, *, clock_s: Callable[[], int] | None = None
    ) -> None:
        self.secrets = secrets if secrets is not None else [SECRET]
        self.clock_s = clock_s
        """The receiver's clock (seconds), the tests' fake one; None: the wall clock."""
        self.fail_first = 0
        self.fail_all = False
        self.delay_s = 0.0
        self.requests: list[Received] = []
        self.accepted: Counter[str] = Counter()
        """2xx answers per delivery id: a receiver processes each id once."""
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.answer(dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        if self.delay_s:
            time.sleep(self.delay_s)
        now_s = self.clock_s() if self.clock_s is not None else int(time.time())
        with self.lock:
            if not signature_ok(body, headers.get("Payguard-Signature", ""), self.secrets, now_s):
                status = 400
            elif self.fail_all or self.fail_first > 0:
                self.fail_first = max(0, self.fail_first - 1)
                status = 500
            else:
                delivery = headers.get("Payguard-Delivery", "")
                status = 200
                if self.accepted[delivery]:
                    status = 208  # a repeat: already processed, acknowledged again
                self.accepted[delivery] += 1
            self.requests.append(Received(headers, body, status))
        return status

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def hold_events(user: str, now: int) -> list[dict[str, Any]]:
    """A long-known device, a password reset, then a transfer to a new payee: the
    default ruleset's cooling-off holds the transfer."""
    return [
        {"event_id": f"{user}-login", "type": "login", "ts": now - 200 * DAY_MS,
         "user_id": user, "device_id": f"{user}-phone", "success": True},
        {"event_id": f"{user}-reset", "type": "password_reset", "ts": now - 20 * 60_000,
         "user_id": user, "device_id": f"{user}-phone", "method": "sms"},
        {"event_id": f"{user}-transfer", "type": "transfer", "ts": now, "user_id": user,
         "device_id": f"{user}-phone", "amount": "6000.00", "payee": {"id": f"{user}-payee"}},
    ]  # fmt: skip


def review_events(user: str, now: int) -> list[dict[str, Any]]:
    """A long-known device, a SIM swap, then a password reset: the default ruleset sends
    the reset to review (phone_risk_password_reset)."""
    phone = "+8613912345678"
    return [
        {"event_id": f"{user}-login", "type": "login", "ts": now - 200 * DAY_MS,
         "user_id": user, "device_id": f"{user}-phone", "success": True, "phone": phone},
        {"event_id": f"{user}-swap", "type": "sim_swap", "ts": now - 60 * 60_000,
         "user_id": user, "phone": phone},
        {"event_id": f"{user}-reset", "type": "password_reset", "ts": now,
         "user_id": user, "device_id": f"{user}-phone", "method": "sms"},
    ]  # fmt: skip


WAIT_S = 30
"""How long a test waits for a delivery before it fails (a hang guard, not a measure)."""


def wait_for(check: Callable[[], bool]) -> None:
    """Poll `check` until it holds; fail the test after `WAIT_S`."""
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for webhook deliveries")
        time.sleep(0.02)


def now_ms() -> int:
    return time.time_ns() // 1_000_000
