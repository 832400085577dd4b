"""`payguard import-fdh` and `payguard model …`: public data in, models out.

payguard import-fdh RAW.csv.xz -o EVENTS [--labels LABELS]   Handbook data as events
payguard model train --events E [--labels L] --out DIR        train, calibrate, write artifact
payguard model train --worlds tuning --seeds 1-6 --out DIR    the same across simulated worlds
payguard model evaluate --model DIR --events E                AUC, AP, P@k, CP@k on a period
"""

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from payguard.cli.common import err, fail
from payguard.config import load_settings

if TYPE_CHECKING:
    from payguard.ml.train import Window

model_app = typer.Typer(help="Train and evaluate the learned risk score.", no_args_is_help=True)
out = Console()


def import_fdh(
    raw: Annotated[Path, typer.Argument(help="The Handbook's transactions_raw.csv(.xz).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Events JSON Lines file.")],
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Also write fraud labels (JSON Lines).")
    ] = None,
    utc_offset: Annotated[int, typer.Option(help="Hours east of UTC of TX_DATETIME.")] = 8,
    delay_days: Annotated[int, typer.Option(help="Days until a fraud is reported.")] = 7,
    validate: Annotated[bool, typer.Option(help="Decode every event as payguard would.")] = True,
) -> None:
    """Turn the Fraud Detection Handbook's raw file into payments and fraud reports."""
    from payguard.ml.fdh import import_fdh as run_import

    if not raw.is_file():
        fail(f"no such file: {raw}")
    started = time.perf_counter()
    try:
        with output.open("wb") as ev, labels.open("wb") if labels else _Null() as lab:
            summary = run_import(
                raw,
                ev,
                lab if labels else None,
                offset_hours=utc_offset,
                delay_days=delay_days,
                validate=validate,
            )
    except (ValueError, OSError) as exc:
        fail(str(exc))
    elapsed = time.perf_counter() - started
    out.print(
        f"{summary.rows:,} rows ({summary.first} … {summary.last}) → {summary.payments:,} "
        f"payments + {summary.reports:,} fraud reports in {elapsed:.1f} s "
        f"({summary.rows / elapsed:,.0f} rows/s)",
        highlight=False,
    )
    out.print(
        f"frauds by scenario: {summary.frauds_by_scenario}; skipped {len(summary.skipped_zero)} "
        f"zero-amount rows (contract: amount > 0); {summary.rounded} amounts rounded to the fen",
        highlight=False,
    )


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


@model_app.command("train")
def model_train(
    output: Annotated[Path, typer.Option("--out", help="Artifact directory to write.")],
    events: Annotated[
        Path | None, typer.Option("--events", help="Events JSON Lines file (or --worlds).")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Labels file (else feedback events).")
    ] = None,
    worlds: Annotated[
        str | None,
        typer.Option(help="Train across simulated worlds of this variant set (tuning, all)."),
    ] = None,
    seeds: Annotated[str, typer.Option(help="World seeds with --worlds: 1,2,3 or 1-6.")] = "1-6",
    calibration_seeds: Annotated[
        str | None, typer.Option(help="Worlds that calibrate (default: the last seed).")
    ] = None,
    users: Annotated[int, typer.Option(min=10, help="Customers per world.")] = 2_000,
    days: Annotated[int, typer.Option(min=1, help="Days per world.")] = 30,
    attack_rate: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of users attacked per world.")
    ] = 0.05,
    features: Annotated[
        str, typer.Option("--feature-set", help="default@+8h, fdh+extras@+8h or fdh@+8h.")
    ] = "default@+8h",
    train_from: Annotated[str | None, typer.Option(help="First training day.")] = None,
    train_to: Annotated[str | None, typer.Option(help="Day after the last training day.")] = None,
    valid_days: Annotated[int, typer.Option(help="Last days of the window to calibrate.")] = 7,
    delay_days: Annotated[int, typer.Option(help="Days for labels to arrive.")] = 7,
    rounds: Annotated[int, typer.Option(help="Boosting rounds.")] = 300,
    cache: Annotated[Path | None, typer.Option(help="Directory caching feature rows.")] = None,
    challenge_budget: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Legit share a challenge may reach (0.01; --worlds 0.005)."
        ),
    ] = None,
    review_budget: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Legit share a review may reach (0.002; --worlds 0.001)."
        ),
    ] = None,
) -> None:
    """Build point-in-time rows, train LightGBM, calibrate, choose thresholds for the
    challenge and review budgets on the validation rows, write a versioned artifact.

    With --events: one file, split by time (the last --valid-days calibrate). With
    --worlds: simulated worlds (--seeds), each on its own feature state, split by world
    (--calibration-seeds calibrate)."""
    if (events is None) == (worlds is None):
        fail("give either --events (a file) or --worlds (simulated worlds), not both")
    if worlds is not None:
        _train_worlds(
            output,
            worlds,
            seeds,
            calibration_seeds,
            users=users,
            days=days,
            attack_rate=attack_rate,
            features=features,
            rounds=rounds,
            cache=cache,
            budgets=_budgets(challenge_budget, review_budget, 0.005, 0.001),
        )
        return
    assert events is not None  # one of the two, checked above
    _train_file(
        output,
        events,
        labels,
        features=features,
        train_from=train_from,
        train_to=train_to,
        valid_days=valid_days,
        delay_days=delay_days,
        rounds=rounds,
        cache=cache,
        budgets=_budgets(challenge_budget, review_budget, 0.01, 0.002),
    )


