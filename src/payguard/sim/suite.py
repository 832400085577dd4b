"""A detection suite: one ruleset backtested over several simulated worlds, pooled.

Issue 11's generalisation protocol: rules, thresholds and the model are tuned on the
simulator's *tuning* variants and judged on its *held-out* variants, each over several
seeds, so that no figure rests on one seed or one tactic. A suite simulates each
(variant set, seed) world into a temporary directory, backtests it on a fresh engine and
pools the arithmetic: money and counts are summed over worlds before any share is taken,
so a world with more attack money weighs more, as it would in a bank's books.
"""

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
from rich.console import Console
from rich.table import Table

from payguard.backtest.fmt import cny, pct
from payguard.backtest.run import run_backtest
from payguard.backtest.score import COLD_START_DAYS, STEADY_FROM_DAY, Summary, pooled, share
from payguard.config import Settings
from payguard.features import FeatureState
from payguard.ruleset import Ruleset
from payguard.sim import SimConfig, simulate
from payguard.sim.config import VariantSet
from payguard.types import ACTIONS


class ScenarioFigures(msgspec.Struct, frozen=True):
    """One scenario pooled over a suite's worlds."""

    scenario: str
    campaigns: int
    campaigns_stopped: int
    money_fen: int
    stopped_money_fen: int
    money_stopped_share: float | None
    worst_world_share: float | None
    """The lowest per-world money-stopped share (a scenario that fails on one seed shows)."""


class LegitFigures(msgspec.Struct, frozen=True):
    """Legitimate friction pooled over a suite's worlds."""

    money_events: int
    money_actions: dict[str, int]
    challenged_share: float | None
    held_share: float | None
    reviewed_blocked_share: float | None
    customers: int
    customers_with_strong_friction: int
    strong_friction_share: float | None
    cold_start_friction: float | None
    steady_friction: float | None
    cold_start_ratio: float | None


class SuiteResult(msgspec.Struct, frozen=True):
    variants: str
    seeds: list[int]
    users: int
    days: int
    ruleset: str
    scenarios: list[ScenarioFigures]
    legit: LegitFigures
    worlds: list[Summary]


Runner = Callable[[Path, Path], Summary]
"""Backtests one simulated world (events file, labels file)."""


def run_suite(
    variants: VariantSet,
    seeds: Sequence[int],
    *,
    users: int,
    days: int,
    load_rules: Callable[[], tuple[Ruleset, FeatureState]],
    settings: Settings,
    attack_rate: float = 0.05,
    on_world: Callable[[int, Summary], None] | None = None,
) -> SuiteResult:
    """Simulate and backtest one world per seed; pool the figures. `load_rules` gives a
    ruleset compiled against a fresh feature state (each world starts from nothing)."""
    worlds: list[Summary] = []
    version = ""
    with tempfile.TemporaryDirectory(prefix="payguard-suite-") as tmp:
        for seed in seeds:
            events, labels = Path(tmp) / f"ev-{seed}.jsonl", Path(tmp) / f"lab-{seed}.jsonl"
            config = SimConfig(
                users=users, days=days, seed=seed, attack_rate=attack_rate, variants=variants
            )
            simulate(config, events, labels)
            ruleset, features = load_rules()
            version = ruleset.version
            summary = run_backtest(
                events, labels, ruleset=ruleset, features=features, settings=settings
            )
            worlds.append(summary)
            if on_world is not None:
                on_world(seed, summary)
            events.unlink()
            labels.unlink()
    return pool(variants, list(seeds), users, days, version, worlds)


def pool(
    variants: str, seeds: list[int], users: int, days: int, ruleset: str, worlds: list[Summary]
) -> SuiteResult:
    """Sum counts and money over worlds, then take shares."""
    names: list[str] = []
    for world in worlds:
        names += [s.scenario for s in world.scenarios if s.scenario not in names]
    return SuiteResult(
        variants=variants,
        seeds=seeds,
        users=users,
        days=days,
        ruleset=ruleset,
        scenarios=[_scenario(name, worlds) for name in names],
        legit=_legit(worlds),
        worlds=worlds,
    )


