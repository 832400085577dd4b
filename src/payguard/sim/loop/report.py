"""What only a closed loop can show, as figures (JSON) and on the terminal.

Money is integer fen until formatting. Definitions (docs/backtest.md, "Closed loop"):

* **attempted** — attack money the attackers tried at least once (a retry of the same
  operation is not counted twice); `attempted_with_retries_fen` counts every try;
* **lost** — attack money that left: allowed, challenged and passed, or held and not
  revoked before its release;
* **challenges per customer with friction** — challenges shown to legitimate customers,
  divided by the customers who met any friction (challenge, hold, review, block);
* **repeat challenge for a cleared cause** — a legitimate customer challenged by a rule on
  the same device within `clear_hours` (the ruleset's) of passing a strong step-up (face,
  hardware token, in-app confirmation) on a challenge that rule caused;
* **time to stop** — from a campaign's first event to the refusal after which it lost no
  more money; a campaign whose last money event was lost was never stopped;
* **lost paths** — the lost money split by why it got through: scenario, the way
  (`LOST_WAYS`), the step-up passed, the attacker's retry tactic and attempt, whether the
  engine had stopped anything of the campaign before, and the rules behind the decision.
"""

import jinja2
import msgspec
from rich.console import Console
from rich.table import Table

from payguard.backtest.fmt import DASH, cny, duration, pct
from payguard.backtest.score import Summary, share

LOST_WAYS: tuple[str, ...] = (
    "allowed",
    "challenge passed",
    "hold not revoked",
    "review released",
)
"""How attack money gets through: allowed, a challenge the attacker passed, a hold nobody
revoked before its release, or a review an analyst wrongly released."""
FIRST_TRY = "first try"
"""The tactic of an operation as planned (not a retry after a refusal)."""
STAGES: tuple[str, ...] = ("before any stop", "after a stop")
"""Whether the engine had stopped (reviewed or blocked) any event of the campaign before the
operation: money lost before any stop is detection's to win, after one the follow-on's."""
NO_RULE = "(no rule)"
"""The rules of a decision no live rule hit (an allow on its own merits)."""


class ScenarioLoop(msgspec.Struct, frozen=True):
    """One scenario's (or the total's) attack figures under the loop."""

    scenario: str
    campaigns: int
    campaigns_with_money: int
    campaigns_stopped: int
    campaigns_gave_up: int
    planned_fen: int
    """Attack money in the campaigns' plans (what an attacker never refused would try)."""
    attempted_fen: int
    attempted_with_retries_fen: int
    lost_fen: int
    lost_share: float | None
    """lost / attempted."""
    retries_after_decline: int
    median_seconds_to_stop: float | None
    retry_tactics: dict[str, int] = msgspec.field(default_factory=dict)
    lost_via: dict[str, int] = msgspec.field(default_factory=dict)
    """How lost money got through (fen): allowed, challenge passed, hold not revoked."""


class LostPath(msgspec.Struct, frozen=True):
    """Attack money lost one way: the operations that share scenario, way, step passed,
    tactic, attempt and stage, with the rules behind their decisions."""

    scenario: str
    via: str
    """How it got through (`LOST_WAYS`)."""
    step: str
    """The challenge method the attacker passed (`-` when the decision was no challenge)."""
    tactic: str
    """The retry tactic of the operation (`FIRST_TRY`: as planned)."""
    attempt: int
    """1 for the planned operation, 2 for its first retry after a refusal, …"""
    stage: str
    """`STAGES`: before or after the engine's first stop of the campaign."""
    operations: int
    lost_fen: int
    rules: dict[str, int] = msgspec.field(default_factory=dict)
    """Rule behind the decision → fen of this path's money it was behind (`NO_RULE`: none)."""


class CampaignLoss(msgspec.Struct, frozen=True):
    """One campaign's attack money under the loop: the largest losses, named."""

    campaign: str
    scenario: str
    variant: str
    attempted_fen: int
    lost_fen: int
    lost_after_stop_fen: int
    """Of `lost_fen`, what left after the engine had stopped something of the campaign."""
    lost_via: dict[str, int] = msgspec.field(default_factory=dict)