def _budgets(
    challenge: float | None, review: float | None, challenge_default: float, review_default: float
) -> dict[str, float]:
    return {
        "challenge": challenge_default if challenge is None else challenge,
        "review": review_default if review is None else review,
    }


def _train_file(
    output: Path,
    events: Path,
    labels: Path | None,
    *,
    features: str,
    train_from: str | None,
    train_to: str | None,
    valid_days: int,
    delay_days: int,
    rounds: int,
    cache: Path | None,
    budgets: dict[str, float],
) -> None:
    """`model train --events`: one file, split by time."""
    from payguard.ml.feature_set import feature_set
    from payguard.ml.rows import file_sha256
    from payguard.ml.train import Window, default_window, load_rows, offset_of, train_model

    for path in (events, labels):
        if path is not None and not path.is_file():
            fail(f"no such file: {path}")
    try:
        fs = feature_set(features)
        key = load_settings().token_key.encode()
        rows = load_rows(events, fs, key, labels, cache)
        window = default_window(rows, offset_of(fs), delay_days)
        window = Window(train_from or window.start, train_to or window.end)
        digest = file_sha256(events) + (f"+{file_sha256(labels)}" if labels else "")
        manifest = train_model(
            rows,
            fs,
            output,
            window,
            valid_days=valid_days,
            delay_days=delay_days,
            label_source=f"labels file {labels.name}" if labels else "feedback events",
            data_sha256=digest,
            rounds=rounds,
            budgets=budgets,
        )
    except ValueError as exc:
        fail(str(exc))
    out.print(
        f"model {manifest.version}: {manifest.rows:,} rows ({manifest.positives:,} frauds) "
        f"{manifest.train_window[0]} … {manifest.train_window[1]}, calibrated on "
        f"{manifest.valid_window[0]} … {manifest.valid_window[1]} → {output}",
        highlight=False,
    )
    _report(manifest.metrics, manifest.thresholds, "validation", manifest.valid_window)


def _train_worlds(
    output: Path,
    variants: str,
    seeds: str,
    calibration_seeds: str | None,
    *,
    users: int,
    days: int,
    attack_rate: float,
    features: str,
    rounds: int,
    cache: Path | None,
    budgets: dict[str, float],
) -> None:
    """`model train --worlds`: simulated worlds, split by world."""
    from payguard.ml.feature_set import feature_set
    from payguard.ml.rows import Rows
    from payguard.sim.config import parse_seeds
    from payguard.sim.training import WorldSpec, train_worlds, world_rows

    if variants not in ("tuning", "all"):
        fail(f"--worlds: {variants!r} is not tuning or all (held-out variants judge, not train)")
    try:
        seed_list = parse_seeds(seeds)
        calibration = parse_seeds(calibration_seeds) if calibration_seeds else seed_list[-1:]
    except ValueError as exc:
        fail(f"--seeds / --calibration-seeds: {exc}")
    if any(s not in seed_list for s in calibration) or len(calibration) >= len(seed_list):
        fail(f"--calibration-seeds: {calibration} must be some, not all, of --seeds {seed_list}")
    spec = WorldSpec(variants, users, days, attack_rate)  # type: ignore[arg-type]  # checked

    def world_done(seed: int, rows: Rows) -> None:
        attacks = int((rows.label_ts != -1).sum())
        err.print(
            f"world {spec.tag(seed)}: {len(rows):,} rows, {attacks:,} attack", highlight=False
        )

    try:
        fs = feature_set(features)
        key = load_settings().token_key.encode()
        data = world_rows(spec, seed_list, fs, key, cache=cache, on_world=world_done)
        manifest = train_worlds(data, fs, output, spec, calibration, budgets=budgets, rounds=rounds)
    except ValueError as exc:
        fail(str(exc))
    fit = ", ".join(map(str, manifest.worlds["fit_seeds"]))
    out.print(
        f"model {manifest.version}: {manifest.rows:,} rows ({manifest.positives:,} attack) "
        f"from {variants} worlds {fit}, calibrated on worlds "
        f"{', '.join(map(str, calibration))} → {output}",
        highlight=False,
    )
    _report(manifest.metrics, manifest.thresholds, "calibration worlds", None)


