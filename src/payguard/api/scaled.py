"""`payguard serve --workers N --state redis://…`: N stateless worker processes.

Each worker is a uvicorn worker process running `app()`: an engine whose feature state,
phone links, watched history and idempotency claims live in Redis (payguard.state.redis),
so any worker can decide any event and the same event_id posted to two workers at once
is decided once. uvicorn's supervisor binds the socket once and restarts a worker that
dies; a worker holds nothing another needs.

What each worker still keeps to itself (docs/scale.md, "Not in the seam yet"): the outcome
book, and, without `PAYGUARD_LOG_DSN`, its event log and hold book
(`<data_dir>/workers/<pid>/`); with it, every worker records into the one Postgres log
and hold book. Metrics add up over the workers (`PROMETHEUS_MULTIPROC_DIR` under the
data directory) and a Redis that stops answering is met by the degraded mode
(`policy.degraded`: money out fails closed to review, the rest open, with the reason).
The identity graph and the chain patterns are off in this mode (`graph_chains = false`):
their state is not in the seam yet, so a ruleset whose rules read them is refused at start.
"""

import logging
import os
from typing import Any

import msgspec

from payguard.api.app import create_app
from payguard.auth import Access
from payguard.auth.keys import NewKey
from payguard.config import Settings, load_settings
from payguard.engine import Engine
from payguard.engine.compile import compile_ruleset, load_model
from payguard.engine.durability import DATABASE_FILE, hold_book, open_log
from payguard.features import FeatureState, load_catalog
from payguard.state.redis import RedisState, connect
from payguard.store import SQLiteRecorder

log = logging.getLogger("payguard.api")

STATE_ENV = "PAYGUARD_STATE"
"""The state URL the supervisor hands its workers."""
DEV_KEY_ENV = "PAYGUARD_WORKERS_DEV_ADMIN"
"""The development admin key the supervisor made (JSON), so every worker accepts it."""


def scaled_settings(settings: Settings, state_url: str | None = None) -> Settings:
    """The settings a stateless worker runs with: the graph and chains off; rulesets and
    list changes published on the board of `publish_url`, else of the Postgres log, else
    of the state's Redis (so a ruleset published on one worker reaches every worker)."""
    publish_url = settings.publish_url or settings.log_dsn or state_url
    return msgspec.structs.replace(settings, graph_chains=False, publish_url=publish_url)


def open_engine(settings: Settings, state_url: str) -> Engine:
    """A worker's engine: its state in Redis, no snapshots; the event log and holds in the
    shared Postgres log with `log_dsn` (docs/scale.md), else a SQLite log of its own."""
    settings = scaled_settings(settings, state_url)
    features = FeatureState(load_catalog(settings.features), settings.utc_offset)
    text = settings.ruleset.read_text(encoding="utf-8")
    ruleset = compile_ruleset(text, features, graph_chains=False)
    if settings.log_dsn:
        recorder, holds = open_log(settings)
    else:
        worker_dir = settings.data_dir / "workers" / str(os.getpid())
        worker_dir.mkdir(parents=True, exist_ok=True)
        recorder = SQLiteRecorder(worker_dir / DATABASE_FILE, synchronous=settings.synchronous)
        holds = hold_book(recorder, worker_dir)
    return Engine(
        features=features,
        ruleset=ruleset,
        recorder=recorder,
        holds=holds,
        settings=settings,
        model=load_model(settings, features),
        state=RedisState(features, connect(state_url)),
    )


def app() -> Any:
    """The ASGI app of one worker process (uvicorn calls this factory in each)."""
    settings = load_settings()
    if not logging.getLogger().handlers:  # spawned with log_config=None: nothing set up,
        # so the worker's warnings (degraded mode, lost writes) would go nowhere
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    engine = open_engine(settings, os.environ[STATE_ENV])
    extra = []
    if DEV_KEY_ENV in os.environ:
        extra.append(msgspec.json.decode(os.environ[DEV_KEY_ENV], type=NewKey))
    access = Access.open(
        settings.data_dir,
        rate_per_s=settings.rate_limit_per_s,
        burst=settings.rate_limit_burst,
        extra_keys=extra,
    )

    def close() -> None:
        engine.close()
        engine.state.close()
        access.close()

    log.info("worker %d deciding on state %s", os.getpid(), os.environ[STATE_ENV])
    return create_app(engine, on_shutdown=[close], access=access)
