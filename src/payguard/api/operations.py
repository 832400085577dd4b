"""`/healthz`, `/readyz` and `/metrics`: liveness, readiness and Prometheus metrics."""

from typing import Final

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from payguard.api.errors import documented_error
from payguard.engine import Engine
from payguard.webhooks import Webhooks

PROMETHEUS_TEXT: Final = "text/plain; version=0.0.4"


class Health(msgspec.Struct):
    status: str
    ruleset: str
    recorded: int


class Readiness(msgspec.Struct):
    """`ready` (200) or `not_ready` (503) with the reasons (docs/security.md, "Operations")."""

    status: str
    reasons: list[str]


def operation_handlers(engine: Engine, hooks: Webhooks | None) -> list[HTTPRouteHandler]:
    """The operations routes over `engine` (and the webhook outbox's gauges, if any)."""
    metrics = engine.metrics

    @get(
        "/healthz",
        sync_to_thread=False,
        summary="Liveness",
        description="`recorded` is the sequence number of the newest durable record.",
        tags=["operations"],
    )
    def healthz() -> Health:
        return Health(
            status="ok", ruleset=engine.ruleset.version, recorded=engine.recorder.last_seq()
        )

    @get(
        "/readyz",
        sync_to_thread=False,
        summary="Readiness",
        description=(
            "200 `ready` when state recovery has finished, the ruleset has rules and the "
            "event log takes a write (a real 64 KiB commit, so a full disk shows here); "
            "otherwise 503 `not_ready` with the reasons. Open like /healthz (liveness)."
        ),
        tags=["operations"],
        responses={503: documented_error(Readiness, "Not ready")},
    )
    def readyz() -> Response[Readiness]:
        reasons = engine.readiness()
        status = "not_ready" if reasons else "ready"
        return Response(
            Readiness(status=status, reasons=reasons), status_code=503 if reasons else 200
        )

    @get(
        "/metrics",
        sync_to_thread=False,
        summary="Prometheus metrics",
        description="Decisions by type and action, rejections, latency histogram, gauges.",
        tags=["operations"],
        media_type=PROMETHEUS_TEXT,
    )
    def prometheus() -> str:
        gauges = engine.gauges()
        if hooks is not None:
            for state, count in hooks.outbox.counts().items():
                gauges[f"payguard_webhook_deliveries_{state}"] = count
        return metrics.render(gauges)

    return [healthz, readyz, prometheus]