def _scenario(name: str, worlds: Sequence[Summary]) -> ScenarioFigures:
    rows = [s for w in worlds for s in w.scenarios if s.scenario == name]
    money = sum(r.money_fen for r in rows)
    stopped = sum(r.stopped_money_fen for r in rows)
    shares = [r.money_stopped_share for r in rows if r.money_stopped_share is not None]
    return ScenarioFigures(
        scenario=name,
        campaigns=sum(r.campaigns for r in rows),
        campaigns_stopped=sum(r.campaigns_stopped for r in rows),
        money_fen=money,
        stopped_money_fen=stopped,
        money_stopped_share=share(stopped, money),
        worst_world_share=min(shares, default=None),
    )


def _legit(worlds: Sequence[Summary]) -> LegitFigures:
    actions: dict[str, int] = {
        a: sum(w.legit.money_actions.get(a, 0) for w in worlds) for a in ACTIONS
    }
    money = sum(w.legit.money_events for w in worlds)
    customers = sum(w.legit.customers for w in worlds)
    strong = sum(w.legit.customers_with_strong_friction for w in worlds)
    cold = pooled([d for w in worlds for d in w.legit.daily_friction[:COLD_START_DAYS]])
    steady = pooled([d for w in worlds for d in w.legit.daily_friction[STEADY_FROM_DAY:]])
    return LegitFigures(
        money_events=money,
        money_actions=actions,
        challenged_share=share(actions["challenge"], money),
        held_share=share(actions["hold"], money),
        reviewed_blocked_share=share(actions["review"] + actions["block"], money),
        customers=customers,
        customers_with_strong_friction=strong,
        strong_friction_share=share(strong, customers),
        cold_start_friction=cold,
        steady_friction=steady,
        cold_start_ratio=cold / steady if cold is not None and steady else None,
    )


def render_suite(result: SuiteResult, console: Console) -> None:
    """Per-scenario money stopped and legitimate friction, pooled, as two tables."""
    seeds = ", ".join(map(str, result.seeds))
    title = (
        f"{result.variants} variants, seeds {seeds}: {result.users:,} customers × "
        f"{result.days} days each, ruleset {result.ruleset}"
    )
    table = Table(title=title)
    for column in ("scenario", "campaigns", "stopped", "attack CNY", "money stopped", "worst"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for s in result.scenarios:
        table.add_row(
            s.scenario,
            f"{s.campaigns:,}",
            f"{s.campaigns_stopped:,}",
            cny(s.money_fen),
            pct(s.money_stopped_share),
            pct(s.worst_world_share),
        )
    console.print(table)
    legit = result.legit
    friction = Table(title="legitimate traffic (pooled)")
    friction.add_column("measure")
    friction.add_column("value", justify="right")
    friction.add_column("target (issue 11)", justify="right")
    for name, value, target in (
        ("money events challenged", pct(legit.challenged_share, 2), "≤ 1.00%"),
        ("money events held", pct(legit.held_share, 2), "≤ 0.20%"),
        ("money events reviewed + blocked", pct(legit.reviewed_blocked_share, 2), "≤ 0.20%"),
        (
            "customers with friction beyond a routine SMS code",
            f"{legit.customers_with_strong_friction:,} of {legit.customers:,} "
            f"({pct(legit.strong_friction_share, 2)})",
            "≤ 5.00%",
        ),
        (f"friction, first {COLD_START_DAYS} days", pct(legit.cold_start_friction, 2), ""),
        (f"friction, from day {STEADY_FROM_DAY + 1} on", pct(legit.steady_friction, 2), ""),
        (
            "cold start / steady state",
            "–" if legit.cold_start_ratio is None else f"{legit.cold_start_ratio:.2f}×",
            "≤ 1.50×",
        ),
    ):
        friction.add_row(name, value, target)
    console.print(friction)