class LegitLoop(msgspec.Struct, frozen=True):
    """Legitimate customers under the loop."""

    customers: int
    customers_with_friction: int
    challenges: int
    """Challenges shown to legitimate customers (any event type, retries included)."""
    challenges_per_customer_with_friction: float | None
    max_challenges_one_customer: int
    customers_challenged: int
    customers_abandoned: int
    """Customers who abandoned at least one challenge."""
    customers_gave_up: int
    """Customers who gave up an operation after it was refused (challenge not passed,
    review, block) and no retry went through."""
    repeat_challenges_cleared: int
    customers_repeat_challenged: int
    money_events: int
    money_refused: int
    retries: int
    repeat_rules: dict[str, int] = msgspec.field(default_factory=dict)
    """Rule → repeat challenges it caused for a cause already cleared (most first)."""


class AnalystLoop(msgspec.Struct, frozen=True):
    """The fraud desk of the loop (`loop.analyst`): reviews and their verdicts."""

    reviews: int
    """Operations the engine sent to review (attack and honest)."""
    resolved: int
    """Reviews an analyst labelled before the window ended."""
    attack_fraud: int
    attack_released: int
    """Attack operations the analyst wrongly labelled `not_fraud` (their money left)."""
    honest_released: int
    honest_fraud: int
    """Honest operations the analyst wrongly labelled `fraud`."""
    median_hours_to_resolve: float | None


class LoopReport(msgspec.Struct, frozen=True):
    """The closed-loop run: world, engine, attack and legitimate figures."""

    seed: int
    users: int
    days: int
    variants: str
    ruleset: str
    clear_hours: int
    events: int
    """Events decided (planned, retries and outcome events)."""
    planned_events: int
    skipped_events: int
    """Planned events never sent: their campaign gave up, or what they refer to never
    happened (a refund of a payment that was refused)."""
    postponed_events: int
    """Events moved after the answer of a challenge pending on their account and device."""
    outcome_events: dict[str, int]
    """Outcome events sent back to the engine, per type (challenge_result, fraud_report
    on a hold notice)."""
    challenge_results: dict[str, int]
    """`actor/method/outcome` → count (actor: customer or attacker)."""
    total: ScenarioLoop
    scenarios: list[ScenarioLoop]
    legit: LegitLoop
    refused_outcomes: dict[str, int] = msgspec.field(default_factory=dict)
    """Outcome events the engine refused, per type (an answer to a decision it no longer
    takes answers for); each is a finding, the loop goes on."""
    elapsed_s: float = 0.0
    analyst: AnalystLoop | None = None
    """The analyst queue's figures (None when the loop ran without one)."""
    lost_paths: list[LostPath] = msgspec.field(default_factory=list)
    """Why the lost money got through, largest first (their `lost_fen` sum to the total's)."""
    largest_losses: list[CampaignLoss] = msgspec.field(default_factory=list)
    """The campaigns that lost most, largest first (at most `LARGEST_LOSSES`)."""


LARGEST_LOSSES = 10
"""Campaigns the report names in `largest_losses`."""
TERMINAL_PATHS = 12
"""Lost paths the terminal shows (the JSON and the HTML page carry all of them)."""


def render_loop(report: LoopReport, console: Console, open_loop: Summary | None = None) -> None:
    """The loop's figures; with `open_loop` (the same world's backtest) side by side."""
    rate = report.events / report.elapsed_s if report.elapsed_s > 0 else 0.0
    console.print(
        f"closed loop, seed {report.seed}, {report.users:,} users x {report.days} days "
        f"({report.variants} variants), ruleset {report.ruleset}: {report.events:,} events "
        f"decided in {report.elapsed_s:.1f} s ({rate:,.0f} events/s), "
        f"{report.skipped_events:,} planned events never sent",
        highlight=False,
    )
    console.print(_headline(report, open_loop))
    console.print(_scenarios(report))
    if report.lost_paths:
        console.print(_paths(report, TERMINAL_PATHS))
    if report.largest_losses:
        console.print(_campaign_losses(report))
    if report.challenge_results:
        console.print(_challenges(report))
    if report.refused_outcomes:
        refused = ", ".join(f"{k} {v:,}" for k, v in report.refused_outcomes.items())
        console.print(f"[red]outcome events the engine refused:[/red] {refused}")
    desk = report.analyst
    if desk is not None:
        console.print(
            f"analyst: {desk.reviews:,} reviews, {desk.resolved:,} resolved "
            f"(median {desk.median_hours_to_resolve or 0:.1f} h); attacks confirmed "
            f"{desk.attack_fraud:,}, released {desk.attack_released:,}; honest released "
            f"{desk.honest_released:,}, confirmed as fraud {desk.honest_fraud:,}",
            highlight=False,
        )
    repeats = report.legit.repeat_rules
    if repeats:
        top = ", ".join(f"{rule} {n:,}" for rule, n in list(repeats.items())[:5])
        console.print(f"rules behind repeat challenges for a cleared cause: {top}", highlight=False)


