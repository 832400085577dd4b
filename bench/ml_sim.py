"""What the learned score adds to the default rules, per simulated scenario (issue 6).

    .venv/bin/python -m bench.ml_sim [--users 5000] [--days 60] [--seed 7]
        [--attack-rate 0.03] [--test-from 2026-11-01] [--work .bench-ml-sim]

1. `payguard simulate` (the simulated period starts 2026-10-01, +08:00).
2. `payguard model train` on the days before `--test-from` with the labels file (ground
   truth), the last 7 days calibrating and choosing the thresholds for the budgets.
3. Four rulesets: `rules/default.yaml` ("rules"); the same plus `model_high` ("rules+model":
   challenge with `face` or `hardware_token` when `model.score` reaches the manifest's
   cut-off for a 1 % challenge budget); plus also `model_very_high` ("rules+model+review":
   review at the 0.2 % review-budget cut-off); and those two model rules alone ("model
   only"). Model rules have score 0: the policy's score sum is untouched.
4. Test period: events from `--test-from` on. A campaign that began before it is left out
   of the test entirely (its tail would be judged as a campaign without its start).
   - **cold**: `payguard backtest` on a file of the test period's events only (a fresh
     engine on the first test day: no history for rules or model);
   - **warm**: the whole file decided by one engine, as production would, and only the
     test period's decisions scored (same `score` arithmetic as `payguard backtest`).
Writes WORK/results.json and prints the per-scenario tables.
"""

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from payguard.backtest.run import Decided, decide_lines, load_labels, outcome_of, rule_infos
from payguard.backtest.score import Label, Summary, score
from payguard.config import load_settings
from payguard.engine import Engine, compile_ruleset
from payguard.features import FeatureState, load_catalog

ROOT = Path(__file__).resolve().parents[1]
PAYGUARD = str(Path(sys.executable).with_name("payguard"))
OFFSET = "+08:00"
console = Console(width=160)

MODEL_RULE = """
  - id: model_high
    description: The learned score reaches the cut-off chosen for a 1 % challenge budget.
    events: [payment, transfer, withdrawal]
    when: model.score >= {challenge!r}
    action: challenge
    reason: The learned risk score is high for this payment.
    challenge: [face, hardware_token]
"""
MODEL_REVIEW_RULE = """
  - id: model_very_high
    description: The learned score reaches the cut-off chosen for a 0.2 % review budget.
    events: [payment, transfer, withdrawal]
    when: model.score >= {review!r}
    action: review
    reason: The learned risk score is very high for this payment.
"""


