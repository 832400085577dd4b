"""Run the API under uvicorn: one process, one worker, one engine.

Connection limits (docs/security.md, "Rate limits and timeouts"), all from Settings:
`request_timeout_s` for a whole request (headers and body; `timeouts.py`),
`keep_alive_s` for an idle keep-alive connection (uvicorn's `timeout_keep_alive`),
`max_concurrency` connections and requests in flight before uvicorn answers 503
(`limit_concurrency`), and `max_header_bytes` for the request line and headers (more →
400 and the connection closes). The HTTP parser is httptools (llhttp, in C) unless
`PAYGUARD_HTTP=h11`; the event loop is uvloop (libuv) when it is installed.
"""

import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import msgspec
import uvicorn

from payguard.api.app import create_app
from payguard.api.timeouts import DeadlineH11Protocol, DeadlineHttpToolsProtocol
from payguard.auth import Access, banner, check_token_key, dev_admin_key, dev_mode
from payguard.config import Settings
from payguard.engine import Engine
from payguard.metrics import share_across_workers
from payguard.state import StateUnavailable
from payguard.state.redis import connect

log = logging.getLogger("payguard.api")


def uvicorn_limits(settings: Settings) -> dict[str, Any]:
    """The uvicorn options that bound slow, idle, oversized and too many connections, on
    the configured HTTP parser."""
    limits: dict[str, Any] = {
        "timeout_keep_alive": settings.keep_alive_s,
        "limit_concurrency": settings.max_concurrency,
    }
    if settings.http == "h11":
        limits["http"] = DeadlineH11Protocol.with_timeout(settings.request_timeout_s)
        limits["h11_max_incomplete_event_size"] = settings.max_header_bytes
    else:
        limits["http"] = DeadlineHttpToolsProtocol.with_limits(
            settings.request_timeout_s, settings.max_header_bytes
        )
    return limits


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    access_log: bool = False,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Open the engine (recovering state), serve until SIGINT/SIGTERM, then close it
    (flush + snapshot). A single worker: the engine owns the feature state in memory.

    Refuses to start (StartupRefused, naming PAYGUARD_TOKEN_KEY) on the development or
    a short token key unless `PAYGUARD_DEV=1`; in development mode it prints a banner
    with a development admin key for this run (payguard.auth.devmode).

    The uvicorn access log is off by default (one line per decision is noise at thousands
    of requests per second); it never contains bodies either way."""
    env = os.environ if environ is None else environ
    dev = dev_mode(env)
    check_token_key(settings.token_key, is_dev_key=settings.uses_dev_key, dev=dev)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    dev_admin = dev_admin_key(env, time.time_ns() // 1_000_000)
    engine = Engine.open(settings, serving=True)
    access = Access.open(
        settings.data_dir,
        rate_per_s=settings.rate_limit_per_s,
        burst=settings.rate_limit_burst,
        extra_keys=[dev_admin] if dev_admin is not None else [],
    )
    if dev:
        print(banner(dev_admin, settings.uses_dev_key), file=sys.stderr, flush=True)
    closed = False

    def close() -> None:  # on shutdown, or after a failed start; never twice
        nonlocal closed
        if not closed:
            closed = True
            engine.close()
            access.close()
            log.info("engine closed: records flushed, state snapshot written")

    app = create_app(engine, on_shutdown=[close], access=access)
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
            **uvicorn_limits(settings),
        )
    finally:
        close()


def serve_workers(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    workers: int,
    state_url: str,
    access_log: bool = False,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Serve with `workers` stateless worker processes on the Redis state at `state_url`
    (payguard.api.scaled). Refuses to start (StateUnavailable) when Redis does not answer,
    and (StartupRefused) on a development token key outside development mode."""
    from payguard.api.scaled import DEV_KEY_ENV, STATE_ENV

    env = os.environ if environ is None else environ
    dev = dev_mode(env)
    check_token_key(settings.token_key, is_dev_key=settings.uses_dev_key, dev=dev)
    try:
        client = connect(state_url)
        client.ping()
        client.close()
    except StateUnavailable:
        raise
    except Exception as exc:
        raise StateUnavailable(f"{state_url}: {exc}") from exc
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    os.environ[STATE_ENV] = state_url
    dev_admin = dev_admin_key(env, time.time_ns() // 1_000_000)
    if dev_admin is not None:
        os.environ[DEV_KEY_ENV] = msgspec.json.encode(dev_admin).decode()
        print(banner(dev_admin, settings.uses_dev_key), file=sys.stderr, flush=True)
    log.info("payguard serving on http://%s:%d: %d workers on %s", host, port, workers, state_url)
    share_across_workers(settings.data_dir / "metrics")  # before the workers start
    limits = uvicorn_limits(settings)
    limits["http"] = "h11" if settings.http == "h11" else "httptools"  # a class cannot be
    # handed to spawned workers; the deadline protocols apply to the embedded server only
    uvicorn.run(
        "payguard.api.scaled:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level=settings.log_level.lower(),
        log_config=None,
        **limits,
    )