def headline_rows(r: LoopReport, open_loop: Summary | None) -> list[tuple[str, str, str]]:
    """(figure, closed loop, open loop) as displayed; the open loop is a dash without one."""
    t, lg = r.total, r.legit
    return [
        ("attack money in the plans (CNY)", cny(t.planned_fen), _open_money(open_loop)),
        ("attack money attempted (CNY)", cny(t.attempted_fen), _open_money(open_loop)),
        ("attack money lost (CNY)", cny(t.lost_fen), _open_lost(open_loop)),
        ("lost / attempted", pct(t.lost_share, 2), _open_lost_share(open_loop)),
        ("lost / planned", pct(share(t.lost_fen, t.planned_fen), 2), _open_lost_share(open_loop)),
        *((f"  lost, {way} (CNY)", cny(t.lost_via.get(way, 0)), DASH) for way in LOST_WAYS),
        ("attempted with every retry (CNY)", cny(t.attempted_with_retries_fen), DASH),
        ("attacker retries after a decline", f"{t.retries_after_decline:,}", DASH),
        ("campaigns stopped / with money", _of(t.campaigns_stopped, t.campaigns_with_money),
         _open_stopped(open_loop)),
        ("campaigns that gave up", f"{t.campaigns_gave_up:,}", DASH),
        ("median time to stop", duration(t.median_seconds_to_stop), _open_stop(open_loop)),
        ("customers with friction", f"{lg.customers_with_friction:,}", _open_friction(open_loop)),
        ("challenges per customer with friction",
         _ratio(lg.challenges_per_customer_with_friction), _open_challenges(open_loop)),
        ("most challenges, one customer", f"{lg.max_challenges_one_customer:,}", DASH),
        ("customers who abandoned a challenge", f"{lg.customers_abandoned:,}", DASH),
        ("customers who gave up an operation", f"{lg.customers_gave_up:,}", DASH),
        ("repeat challenges for a cleared cause",
         f"{lg.repeat_challenges_cleared:,} ({lg.customers_repeat_challenged:,} customers)", DASH),
    ]  # fmt: skip


SCENARIO_COLUMNS: tuple[str, ...] = (
    "scenario", "campaigns", "stopped", "gave up", "planned CNY", "attempted CNY", "lost CNY",
    "lost %", "retries", "median to stop", "retry tactics",
)  # fmt: skip


def scenario_rows(r: LoopReport) -> list[tuple[str, ...]]:
    """One row per scenario, then the total, in `SCENARIO_COLUMNS` order."""
    return [
        (
            s.scenario,
            f"{s.campaigns:,}",
            _of(s.campaigns_stopped, s.campaigns_with_money),
            f"{s.campaigns_gave_up:,}",
            cny(s.planned_fen),
            cny(s.attempted_fen),
            cny(s.lost_fen),
            pct(s.lost_share, 2),
            f"{s.retries_after_decline:,}",
            duration(s.median_seconds_to_stop),
            ", ".join(f"{k} {v}" for k, v in sorted(s.retry_tactics.items())) or DASH,
        )
        for s in [*r.scenarios, r.total]
    ]


PATH_COLUMNS: tuple[str, ...] = (
    "scenario", "lost via", "step passed", "tactic", "attempt", "stage", "operations",
    "lost CNY", "share of lost", "rules behind the decision",
)  # fmt: skip
CAMPAIGN_COLUMNS: tuple[str, ...] = (
    "campaign", "variant", "attempted CNY", "lost CNY", "lost after a stop CNY", "lost via",
)  # fmt: skip


