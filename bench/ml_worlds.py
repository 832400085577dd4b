"""Rules alone, model alone, rules + model on held-out tactic variants (issue 11 §5).

    .venv/bin/python -m bench.ml_worlds [--tuning-seeds 1-6] [--heldout-seeds 101-103]
        [--users 2000] [--days 30] [--attack-rate 0.05] [--heldout-attack-rate 0.02]
        [--challenge-budget 0.005] [--review-budget 0.001] [--work bench/out/ml-worlds]

1. Train (`payguard.sim.training`): one world per tuning seed (`variants="tuning"`), each on
   its own fresh feature state, labelled from its labels file; the last tuning seed
   calibrates (Platt) and sets the cut-offs for the challenge and review budgets of
   legitimate money events; the others fit. Same artifact as `payguard model train
   --worlds tuning`.
2. Judge on held-out variants (`variants="heldout"`, other seeds): each world is simulated
   once and backtested by three rulesets on fresh engines, then pooled with
   `payguard.sim.suite.pool` (the `payguard backtest-suite` arithmetic):
   - **rules**: `rules/default.yaml` as it is on disk when this runs;
   - **model**: only `model_challenge` (challenge with face or hardware_token at the
     challenge-budget cut-off) and `model_review` (review at the review-budget cut-off);
   - **rules+model**: the default rules plus those two.
   Model rules add no score: the policy's score sum is the rules'.
Prints the per-scenario and legitimate-friction tables; writes WORK/results.json.
"""

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from payguard.backtest.fmt import cny, pct
from payguard.backtest.run import run_backtest
from payguard.backtest.score import Summary
from payguard.config import Settings, load_settings
from payguard.engine import compile_ruleset
from payguard.features import FeatureState, load_catalog
from payguard.ml.budget_rules import cut_offs, model_only_yaml, with_model_yaml
from payguard.ml.feature_set import feature_set
from payguard.ml.model import Manifest
from payguard.ml.rows import Rows
from payguard.ml.serve import load_model
from payguard.ruleset import Ruleset
from payguard.sim import SimConfig, simulate
from payguard.sim.config import parse_seeds
from payguard.sim.suite import SuiteResult, pool
from payguard.sim.training import WorldSpec, train_worlds, world_rows

ROOT = Path(__file__).resolve().parents[1]
RULESETS = ("rules", "model", "rules+model")
console = Console(width=150)


def ruleset_texts(default_yaml: str, challenge: float, review: float) -> dict[str, str]:
    """The three rulesets' YAML: the default file as is, the model rules alone, both."""
    return {
        "rules": default_yaml,
        "model": model_only_yaml(challenge, review),
        "rules+model": with_model_yaml(default_yaml, challenge, review),
    }


def compiled(text: str, settings: Settings) -> tuple[Ruleset, FeatureState]:
    """A ruleset on a fresh feature state (each world starts from nothing)."""
    features = FeatureState(load_catalog(settings.features), settings.utc_offset)
    return compile_ruleset(text, features), features


def train(args: argparse.Namespace, settings: Settings, model_dir: Path) -> Manifest:
    """Step 1: the artifact, from tuning worlds only."""
    spec = WorldSpec("tuning", args.users, args.days, args.attack_rate)
    seeds = parse_seeds(args.tuning_seeds)
    calibration = parse_seeds(args.calibration_seeds) if args.calibration_seeds else seeds[-1:]
    fs = feature_set("default@+8h")

    def done(seed: int, rows: Rows) -> None:
        attacks = int((rows.label_ts != -1).sum())
        console.print(f"  rows of world {spec.tag(seed)}: {len(rows):,} ({attacks:,} attack)")

    data = world_rows(
        spec, seeds, fs, settings.token_key.encode(), cache=args.work / "cache", on_world=done
    )
    budgets = {"challenge": args.challenge_budget, "review": args.review_budget}
    return train_worlds(data, fs, model_dir, spec, calibration, budgets=budgets)


def judge(
    args: argparse.Namespace, settings: Settings, texts: dict[str, str], model_dir: Path
) -> dict[str, SuiteResult]:
    """Step 2: every ruleset on the same held-out worlds, pooled per ruleset."""
    seeds = parse_seeds(args.heldout_seeds)
    worlds: dict[str, list[Summary]] = {name: [] for name in texts}
    versions: dict[str, str] = {}
    with_model = msgspec.structs.replace(settings, model=model_dir)
    without = msgspec.structs.replace(settings, model=None)
    with tempfile.TemporaryDirectory(prefix="payguard-ml-worlds-") as tmp:
        for seed in seeds:
            events, labels = Path(tmp) / "events.jsonl", Path(tmp) / "labels.jsonl"
            config = SimConfig(
                users=args.users,
                days=args.days,
                seed=seed,
                attack_rate=args.heldout_attack_rate,
                variants="heldout",
            )
            simulate(config, events, labels)
            for name, text in texts.items():
                started = time.perf_counter()
                ruleset, features = compiled(text, settings)
                versions[name] = ruleset.version
                served = without if name == "rules" else with_model
                summary = run_backtest(
                    events, labels, ruleset=ruleset, features=features, settings=served
                )
                worlds[name].append(summary)
                console.print(
                    f"  heldout-{seed} {name}: {summary.events:,} events in "
                    f"{time.perf_counter() - started:.0f} s",
                    highlight=False,
                )
    return {
        name: pool("heldout", seeds, args.users, args.days, versions[name], worlds[name])
        for name in texts
    }