def run(*args: str, env: dict[str, str] | None = None) -> str:
    """A payguard command, echoed; its output returned."""
    console.print(f"$ payguard {' '.join(args)}", highlight=False, style="dim")
    done = subprocess.run(
        [PAYGUARD, *args],
        env={**os.environ, "COLUMNS": "160", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"payguard {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        yield from (line for line in fh if line.strip())


def split(
    work: Path, events: Path, labels: Path, test_from: str
) -> tuple[Path, Path, set[str], dict[str, int]]:
    """The test period's events and labels, less campaigns that began before it; also
    the ids of every earlier campaign's events and the test events left out per campaign."""
    cut = f"{test_from}T00:00:00{OFFSET}"
    label_of = {json.loads(line)["event_id"]: json.loads(line) for line in lines(labels)}
    early: set[str] = set()
    left_out: dict[str, int] = {}
    test_events, kept = work / "test-events.jsonl", []
    for line in lines(events):
        event = json.loads(line)
        campaign = label_of.get(event["event_id"], {}).get("campaign")
        if event["ts"] < cut:
            if campaign is not None:
                early.add(campaign)
        elif campaign in early:
            left_out[campaign] = left_out.get(campaign, 0) + 1
        else:
            kept.append(line)
    test_events.write_bytes(b"".join(kept))
    ids = {json.loads(line)["event_id"] for line in kept}
    test_labels = work / "test-labels.jsonl"
    test_labels.write_text(
        "".join(json.dumps(lab) + "\n" for eid, lab in label_of.items() if eid in ids)
    )
    dropped = {eid for eid, lab in label_of.items() if lab["campaign"] in early}
    return test_events, test_labels, dropped, left_out


def warm(
    events: Path, labels: Path, ruleset: Path, model: Path | None, test_from: str, dropped: set[str]
) -> Summary:
    """Decide the whole file on one engine; score only the test period's decisions."""
    settings = msgspec.structs.replace(load_settings(), ruleset=ruleset, model=model)
    features = FeatureState(load_catalog(settings.features))
    rules = compile_ruleset(ruleset.read_text(encoding="utf-8"), features)
    engine = Engine.in_memory(settings, features, rules)
    cut = int(datetime.fromisoformat(f"{test_from}T00:00:00{OFFSET}").timestamp() * 1000)
    outcomes = [
        outcome_of(item.event, item.decision)
        for item in decide_lines(engine, events)
        if isinstance(item, Decided) and not item.repeat
        if item.event.ts >= cut and item.event.event_id not in dropped
    ]
    engine.close()
    by_event: dict[str, Label] = load_labels(labels).by_event
    return score(outcomes, by_event, rule_infos(rules), rules.version)


def summary_row(summary: Summary) -> dict[str, Any]:
    """Per scenario and for legitimate traffic: the numbers docs/detection.md shows."""
    legit = summary.legit
    money = legit.money_events or 1
    scenarios = {
        s.scenario: {
            "campaigns": s.campaigns,
            "campaigns_with_money": s.campaigns_with_money,
            "stopped": s.campaigns_stopped,
            "money_fen": s.money_fen,
            "money_stopped": s.money_stopped_share,
            "own_decision": s.own_decision_stopped_fen / s.money_fen if s.money_fen else None,
            "loss_fen": s.loss_fen,
            "median_events_to_stop": s.median_events_to_stop,
        }
        for s in [*summary.scenarios, summary.total]
    }
    return {
        "ruleset": summary.ruleset,
        "events": summary.events,
        "attack_events": summary.attack_events,
        "scenarios": scenarios,
        "legit": {
            "money_events": legit.money_events,
            **{
                a: legit.money_actions.get(a, 0) / money
                for a in ("challenge", "hold", "review", "block")
            },
            "customers": legit.customers,
            "customers_with_friction": legit.customers_with_friction,
        },
        "rules": {
            r.rule: {
                "hits": r.hits,
                "attack_hits": r.attack_hits,
                "legit_hits": r.legit_hits,
                "money_stopped_alone": r.money_stopped_alone_share,
            }
            for r in summary.rules
            if r.rule.startswith("model_")
        },
    }


def show(title: str, variants: dict[str, dict[str, Any]]) -> None:
    """Per scenario, each variant's money stopped, own-decision share and events to stop."""
    names = list(variants)
    table = Table(title=f"{title}: {' / '.join(names)}", title_justify="left")
    for column in (
        "scenario",
        "campaigns",
        "money CNY",
        "money stopped",
        "own decision",
        "events to stop",
    ):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    first = variants[names[0]]["scenarios"]
    for scenario, base in first.items():
        rows = [variants[n]["scenarios"][scenario] for n in names]
        table.add_row(
            scenario,
            str(base["campaigns"]),
            f"{base['money_fen'] / 100:,.0f}",
            " / ".join(pct(r["money_stopped"]) for r in rows),
            " / ".join(pct(r["own_decision"]) for r in rows),
            " / ".join(str(r["median_events_to_stop"]) for r in rows),
        )
    console.print(table)
    for name in names:
        legit = variants[name]["legit"]
        console.print(
            f"{name}: legit money events {legit['money_events']:,} challenged "
            f"{pct(legit['challenge'], 2)}, reviewed {pct(legit['review'], 2)}, blocked "
            f"{pct(legit['block'], 2)}; customers with friction "
            f"{legit['customers_with_friction']:,} of {legit['customers']:,}; "
            f"{variants[name]['rules']}",
            highlight=False,
        )


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--attack-rate", default="0.03")
    parser.add_argument("--test-from", default="2026-11-01")
    parser.add_argument("--work", type=Path, default=ROOT / ".bench-ml-sim")
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    events, labels, model = work / "events.jsonl", work / "labels.jsonl", work / "model"
    run(
        "simulate",
        "-o",
        str(events),
        "--labels",
        str(labels),
        "--users",
        str(args.users),
        "--days",
        str(args.days),
        "--seed",
        str(args.seed),
        "--attack-rate",
        args.attack_rate,
    )
    calibrate_from = (date.fromisoformat(args.test_from) - timedelta(days=7)).isoformat()
    report = run(
        "model",
        "train",
        "--events",
        str(events),
        "--labels",
        str(labels),
        "--out",
        str(model),
        "--feature-set",
        "default@+8h",
        "--train-from",
        "2026-10-01",
        "--train-to",
        args.test_from,
        "--cache",
        str(work / "cache"),
    )
    console.print(report, highlight=False)
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["valid_window"][0] == calibrate_from
    cut_offs = {a: manifest["thresholds"][a]["threshold"] for a in ("challenge", "review")}
    challenge_rule = MODEL_RULE.format(**cut_offs)
    review_rule = MODEL_REVIEW_RULE.format(**cut_offs)
    rules = ROOT / "rules" / "default.yaml"
    rulesets = {
        "rules": rules,
        "rules+model": work / "rules-with-model.yaml",
        "rules+model+review": work / "rules-with-model-review.yaml",
        "model only": work / "model-only.yaml",
    }
    rulesets["rules+model"].write_text(rules.read_text() + challenge_rule)
    rulesets["rules+model+review"].write_text(rules.read_text() + challenge_rule + review_rule)
    rulesets["model only"].write_text(
        'version: "model-only"\nrules:' + challenge_rule + review_rule
    )
    test_events, test_labels, dropped, left_out = split(work, events, labels, args.test_from)
    results: dict[str, Any] = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "model": manifest["version"],
        "thresholds": cut_offs,
        "left_out_of_test": left_out,
    }
    for name, ruleset in rulesets.items():
        served = None if name == "rules" else model
        out = work / f"cold-{name.replace(' ', '-')}.json"
        env = {"PAYGUARD_MODEL": str(served)} if served else {}
        run(
            "backtest",
            str(test_events),
            "--labels",
            str(test_labels),
            "--ruleset",
            str(ruleset),
            "--json",
            str(out),
            env=env,
        )
        results[f"cold {name}"] = summary_row(msgspec.json.decode(out.read_bytes(), type=Summary))
        summary = warm(events, labels, ruleset, served, args.test_from, dropped)
        results[f"warm {name}"] = summary_row(summary)
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    for kind in ("warm", "cold"):
        show(kind, {name: results[f"{kind} {name}"] for name in rulesets})


if __name__ == "__main__":
    main()
