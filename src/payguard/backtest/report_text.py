"""The backtest on the terminal: rich tables, the same numbers as the HTML and JSON."""

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from payguard.backtest.fmt import DASH, cny, duration, number, pct
from payguard.backtest.score import (
    COLD_START_DAYS,
    FRICTION,
    STEADY_FROM_DAY,
    STOP_KINDS,
    ScenarioResult,
    Summary,
)
from payguard.backtest.score import share as ratio
from payguard.types import CHALLENGE_METHODS, LEAVING_TYPES

TOP_LOSSES = 10


def render_text(summary: Summary, console: Console) -> None:
    """Print every section of the report."""
    console.print(_headline(summary), highlight=False)
    for table in (
        _scenarios(summary),
        _verification(summary),
        _legit(summary),
        _rules(summary),
        _scores(summary),
        _losses(summary),
    ):
        if table.row_count:
            console.print(table)
    legit = summary.legit
    console.print(
        f"legitimate customers with any friction: {legit.customers_with_friction:,} of "
        f"{legit.customers:,} ({pct(ratio(legit.customers_with_friction, legit.customers), 2)}); "
        f"beyond a routine SMS code: {legit.customers_with_strong_friction:,} "
        f"({pct(ratio(legit.customers_with_strong_friction, legit.customers), 2)})",
        highlight=False,
    )
    console.print(
        f"legitimate money events with friction: first {COLD_START_DAYS} days "
        f"{pct(legit.cold_start_friction, 2)}, from day {STEADY_FROM_DAY + 1} on "
        f"{pct(legit.steady_friction, 2)} (cold start / steady state "
        f"{_times(legit.cold_start_friction, legit.steady_friction)})",
        highlight=False,
    )


def _times(part: float | None, whole: float | None) -> str:
    return "–" if part is None or not whole else f"{part / whole:.2f}×"


def _headline(s: Summary) -> str:
    rate = f" ({s.events / s.elapsed_s:,.0f} events/s)" if s.elapsed_s >= 0.1 else ""
    repeats = f", {s.repeats:,} repeats skipped" if s.repeats else ""
    return (
        f"[bold]backtest[/bold] ruleset {escape(s.ruleset)}: {s.events:,} events "
        f"({s.attack_events:,} attack in {s.total.campaigns:,} campaigns, "
        f"{s.legit_events:,} legitimate{repeats}) decided in {s.elapsed_s:.1f} s{rate}"
    )


def _scenarios(s: Summary) -> Table:
    table = Table(
        title="Attack campaigns (medians over stopped campaigns)",
        caption=f"money: {', '.join(sorted(LEAVING_TYPES))} (docs/backtest.md)",
    )
    table.add_column("scenario", no_wrap=True)
    for name in (
        "campaigns",
        "stopped before money",
        "money stopped",
        "money CNY",
        "loss CNY",
        "time to stop",
        "events to stop",
    ):
        table.add_column(name, justify="right")
    for row in s.scenarios:
        table.add_row(*_scenario_cells(row))
    if s.scenarios:
        table.add_row(*_scenario_cells(s.total), style="bold")
    return table


SHORT_METHOD = {
    "face": "face",
    "in_app_confirm": "in-app",
    "callback": "callback",
    "hardware_token": "token",
    "sms_otp": "SMS",
}


def _verification(s: Summary) -> Table:
    """Per scenario: the methods challenges offered on attack events, and how campaigns
    were stopped (a challenge counts only with no method its attacker passes)."""
    table = Table(
        title="Verification: methods offered on attack events; how campaigns were stopped",
        caption="offered: challenged attack events offering each method (in-app: "
        "in_app_confirm, token: hardware_token); stopped by: campaigns, by the action at "
        "their stop (hold: revoked before release); SMS stops: of the challenge stops, "
        "those offering sms_otp",
    )
    table.add_column("scenario", no_wrap=True)
    table.add_column("challenged", justify="right")
    for method in CHALLENGE_METHODS:
        table.add_column(SHORT_METHOD.get(method, method), justify="right")
    for kind in STOP_KINDS:
        table.add_column(f"by {kind.removeprefix('revoked ')}", justify="right")
    table.add_column("SMS stops", justify="right")
    for row in [*s.scenarios, s.total] if s.scenarios else []:
        table.add_row(
            escape(row.scenario),
            f"{row.challenged_events:,}",
            *(f"{row.offered.get(m, 0):,}" for m in CHALLENGE_METHODS),
            *(f"{row.stopped_by.get(k, 0):,}" for k in STOP_KINDS),
            f"{row.stopped_by_sms_otp:,}",
            style="bold" if row is s.total else None,
        )
    return table