def show(results: dict[str, SuiteResult]) -> None:
    """Per scenario money stopped by each ruleset; legitimate friction by each."""
    first = results[RULESETS[0]]
    seeds = ", ".join(map(str, first.seeds))
    table = Table(
        title=f"held-out variants, seeds {seeds}, {first.users:,} customers × {first.days} days "
        "each: attack money stopped (worst world)",
        title_justify="left",
    )
    for column in ("scenario", "campaigns", "attack CNY", *RULESETS):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for scenario in first.scenarios:
        cells = []
        for name in RULESETS:
            s = next(x for x in results[name].scenarios if x.scenario == scenario.scenario)
            cells.append(f"{pct(s.money_stopped_share)} ({pct(s.worst_world_share)})")
        table.add_row(scenario.scenario, f"{scenario.campaigns:,}", cny(scenario.money_fen), *cells)
    console.print(table)
    legit = Table(title="legitimate traffic (pooled)", title_justify="left")
    for column in ("measure", *RULESETS, "target"):
        legit.add_column(column, justify="left" if column == "measure" else "right")
    rows: list[tuple[str, str, Any]] = [
        ("money events challenged", "≤ 1.00%", lambda r: pct(r.legit.challenged_share, 2)),
        ("money events held", "≤ 0.20%", lambda r: pct(r.legit.held_share, 2)),
        (
            "money events reviewed + blocked",
            "≤ 0.20%",
            lambda r: pct(r.legit.reviewed_blocked_share, 2),
        ),
        (
            "customers with strong friction",
            "≤ 5.00%",
            lambda r: pct(r.legit.strong_friction_share, 2),
        ),
        ("cold start / steady state", "≤ 1.50×", lambda r: ratio(r.legit.cold_start_ratio)),
    ]
    for measure, target, value in rows:
        legit.add_row(measure, *(value(results[name]) for name in RULESETS), target)
    console.print(legit)
    console.print("rulesets: " + ", ".join(f"{n} = {results[n].ruleset}" for n in RULESETS))


def ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def figures(result: SuiteResult) -> dict[str, Any]:
    """The pooled figures without the per-world summaries (those run to megabytes)."""
    body: dict[str, Any] = msgspec.to_builtins(result)
    body.pop("worlds")
    return body


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--tuning-seeds", default="1-6")
    parser.add_argument("--calibration-seeds", default=None, help="default: the last tuning seed")
    parser.add_argument("--heldout-seeds", default="101-103")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--attack-rate", type=float, default=0.05, help="tuning worlds")
    parser.add_argument("--heldout-attack-rate", type=float, default=0.02)
    parser.add_argument("--challenge-budget", type=float, default=0.005)
    parser.add_argument("--review-budget", type=float, default=0.001)
    parser.add_argument("--ruleset", type=Path, default=ROOT / "rules" / "default.yaml")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "ml-worlds")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    model_dir = args.work / "model"
    started = time.perf_counter()
    console.print("[bold]1. training on tuning worlds[/bold]")
    manifest = train(args, settings, model_dir)
    state = FeatureState(load_catalog(settings.features), settings.utc_offset)
    server, why = load_model(model_dir, state, settings.features)
    if server is None:
        raise SystemExit(f"the engine would not serve the model: {why}")
    challenge, review = cut_offs(manifest.thresholds)
    console.print(
        f"  {why}; cut-offs challenge {challenge}, review {review}; calibration {manifest.metrics}",
        highlight=False,
    )
    texts = ruleset_texts(args.ruleset.read_text(encoding="utf-8"), challenge, review)
    for name, text in texts.items():
        (args.work / f"ruleset-{name.replace('+', '-')}.yaml").write_text(text, encoding="utf-8")
    console.print("[bold]2. judging on held-out worlds[/bold]")
    results = judge(args, settings, texts, model_dir)
    show(results)
    elapsed = time.perf_counter() - started
    report = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "model": manifest.version,
        "worlds": manifest.worlds,
        "calibration": manifest.metrics,
        "thresholds": manifest.thresholds,
        "results": {name: figures(result) for name, result in results.items()},
        "elapsed_s": round(elapsed, 1),
    }
    out = args.work / "results.json"
    out.write_text(json.dumps(report, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    console.print(f"wrote {out} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