def path_rows(
    r: LoopReport, limit: int | None = None, amounts: bool = True
) -> list[tuple[str, ...]]:
    """The lost paths in `PATH_COLUMNS` order, largest first (the first `limit`); the rules
    with the money each was behind, or (`amounts` off, for the terminal) the top two names."""
    lost = r.total.lost_fen
    return [
        (
            p.scenario,
            p.via,
            p.step,
            p.tactic,
            str(p.attempt),
            p.stage,
            f"{p.operations:,}",
            cny(p.lost_fen),
            pct(share(p.lost_fen, lost), 1),
            _rules_cell(p.rules, amounts),
        )
        for p in r.lost_paths[:limit]
    ]


def _rules_cell(rules: dict[str, int], amounts: bool) -> str:
    if amounts:
        return ", ".join(f"{rule} {cny(fen)}" for rule, fen in rules.items())
    names = list(rules)
    return ", ".join(names[:2]) + (f" +{len(names) - 2}" if len(names) > 2 else "")


def campaign_rows(r: LoopReport) -> list[tuple[str, ...]]:
    """The largest losses per campaign in `CAMPAIGN_COLUMNS` order."""
    return [
        (
            c.campaign,
            c.variant,
            cny(c.attempted_fen),
            cny(c.lost_fen),
            cny(c.lost_after_stop_fen),
            ", ".join(f"{way} {cny(fen)}" for way, fen in c.lost_via.items()),
        )
        for c in r.largest_losses
    ]


def _paths(r: LoopReport, limit: int) -> Table:
    shown = min(limit, len(r.lost_paths))
    table = Table(title=f"why the lost money got through ({shown} of {len(r.lost_paths)} paths)")
    for col in PATH_COLUMNS:
        table.add_column(col, justify="right" if col in _NUMERIC else "left")
    for row in path_rows(r, limit, amounts=False):
        table.add_row(*row)
    return table


def _campaign_losses(r: LoopReport) -> Table:
    table = Table(title="the campaigns that lost most")
    for col in CAMPAIGN_COLUMNS:
        table.add_column(col, justify="right" if col.endswith("CNY") else "left")
    for row in campaign_rows(r):
        table.add_row(*row)
    return table


_NUMERIC: frozenset[str] = frozenset({"attempt", "operations", "lost CNY", "share of lost"})


def _headline(r: LoopReport, open_loop: Summary | None) -> Table:
    table = Table(title="closed loop" + (" beside the open-loop backtest" if open_loop else ""))
    table.add_column("figure")
    table.add_column("closed loop", justify="right")
    if open_loop is not None:
        table.add_column("open loop", justify="right")
    for name, closed, opened in headline_rows(r, open_loop):
        table.add_row(name, closed, *((opened,) if open_loop is not None else ()))
    return table


def _scenarios(r: LoopReport) -> Table:
    table = Table(title="attack money under the loop, per scenario")
    for col in SCENARIO_COLUMNS:
        table.add_column(col, justify="left" if col in ("scenario", "retry tactics") else "right")
    for row in scenario_rows(r):
        table.add_row(*row)
    return table


