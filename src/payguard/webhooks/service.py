"""Webhooks as the server runs them: outbox + notifier + dispatcher, built from Settings.

`Webhooks.open(settings)` returns None when no endpoint is configured. Otherwise the
outbox is `webhooks.db` in the data directory; `attach(engine)` makes the notifier an
engine listener, `start()` starts the dispatcher (pending deliveries from before a restart
go out first), `close()` stops it and closes the outbox. The API calls these on startup
and shutdown (api/app.py).
"""

import random
from pathlib import Path

from payguard.config import Settings
from payguard.engine import Engine
from payguard.webhooks.dispatcher import (
    Clock,
    Dispatcher,
    RetryPolicy,
    Transport,
    wall_clock_ms,
)
from payguard.webhooks.notifier import WebhookNotifier
from payguard.webhooks.outbox import Outbox

OUTBOX_FILE = "webhooks.db"


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        timeout_ms=settings.webhook_timeout_ms,
        backoff_ms=settings.webhook_backoff_ms,
        max_attempts=settings.webhook_max_attempts,
        max_age_ms=settings.webhook_max_age_s * 1000,
    )


class Webhooks:
    """The three parts, wired: the notifier wakes the dispatcher when it writes."""

    def __init__(self, outbox: Outbox, notifier: WebhookNotifier, dispatcher: Dispatcher) -> None:
        self.outbox = outbox
        self.notifier = notifier
        self.dispatcher = dispatcher
        self._engine: Engine | None = None

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        path: Path | None = None,
        transport: Transport | None = None,
        clock: Clock = wall_clock_ms,
        rng: random.Random | None = None,
    ) -> "Webhooks | None":
        """Webhooks for the configured endpoints (None: none configured); the outbox at
        `path`, by default `webhooks.db` in the data directory."""
        if not settings.webhook_urls:
            return None
        outbox = Outbox(path if path is not None else settings.data_dir / OUTBOX_FILE)
        dispatcher = Dispatcher(
            outbox,
            settings.webhook_secrets,
            retry_policy(settings),
            transport=transport,
            clock=clock,
            rng=rng,
        )
        notifier = WebhookNotifier(
            outbox, settings.webhook_urls, clock=clock, on_written=dispatcher.wake
        )
        return cls(outbox, notifier, dispatcher)

    def attach(self, engine: Engine) -> None:
        """Have `engine` tell the notifier of every decision, hold resolution and outcome."""
        if self.notifier not in engine.listeners:
            engine.listeners.append(self.notifier)
            engine.outcomes.book.subscribe(self.notifier.on_outcome)
        self._engine = engine

    def start(self) -> None:
        self.dispatcher.start()

    def close(self) -> None:
        """Stop the dispatcher (after the attempt in flight) and close the outbox; what is
        still pending is sent after the next start."""
        self.dispatcher.stop()
        self.notifier.flush()
        if self._engine is not None and self.notifier in self._engine.listeners:
            self._engine.listeners.remove(self.notifier)
            self._engine.outcomes.book.unsubscribe(self.notifier.on_outcome)
        self.outbox.close()
