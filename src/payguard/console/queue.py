"""The queue and case pages over the case service (payguard.cases)."""

from typing import Any

from litestar.handlers import HTTPRouteHandler

from payguard.console.web import ConsoleServices


def queue_ages(services: ConsoleServices) -> list[dict[str, Any]]:
    return []


def case_handlers(services: ConsoleServices) -> list[HTTPRouteHandler]:
    return []
