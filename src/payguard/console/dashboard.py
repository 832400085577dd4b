"""The dashboard: decisions per action over time, friction rate, money stopped, rule errors
(`stats.figures_of`, counted at most once a minute) and queue ages, drawn by ECharts from
JSON in the page."""

from typing import Any, Final

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromQuery

from payguard.console.queue import queue_ages
from payguard.console.stats import action_series, figures_of
from payguard.console.web import ConsoleRefusal, ConsoleServices, render_page, session_of

DEFAULT_DAYS: Final = 30
MAX_DAYS: Final = 90


def chart_data(services: ConsoleServices, days: int) -> dict[str, Any]:
    """Everything the charts draw, as one JSON-ready dict."""
    figures = figures_of(services, days)
    return {
        "days": [d.day for d in figures.days],
        "per_action": action_series(figures.days),
        "friction_rate": [round(d.friction_rate * 100, 2) for d in figures.days],
        "money_stopped": [d.money_stopped_fen / 100 for d in figures.days],
        "rule_errors": [d.rule_errors for d in figures.days],
        "queue_ages": queue_ages(services),
        "records": figures.records,
        "counted_ms": figures.counted_ms,
    }


def dashboard_handlers(services: ConsoleServices) -> list[HTTPRouteHandler]:
    @get("/dashboard", sync_to_thread=False, opt={"scope": "decisions:read"})
    def dashboard(
        request: Request[Any, Any, Any], days: FromQuery[int] = DEFAULT_DAYS
    ) -> Response[str]:
        if not 1 <= days <= MAX_DAYS:
            raise ConsoleRefusal(422, f"days: a whole number from 1 to {MAX_DAYS}")
        data = chart_data(services, days)
        return render_page(
            "dashboard.html", session_of(request), services.signer, days=days,
            data=data,
        )  # fmt: skip

    return [dashboard]