def _scenario_cells(r: ScenarioResult) -> list[str]:
    before = f"{r.stopped_before_money}/{r.campaigns_with_money}"
    return [
        escape(r.scenario),
        f"{r.campaigns:,}",
        f"{before} ({pct(r.stopped_before_money_share, 0)})",
        pct(r.money_stopped_share),
        cny(r.money_fen),
        cny(r.loss_fen),
        duration(r.median_seconds_to_stop),
        number(r.median_events_to_stop),
    ]


def _legit(s: Summary) -> Table:
    legit = s.legit
    table = Table(title="Legitimate traffic (events without a label)")
    for name in ("events", "count", *FRICTION, "any friction"):
        table.add_column(name, justify="left" if name == "events" else "right")
    for name, actions, total in (
        ("money events", legit.money_actions, legit.money_events),
        ("all events", legit.actions, legit.events),
    ):
        rates = [pct(ratio(actions[a], total), 2) for a in FRICTION]
        any_friction = sum(actions[a] for a in FRICTION)
        table.add_row(name, f"{total:,}", *rates, pct(ratio(any_friction, total), 2))
    return table


def _rules(s: Summary) -> Table:
    table = Table(title="Rules (shadow rows: what the rule would have done)")
    table.add_column("rule", no_wrap=True)
    table.add_column("mode")
    table.add_column("action")
    for name in ("hits", "attack", "precision", "recall", "campaigns", "stops alone", "errors"):
        table.add_column(name, justify="right")
    labelled = any(r.labelled_fraud or r.labelled_not_fraud for r in s.rules)
    if labelled:  # verdicts came back in the stream (`label` events): precision as they tell it
        table.add_column("labelled fraud / not", justify="right")
        table.add_column("labelled precision", justify="right")
    for r in s.rules:
        verdicts = (
            [f"{r.labelled_fraud:,} / {r.labelled_not_fraud:,}", pct(r.labelled_precision)]
            if labelled
            else []
        )
        alone = DASH if r.money_stopped_alone_fen is None else pct(r.money_stopped_alone_share)
        table.add_row(
            escape(r.rule),
            r.mode,
            r.action,
            f"{r.hits:,}",
            f"{r.attack_hits:,}",
            pct(r.precision),
            pct(r.recall),
            f"{r.campaigns_hit:,}",
            alone,
            f"{r.errors:,}" if r.errors else "",
            *verdicts,
            style="dim" if not r.hits else None,
        )
    return table


def _scores(s: Summary) -> Table:
    h = s.scores
    table = Table(title="Score distribution (share of each class)")
    for name in ("score", "attack events", "legitimate events"):
        table.add_column(name, justify="right")
    attack, legit = sum(h.attack), sum(h.legit)
    for bucket, a, g in zip(h.buckets, h.attack, h.legit, strict=True):
        table.add_row(bucket, f"{a:,} ({pct(ratio(a, attack))})", f"{g:,} ({pct(ratio(g, legit))})")
    return table


def _losses(s: Summary) -> Table:
    table = Table(title=f"Largest losses (top {TOP_LOSSES} campaigns)")
    table.add_column("campaign", no_wrap=True)
    for name in ("scenario", "money CNY", "loss CNY", "stopped at"):
        table.add_column(name, justify="right" if "CNY" in name else "left")
    for c in [c for c in s.campaigns if c.loss_fen > 0][:TOP_LOSSES]:
        where = f"{c.stop_type} ({c.stop_action}, event {c.events_to_stop})" if c.stopped else DASH
        names = escape(c.campaign), escape(c.scenario)
        table.add_row(*names, cny(c.money_fen), cny(c.loss_fen), where)
    return table
