"""Run the API under uvicorn: one process, one worker, one engine."""

import logging

import uvicorn

from payguard.api.app import create_app
from payguard.config import Settings
from payguard.engine import Engine

log = logging.getLogger("payguard.api")


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    access_log: bool = False,
) -> None:
    """Open the engine (recovering state), serve until SIGINT/SIGTERM, then close it
    (flush + snapshot). A single worker: the engine owns the feature state in memory.

    The uvicorn access log is off by default (one line per decision is noise at thousands
    of requests per second); it never contains bodies either way."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    engine = Engine.open(settings)
    if settings.uses_dev_key:
        log.warning(
            "PAYGUARD_TOKEN_KEY is not set: tokens use the public development key, so card, "
            "ID and phone tokens can be reversed by guessing; set a secret key in production"
        )
    closed = False

    def close() -> None:  # on shutdown, or after a failed start; never twice
        nonlocal closed
        if not closed:
            closed = True
            engine.close()
            log.info("engine closed: records flushed, state snapshot written")

    app = create_app(engine, on_shutdown=[close])
    log.info(
        "payguard serving on http://%s:%d (ruleset %s, %d records)",
        host,
        port,
        engine.ruleset.version,
        engine.recorder.last_seq(),
    )
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            workers=1,
            access_log=access_log,
            log_level=settings.log_level.lower(),
            log_config=None,
        )
    finally:
        close()