def render_loop_html(report: LoopReport, open_loop: Summary | None = None) -> str:
    """The same tables as one self-contained page (no script, nothing from the network);
    Jinja2 autoescapes every value."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_PAGE).render(
        r=report,
        headline=headline_rows(report, open_loop),
        with_open=open_loop is not None,
        columns=SCENARIO_COLUMNS,
        scenarios=scenario_rows(report),
        path_columns=PATH_COLUMNS,
        paths=path_rows(report),
        campaign_columns=CAMPAIGN_COLUMNS,
        campaigns=campaign_rows(report),
        results=sorted(report.challenge_results.items()),
        repeats=list(report.legit.repeat_rules.items()),
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>payguard closed loop · seed {{ r.seed }} · {{ r.ruleset }}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1150px;
       padding: 0 1rem; color: #222; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .8rem 0; font-variant-numeric: tabular-nums; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f6f6f6; }
td:first-child, th:first-child { text-align: left; }
tr:last-child td { font-weight: 600; }
table.paths tr:last-child td { font-weight: normal; }
table.paths td, table.paths th { text-align: left; vertical-align: top; }
.meta { color: #555; }
</style>
</head>
<body>
<h1>payguard closed loop</h1>
<p class="meta">seed {{ r.seed }}, {{ "{:,}".format(r.users) }} users × {{ r.days }} days
({{ r.variants }} variants), ruleset {{ r.ruleset }}: {{ "{:,}".format(r.events) }} events
decided, {{ "{:,}".format(r.skipped_events) }} planned events never sent.
Definitions: docs/backtest.md, "Closed loop".</p>
<h2>The loop{% if with_open %} beside the open-loop backtest{% endif %}</h2>
<table>
<tr><th>figure</th><th>closed loop</th>{% if with_open %}<th>open loop</th>{% endif %}</tr>
{% for name, closed, opened in headline %}<tr><td>{{ name }}</td><td>{{ closed }}</td>
{% if with_open %}<td>{{ opened }}</td>{% endif %}</tr>
{% endfor %}</table>
<h2>Attack money under the loop, per scenario</h2>
<table>
<tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in scenarios %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% if paths %}<h2>Why the lost money got through</h2>
<p class="meta">Each row: the attack operations that got through the same way (the step-up
passed, the retry tactic and attempt, before or after the engine first stopped anything of
the campaign), with the rules behind their decisions.</p>
<table class="paths">
<tr>{% for c in path_columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in paths %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
<h2>The campaigns that lost most</h2>
<table class="paths">
<tr>{% for c in campaign_columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in campaigns %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endif %}
<h2>Challenge results sent back</h2>
<table>
<tr><th>actor / method / outcome</th><th>count</th></tr>
{% for key, n in results %}<tr><td>{{ key }}</td><td>{{ "{:,}".format(n) }}</td></tr>
{% endfor %}</table>
{% if r.analyst %}<h2>Analyst queue</h2>
<table>
<tr><th>reviews</th><th>resolved</th><th>median hours to resolve</th><th>attacks confirmed</th>
<th>attacks released</th><th>honest released</th><th>honest confirmed as fraud</th></tr>
<tr><td>{{ r.analyst.reviews }}</td><td>{{ r.analyst.resolved }}</td>
<td>{{ r.analyst.median_hours_to_resolve }}</td><td>{{ r.analyst.attack_fraud }}</td>
<td>{{ r.analyst.attack_released }}</td><td>{{ r.analyst.honest_released }}</td>
<td>{{ r.analyst.honest_fraud }}</td></tr>
</table>{% endif %}
{% if repeats %}<h2>Rules behind repeat challenges for a cleared cause</h2>
<table>
<tr><th>rule</th><th>repeat challenges</th></tr>
{% for rule, n in repeats %}<tr><td>{{ rule }}</td><td>{{ "{:,}".format(n) }}</td></tr>
{% endfor %}</table>{% endif %}
</body>
</html>
"""


def _challenges(r: LoopReport) -> Table:
    table = Table(title="challenge results sent back (actor / method / outcome)")
    table.add_column("actor / method / outcome")
    table.add_column("count", justify="right")
    for key, count in sorted(r.challenge_results.items()):
        table.add_row(key, f"{count:,}")
    return table


def _of(part: int, whole: int) -> str:
    return f"{part:,} / {whole:,}"


def _ratio(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def _open_money(s: Summary | None) -> str:
    return DASH if s is None else cny(s.total.money_fen)


def _open_lost(s: Summary | None) -> str:
    return DASH if s is None else cny(s.total.loss_fen)


def _open_lost_share(s: Summary | None) -> str:
    return DASH if s is None else pct(share(s.total.loss_fen, s.total.money_fen), 2)


def _open_stopped(s: Summary | None) -> str:
    return DASH if s is None else _of(s.total.campaigns_stopped, s.total.campaigns_with_money)


def _open_stop(s: Summary | None) -> str:
    return DASH if s is None else duration(s.total.median_seconds_to_stop)


def _open_friction(s: Summary | None) -> str:
    return DASH if s is None else f"{s.legit.customers_with_friction:,}"


def _open_challenges(s: Summary | None) -> str:
    """Open loop: challenges on legitimate events over customers with friction."""
    if s is None:
        return DASH
    return _ratio(share(s.legit.actions.get("challenge", 0), s.legit.customers_with_friction))
