"""`make bench-ml`: the Fraud Detection Handbook's protocols, end to end from the raw file.

    .venv/bin/python -m bench.ml_fdh [--raw RAW.csv.xz] [--work DIR] [--check]

1. `payguard import-fdh`'s importer: raw CSV → contract-v1 payments + 7-day-late reports.
2. The events file → `EventDecoder` → payguard's feature state (`fdh_features.yaml`), one
   point-in-time row per payment (cached in DIR by the events' sha256).
3. Hyper-parameters: a small LightGBM grid scored on the Chapter 5.3 *validation* folds
   (training starts 2018-07-11 and steps back 7 days), the best chosen per metric; no test
   period is looked at to choose anything.
4. Chapter 3.4 split (train 2018-07-25…31, 7-day delay, test 2018-08-08…14, known
   compromised cards removed) and Chapter 5.3 test folds (training starts 2018-08-15 and
   steps back 7 days; mean ± std over 4 folds), printed beside the published numbers.
With `--check`, also compares every payment's Handbook features with
`transactions_transformed` (about five minutes more). Results go to DIR/results.json.
"""

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from payguard.ml.fdh import import_fdh
from payguard.ml.feature_set import HANDBOOK_COLUMNS, fdh_feature_set
from payguard.ml.handbook import (
    PUBLISHED_34,
    PUBLISHED_53,
    SPLIT_34_START,
    TEST_53_START,
    VALID_53_START,
    fit_assess,
    handbook_split,
    mean_std,
    prequential,
)
from payguard.ml.rows import Rows
from payguard.ml.train import load_rows

ROOT = Path(__file__).resolve().parents[1]
OFFSET = 8
KEY = b"bench-ml-token-key-0123456789"
GRID: dict[str, tuple[dict[str, Any], int]] = {
    "leaves7-lr.03-r800-mcs20": (
        {"num_leaves": 7, "learning_rate": 0.03, "min_child_samples": 20},
        800,
    ),
    "leaves15-lr.05-r300": ({"num_leaves": 15, "learning_rate": 0.05}, 300),
    "leaves31-lr.05-r300": ({"num_leaves": 31, "learning_rate": 0.05}, 300),
    "leaves63-lr.05-r300-mcs100": (
        {"num_leaves": 63, "learning_rate": 0.05, "min_child_samples": 100},
        300,
    ),
}
METRICS = ("auc", "ap", "cp100")
console = Console(width=120)


def find_raw() -> Path:
    for parent in ROOT.parents:
        raw = parent / "shared" / "datasets" / "fdh_simulated" / "transactions_raw.csv.xz"
        if raw.is_file():
            return raw
    raise SystemExit("transactions_raw.csv.xz not found beside the checkout; pass --raw")


def prepare(raw: Path, work: Path) -> tuple[Rows, dict[str, float]]:
    """Import (unless done) and build the rows (unless cached); returns rows and timings."""
    work.mkdir(parents=True, exist_ok=True)
    events = work / "events.jsonl"
    timings: dict[str, float] = {}
    if not events.exists():
        started = time.perf_counter()
        with (work / "events.tmp").open("wb") as out:
            summary = import_fdh(raw, out)
        (work / "events.tmp").rename(events)
        timings["import_s"] = time.perf_counter() - started
        timings["import_rows_per_s"] = summary.rows / timings["import_s"]
    started = time.perf_counter()
    rows = load_rows(events, fdh_feature_set(OFFSET), KEY, None, work / "cache")
    timings["rows_s"] = time.perf_counter() - started
    return rows, timings


def choose(rows: Rows, columns: list[int]) -> dict[str, str]:
    """The grid's best configuration per metric on the validation folds."""
    scores: dict[str, dict[str, float]] = {}
    for name, (params, rounds) in GRID.items():
        folds = prequential(rows, VALID_53_START, OFFSET, columns, params, rounds)
        scores[name] = {m: mean_std(folds, m)[0] for m in METRICS}
        console.print(f"  validation {name}: " + _fmt(scores[name]), highlight=False)
    return {m: max(scores, key=lambda n: scores[n][m]) for m in METRICS}


