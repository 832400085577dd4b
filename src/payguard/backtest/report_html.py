"""The backtest as one self-contained HTML page: tables plus inline SVG charts.

One file, no script, no stylesheet or font from the network, so it can be mailed, attached
to a ticket or opened offline. Jinja2 autoescapes every value (campaign ids, rule ids).
"""

from importlib import resources

import jinja2

from payguard.backtest.charts import Chart, Series, columns, hbars
from payguard.backtest.fmt import cny, duration, number, pct
from payguard.backtest.score import FRICTION, STOP_KINDS, Summary, share
from payguard.types import CHALLENGE_METHODS, LEAVING_TYPES

TEMPLATE = "report.html.j2"


def render_html(summary: Summary) -> str:
    """The full page for one backtest."""
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters.update(cny=cny, pct=pct, duration=duration, number=number)
    source = resources.files(__package__).joinpath("templates", TEMPLATE).read_text("utf-8")
    return env.from_string(source).render(
        s=summary,
        charts=charts(summary),
        friction=FRICTION,
        challenge_order=CHALLENGE_METHODS,
        stop_kinds=STOP_KINDS,
        money_types=sorted(LEAVING_TYPES),
        share=share,
    )


def charts(s: Summary) -> dict[str, Chart]:
    """Every chart of the page, by the name the template places it under."""
    return {
        "money": _money_chart(s),
        "before": _before_chart(s),
        "friction": _friction_chart(s),
        "rule_money": _rule_money_chart(s),
        "rule_hits": _rule_hits_chart(s),
        "scores": _score_chart(s),
    }


def _percent(value: float) -> str:
    return f"{value:.1f}%"


def _money_chart(s: Summary) -> Chart:
    names = [r.scenario for r in s.scenarios]
    stopped = [100 * (r.money_stopped_share or 0.0) for r in s.scenarios]
    lost = [100 - v if r.money_fen else 0.0 for r, v in zip(s.scenarios, stopped, strict=True)]
    notes = [f"{pct(r.money_stopped_share)} of {cny(r.money_fen)} CNY" for r in s.scenarios]
    return hbars(
        "Attack money stopped, by scenario",
        names,
        [Series("stopped", "ok", tuple(stopped)), Series("lost", "bad", tuple(lost))],
        _percent,
        axis_max=100,
        notes=notes,
    )


def _before_chart(s: Summary) -> Chart:
    values = [100 * (r.stopped_before_money_share or 0.0) for r in s.scenarios]
    notes = [f"{r.stopped_before_money}/{r.campaigns_with_money}" for r in s.scenarios]
    return hbars(
        "Campaigns stopped before their first money left",
        [r.scenario for r in s.scenarios],
        [Series("stopped before money", "ok", tuple(values))],
        _percent,
        axis_max=100,
        notes=notes,
    )


def _friction_chart(s: Summary) -> Chart:
    legit = s.legit
    rows = ((legit.money_actions, legit.money_events), (legit.actions, legit.events))
    series = [
        Series(action, action, tuple(100 * (share(a[action], n) or 0.0) for a, n in rows))
        for action in FRICTION
    ]
    return hbars(
        "Friction on legitimate traffic (% of events)",
        ["money events", "all events"],
        series,
        lambda v: f"{v:.2f}%",
    )


def _rule_money_chart(s: Summary) -> Chart:
    rows = [r for r in s.rules if r.money_stopped_alone_fen]
    rows.sort(key=lambda r: -(r.money_stopped_alone_fen or 0))
    return hbars(
        "Attack money each rule stops on its own (% of all attack money)",
        [f"{r.rule} ({r.mode})" if r.mode != "live" else r.rule for r in rows],
        [
            Series(
                "stopped alone",
                "ok",
                tuple(100 * (r.money_stopped_alone_share or 0.0) for r in rows),
            )
        ],
        _percent,
        axis_max=100,
    )


def _rule_hits_chart(s: Summary) -> Chart:
    rows = sorted((r for r in s.rules if r.hits), key=lambda r: -r.hits)
    return hbars(
        "Hits per rule: attack vs legitimate events",
        [f"{r.rule} ({r.mode})" if r.mode != "live" else r.rule for r in rows],
        [
            Series("attack", "attack", tuple(float(r.attack_hits) for r in rows)),
            Series("legitimate", "legit", tuple(float(r.legit_hits) for r in rows)),
        ],
        lambda v: f"{v:,.0f}",
        notes=[f"{r.attack_hits:,} attack / {r.legit_hits:,} legitimate" for r in rows],
    )


def _score_chart(s: Summary) -> Chart:
    h = s.scores
    attack, legit = sum(h.attack), sum(h.legit)
    return columns(
        "Score distribution (% of each class)",
        h.buckets,
        [
            Series("attack", "attack", tuple(100 * (share(n, attack) or 0.0) for n in h.attack)),
            Series("legitimate", "legit", tuple(100 * (share(n, legit) or 0.0) for n in h.legit)),
        ],
        _percent,
    )