def _report(
    metrics: dict[str, float],
    thresholds: dict[str, dict[str, float]],
    title: str,
    window: list[str] | None,
) -> None:
    span = f" {window[0]} … {window[1]}" if window else ""
    _metrics_table(title, metrics)
    _thresholds_table(f"thresholds for a budget ({title}{span})", thresholds)


@model_app.command("evaluate")
def model_evaluate(
    model: Annotated[Path, typer.Option("--model", help="Artifact directory.")],
    events: Annotated[Path, typer.Option("--events", help="Events JSON Lines file.")],
    labels: Annotated[Path | None, typer.Option("--labels", help="Labels file.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="First test day.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Day after the last test day.")] = None,
    k: Annotated[int, typer.Option(help="k of precision@k and card precision@k.")] = 100,
    cache: Annotated[Path | None, typer.Option(help="Directory caching feature rows.")] = None,
) -> None:
    """AUC ROC, average precision, precision@k and card precision@k on a test period:
    --from/--to, or without them the model's own (its labels_as_of to the data's end)."""
    from payguard.ml.feature_set import feature_set
    from payguard.ml.model import read_manifest
    from payguard.ml.train import evaluate_model, load_rows, thresholds_on

    if not (model / "manifest.json").is_file():
        fail(f"no model artifact in {model}")
    asked = _window(start, end)
    try:
        fs = feature_set(read_manifest(model).feature_set)
        rows = load_rows(events, fs, load_settings().token_key.encode(), labels, cache)
        window, metrics = evaluate_model(model, rows, asked, k)
        tested = thresholds_on(model, rows, window)
    except ValueError as exc:
        fail(str(exc))
    _metrics_table(f"test {window.start} … {window.end}", metrics)
    if tested:
        _thresholds_table(f"the manifest's thresholds on {window.start} … {window.end}", tested)


def _window(start: str | None, end: str | None) -> "Window | None":
    """Both dates, or neither: then the model's own test period (from its `labels_as_of`,
    the first day no training label could see, to the end of the data)."""
    from payguard.ml.train import Window

    if start is None and end is None:
        return None
    if start is None or end is None:
        fail("give --from and --to together, or neither for the model's own test period")
    return Window(start, end)


def _metrics_table(title: str, metrics: dict[str, float]) -> None:
    out.print(title, highlight=False)
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        shown = f"{value:,.0f}" if name.endswith(("rows", "frauds")) else f"{value:.3f}"
        table.add_row(name.removeprefix("valid_"), shown)
    out.print(table)


def _thresholds_table(title: str, thresholds: dict[str, dict[str, float]]) -> None:
    """Each action's cut-off, the legitimate share it reached, its precision and recall."""
    out.print(title, highlight=False)
    table = Table()
    for name in ("action", "budget", "model.score >=", "legit flagged", "frauds flagged"):
        table.add_column(name, justify="left" if name == "action" else "right")
    table.add_column("precision", justify="right")
    table.add_column("recall", justify="right")
    for action, t in thresholds.items():
        table.add_row(
            action,
            f"{t['budget']:.2%}",
            f"{t['threshold']!r}",
            f"{t['legit_share']:.3%} ({t['legit_flagged']:,.0f} of {t['legit']:,.0f})",
            f"{t['frauds_flagged']:,.0f} of {t['frauds']:,.0f}",
            f"{t['precision']:.3f}",
            f"{t['recall']:.3f}",
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add these commands to the main `payguard` application."""
    app.command("import-fdh")(import_fdh)
    app.add_typer(model_app, name="model")