def run_variant(rows: Rows, columns: list[int]) -> dict[str, Any]:
    """Chosen configs, then the 3.4 split and the 5.3 test folds with them."""
    best = choose(rows, columns)
    split = handbook_split(rows, SPLIT_34_START, OFFSET)
    single: dict[str, dict[str, float]] = {}
    folds: dict[str, list[dict[str, float]]] = {}
    for config in sorted(set(best.values())):
        params, rounds = GRID[config]
        single[config] = fit_assess(rows, split, columns, params, rounds)
        folds[config] = prequential(rows, TEST_53_START, OFFSET, columns, params, rounds)
    return {
        "chosen": best,
        "split_34": {m: single[best[m]][m] for m in METRICS},
        "split_34_ceiling_cp100": next(iter(single.values()))["cp100_ceiling"],
        "split_34_sizes": {
            k: v for k, v in next(iter(single.values())).items() if k.startswith(("test", "train"))
        },
        "prequential_53": {m: mean_std(folds[best[m]], m) for m in METRICS},
        "prequential_53_ceiling_cp100": mean_std(next(iter(folds.values())), "cp100_ceiling"),
    }


def _fmt(values: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.3f}" for k, v in values.items())


def table(results: dict[str, Any]) -> Table:
    out = Table(title="Fraud Detection Handbook simulated data: payguard vs published")
    for col in ("protocol", "model", "AUC ROC", "AP", "CP@100"):
        out.add_column(col, justify="left" if col in ("protocol", "model") else "right")
    for model, (auc, ap, cp) in PUBLISHED_34.items():
        out.add_row("Ch. 3.4 split", f"{model} (published)", f"{auc:.3f}", f"{ap:.3f}", f"{cp:.3f}")
    for name, res in results["variants"].items():
        r = res["split_34"]
        out.add_row("Ch. 3.4 split", f"[bold]{name}[/bold]", *(f"{r[m]:.3f}" for m in METRICS))
    ceiling = next(iter(results["variants"].values()))["split_34_ceiling_cp100"]
    out.add_row("Ch. 3.4 split", "perfect ranking (ceiling)", "1.000", "1.000", f"{ceiling:.3f}")
    for model, values in PUBLISHED_53.items():
        shown = [f"{m:.3f} ± {s:.2f}" for m, s in values]
        out.add_row("Ch. 5.3 prequential", f"{model} (published)", *shown)
    for name, res in results["variants"].items():
        p = res["prequential_53"]
        out.add_row(
            "Ch. 5.3 prequential",
            f"[bold]{name}[/bold]",
            *(f"{p[m][0]:.3f} ± {p[m][1]:.2f}" for m in METRICS),
        )
    ceiling53 = next(iter(results["variants"].values()))["prequential_53_ceiling_cp100"]
    out.add_row(
        "Ch. 5.3 prequential",
        "perfect ranking (ceiling)",
        "1.000",
        "1.000",
        f"{ceiling53[0]:.3f} ± {ceiling53[1]:.2f}",
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raw", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=ROOT / ".bench-ml")
    parser.add_argument("--check", action="store_true", help="also check features (≈5 min)")
    args = parser.parse_args()
    raw = args.raw or find_raw()
    started = time.perf_counter()
    rows, timings = prepare(raw, args.work)
    console.print(f"{len(rows):,} payment rows, {len(rows.columns)} columns; {_fmt(timings)}")
    variants = {
        "LightGBM, Handbook's 15 features": list(range(len(HANDBOOK_COLUMNS))),
        "LightGBM, payguard features": list(range(len(rows.columns))),
    }
    results: dict[str, Any] = {"timings": timings, "variants": {}}
    for name, columns in variants.items():
        console.print(f"[bold]{name}[/bold]")
        results["variants"][name] = run_variant(rows, columns)
    if args.check:
        from payguard.ml.fdh_check import check_features

        check = check_features(raw, raw.with_name("transactions_transformed.csv.xz"))
        results["feature_check"] = {
            "rows": check.rows,
            "equal": check.equal,
            "mismatches": {c.column: c.mismatches for c in check.columns},
            "zero_amount_adjusted_rows": check.adjusted_for_zero_amounts,
            "reordered_tie_rows": check.reordered_ties,
        }
        console.print(f"feature check: {results['feature_check']}")
    results["elapsed_s"] = time.perf_counter() - started
    console.print(table(results))
    (args.work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"done in {results['elapsed_s']:.0f} s → {args.work / 'results.json'}")


if __name__ == "__main__":
    main()
