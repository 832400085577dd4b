"""The dispatcher: POSTs due deliveries, signs each attempt, retries with backoff.

A background thread (`start`/`stop`) loops over `deliver_due`, which tries every due
pending delivery once, one at a time, each attempt bounded by the timeout; it then sleeps
until the next delivery is due (at most `IDLE_S`) or until `wake` — which the notifier
calls when it has written new deliveries. Tests call `deliver_due` directly with their
own clock and random source, so retry schedules are exact.

Retry schedule ("equal jitter"): after attempt n fails, the next is due in
`d/2 + random() * d/2` with `d = min(backoff_ms * 2**(n-1), MAX_BACKOFF_MS)`; with the
10 s default: 5–10 s, 10–20 s, 20–40 s, … capped at 30–60 min. A delivery is marked
`failed` after `max_attempts` attempts, or when its next attempt would come later than
`max_age_ms` after it was written (or retried by hand). Any 2xx is success; anything else
(3xx included: redirects are not followed), a timeout or a connection error is retried.

Delivery is at least once: an endpoint that processed a delivery but whose answer was
lost (a timeout, a crash of payguard before it recorded the 2xx) sees it again, with the
same `Payguard-Delivery` id, so receivers dedupe on that id.
"""

import http.client
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol
from urllib.parse import urlsplit

import msgspec

from payguard.types import EpochMs
from payguard.webhooks.outbox import Attempt, Delivery, DeliveryState, Outbox
from payguard.webhooks.signing import SIGNATURE_HEADER, sign

log = logging.getLogger("payguard.webhooks")

DELIVERY_HEADER = "Payguard-Delivery"
TYPE_HEADER = "Payguard-Event-Type"
ATTEMPT_HEADER = "Payguard-Attempt"
USER_AGENT = "payguard-webhooks/1"
MAX_BACKOFF_MS = 3_600_000
IDLE_S = 5.0
"""Longest sleep of the thread between two looks at the outbox."""
BATCH = 100
"""Deliveries one `deliver_due` pass takes at most (the loop comes back for more)."""

Clock = Callable[[], EpochMs]


def wall_clock_ms() -> EpochMs:
    return time.time_ns() // 1_000_000


class RetryPolicy(msgspec.Struct, frozen=True):
    """How long one attempt may take and how long a delivery keeps being retried."""

    timeout_ms: int = 5_000
    backoff_ms: int = 10_000
    max_attempts: int = 20
    max_age_ms: int = 86_400_000

    def delay_ms(self, attempt: int, jitter: float) -> int:
        """The wait after failed attempt number `attempt` (1-based), `jitter` in [0, 1)."""
        doubled: int = self.backoff_ms << min(attempt - 1, 40)
        ceiling = min(doubled, MAX_BACKOFF_MS)
        return ceiling // 2 + int(jitter * (ceiling - ceiling // 2))


class Transport(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
        """POST `body` and return the HTTP status; raise OSError or
        http.client.HTTPException when no answer came (refused, reset, timed out)."""
        ...


class HttpTransport:
    """http.client, one connection per attempt, no redirects followed, no proxy."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
        parts = urlsplit(url)
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        host = parts.hostname or ""
        connection = connection_class(host, parts.port, timeout=timeout_s)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", path, body=body, headers=dict(headers))
            response = connection.getresponse()
            response.read(64 * 1024)  # a receiver's answer is not read further
            return int(response.status)
        finally:
            connection.close()


class Dispatcher:
    """Delivers what the outbox holds; see the module docstring for the schedule."""

    def __init__(
        self,
        outbox: Outbox,
        secrets: Sequence[str],
        policy: RetryPolicy,
        *,
        transport: Transport | None = None,
        clock: Clock = wall_clock_ms,
        rng: random.Random | None = None,
    ) -> None:
        if not secrets:
            raise ValueError("webhook_secrets: at least one secret is needed to sign")
        self.outbox = outbox
        self.secrets = tuple(secrets)
        self.policy = policy
        self.transport: Transport = transport if transport is not None else HttpTransport()
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass -------------------------------------------------------------------------

    def deliver_due(self) -> int:
        """Try each pending delivery that is due now once; returns the attempts made."""
        made = 0
        for delivery, body in self.outbox.due(self.clock(), BATCH):
            if self._stopping.is_set():
                break
            self.attempt(delivery, body)
            made += 1
        return made

    def attempt(self, delivery: Delivery, body: bytes) -> Delivery:
        """POST one delivery, record the attempt, and mark it delivered, failed or due
        again later; returns it as recorded."""
        number = delivery.attempts + 1
        at_ms = self.clock()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            DELIVERY_HEADER: delivery.delivery_id,
            TYPE_HEADER: delivery.type,
            ATTEMPT_HEADER: str(number),
            SIGNATURE_HEADER: sign(body, self.secrets, timestamp_s=at_ms // 1000),
        }
        started = time.perf_counter_ns()
        status: int | None = None
        error: str | None = None
        try:
            status = self.transport.post(delivery.url, body, headers, self.policy.timeout_ms / 1000)
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        except Exception as exc:  # a transport bug: recorded like a failure, never a stall
            log.exception("webhook %s: transport failed", delivery.delivery_id)
            error = f"{type(exc).__name__}: {exc}"[:300]
        duration_ms = (time.perf_counter_ns() - started) // 1_000_000
        attempt = Attempt(number, at_ms, duration_ms, status=status, error=error)
        state, next_ms = self._after(delivery, attempt)
        recorded = self.outbox.record(delivery, attempt, state, next_ms)
        _log_attempt(recorded, attempt)
        return recorded

    def _after(self, delivery: Delivery, attempt: Attempt) -> tuple[DeliveryState, EpochMs]:
        """(state, next attempt time) after an attempt."""
        if attempt.status is not None and 200 <= attempt.status < 300:
            return "delivered", attempt.at_ms
        policy = self.policy
        if delivery.round_attempts + 1 >= policy.max_attempts:
            return "failed", attempt.at_ms
        next_ms = attempt.at_ms + policy.delay_ms(delivery.round_attempts + 1, self.rng.random())
        if next_ms - delivery.round_started_ms > policy.max_age_ms:
            return "failed", attempt.at_ms
        return "pending", next_ms

    # -- the background thread ------------------------------------------------------------

    def start(self) -> None:
        """Start delivering in a daemon thread (pending deliveries from before a restart
        are due at once)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="payguard-webhooks", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the outbox now (new deliveries were written)."""
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the attempt in flight (bounded by its timeout) and stop; what is still
        pending stays in the outbox for the next start."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout_s)
        self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.deliver_due()
                idle_s = self._idle_s()
            except Exception:  # a bug or a broken outbox: log, back off, keep the thread
                log.exception("webhook dispatcher pass failed")
                idle_s = IDLE_S
            self._wake.wait(idle_s)
            self._wake.clear()

    def _idle_s(self) -> float:
        due = self.outbox.next_due_ms()
        if due is None:
            return IDLE_S
        return min(IDLE_S, max(0.0, (due - self.clock()) / 1000))


def _log_attempt(delivery: Delivery, attempt: Attempt) -> None:
    outcome = attempt.status if attempt.status is not None else attempt.error
    log.log(
        logging.INFO if delivery.state != "failed" else logging.WARNING,
        "webhook %s (%s) attempt %d: %s -> %s",
        delivery.delivery_id,
        delivery.type,
        attempt.number,
        outcome,
        delivery.state,
    )
