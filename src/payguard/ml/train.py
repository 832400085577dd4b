"""`payguard model train` and `model evaluate`: rows → LightGBM → artifact → metrics.

Time is the only split: training rows are decided in [train_from, train_to), their labels
are those known `delay_days` after train_to (when production could retrain), the last
`valid_days` of the window are held out to calibrate, and evaluation uses a later period.
"""

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from payguard.ml.feature_set import FeatureSet, feature_set
from payguard.ml.handbook import day_number, local_days
from payguard.ml.metrics import average_precision, card_precision_at_k, precision_at_k, roc_auc
from payguard.ml.model import (
    DEFAULT_ROUNDS,
    Manifest,
    Scorer,
    fit_platt,
    margin_of,
    save_artifact,
    to_onnx,
    train_booster,
)
from payguard.ml.rows import Rows, build_rows, file_sha256
from payguard.ml.thresholds import DEFAULT_BUDGETS, apply_threshold, choose_thresholds
from payguard.types import DAY_MS, HOUR_MS

Array = np.ndarray[Any, Any]


class _Label(msgspec.Struct):
    event_id: str
    attack: bool = True


@dataclass(frozen=True)
class Window:
    start: str
    end: str
    """Exclusive."""

    def mask(self, rows: Rows, offset_hours: int) -> Array:
        day = local_days(rows.ts, offset_hours)
        return np.asarray((day >= day_number(self.start)) & (day < day_number(self.end)))


def offset_of(fs: FeatureSet) -> int:
    return int(fs.name.partition("@")[2].removesuffix("h") or 8)


def load_rows(
    events: Path, fs: FeatureSet, token_key: bytes, labels: Path | None, cache: Path | None
) -> Rows:
    """Rows of `events` (from the cache when the same file was seen), labelled by a labels
    file if given (ground truth, taken as known when the event happened)."""
    rows: Rows | None = None
    cached = None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        cached = cache / f"rows-{file_sha256(events)[:16]}-{fs.name}-{fs.digest()[:12]}.parquet"
        if cached.exists():
            rows = Rows.load(cached)
    if rows is None:
        rows = build_rows(events, fs, token_key)
        if cached is not None:
            rows.save(cached)
    if labels is not None:
        rows = with_label_file(rows, labels)
    return rows


def with_label_file(rows: Rows, labels: Path) -> Rows:
    decode = msgspec.json.Decoder(_Label).decode
    with labels.open("rb") as fh:
        attacks = {lab.event_id for line in fh if line.strip() if (lab := decode(line)).attack}
    hit = np.fromiter((eid in attacks for eid in rows.event_id), bool, len(rows))
    label_ts = np.where(hit, rows.ts, -1).astype(np.int64)
    return Rows(
        rows.columns, rows.x, rows.ts, rows.event_id, rows.card, label_ts, rows.source_sha256
    )


def _shift(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def _date_of(ts: int, offset_hours: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=(ts + offset_hours * HOUR_MS) // DAY_MS)).isoformat()


def default_window(rows: Rows, offset_hours: int, delay_days: int) -> Window:
    """From the first day to `delay_days` before the last: labels had time to arrive."""
    first = _date_of(int(rows.ts.min()), offset_hours)
    last = _date_of(int(rows.ts.max()), offset_hours)
    return Window(first, _shift(last, 1 - delay_days))


def train_model(
    rows: Rows,
    fs: FeatureSet,
    out: Path,
    window: Window,
    *,
    valid_days: int,
    delay_days: int,
    label_source: str,
    data_sha256: str,
    params: dict[str, Any] | None = None,
    rounds: int = DEFAULT_ROUNDS,
    budgets: dict[str, float] | None = None,
) -> Manifest:
    """Train on the window less its last `valid_days`, calibrate on those, choose the
    thresholds for `budgets` (default `DEFAULT_BUDGETS`) on those too, write `out`."""
    offset = offset_of(fs)
    fit = Window(window.start, _shift(window.end, -valid_days))
    valid = Window(fit.end, window.end)
    labels_as_of = _shift(window.end, delay_days)
    cutoff = (day_number(labels_as_of) * 24 - offset) * HOUR_MS
    y = rows.labels_known_at(cutoff)
    fit_mask, valid_mask = fit.mask(rows, offset), valid.mask(rows, offset)
    if not y[fit_mask].any():
        raise ValueError(f"no fraud labelled in {fit.start} … {fit.end} as of {labels_as_of}")
    manifest = Manifest(
        version="",
        feature_set=fs.name,
        columns=list(fs.columns),
        catalog_sha256=file_sha256(fs.catalog_path),
        train_window=[fit.start, fit.end],
        valid_window=[valid.start, valid.end],
        label_source=label_source,
        labels_as_of=labels_as_of,
        data_sha256=data_sha256,
        params=params or {},
        rounds=rounds,
        platt={},
    )
    fit_calibrate_save(rows, y, fit_mask, valid_mask, manifest, out, budgets)
    return manifest


def fit_calibrate_save(
    rows: Rows,
    y: Array,
    fit_mask: Array,
    valid_mask: Array,
    manifest: Manifest,
    out: Path,
    budgets: dict[str, float] | None = None,
) -> Manifest:
    """Train on the fit rows, Platt-calibrate on the validation rows, choose the budget
    thresholds on the validation rows as served (ONNX), fill `manifest` in and write `out`.

    Shared by the time split (`train_model`) and the world split (`sim.training`): only which
    rows fit and which calibrate differs, never how."""
    booster = train_booster(rows.x[fit_mask], y[fit_mask], manifest.params, manifest.rounds)
    raw = np.asarray(booster.predict(rows.x[valid_mask]))
    platt = fit_platt(margin_of(raw), y[valid_mask])
    offset = offset_of(feature_set(manifest.feature_set))
    metrics = ranking_metrics(
        y[valid_mask], raw, rows.card[valid_mask], local_days(rows.ts[valid_mask], offset)
    )
    manifest.platt = {"a": platt.a, "b": platt.b}
    manifest.metrics = {f"valid_{k}": v for k, v in metrics.items()}
    manifest.positives = int(y[fit_mask].sum())
    manifest.rows = int(fit_mask.sum())
    onnx_bytes = to_onnx(booster, len(manifest.columns))
    served = Scorer.in_memory(onnx_bytes, manifest).score(rows.x[valid_mask])
    chosen = choose_thresholds(
        served, y[valid_mask], DEFAULT_BUDGETS if budgets is None else budgets
    )
    manifest.thresholds = {action: t.as_dict() for action, t in chosen.items()}
    save_artifact(out, booster, manifest, onnx_bytes)
    return manifest


def ranking_metrics(
    y: Array, score: Array, card: Array, day: Array, k: int = 100
) -> dict[str, float]:
    """AUC ROC, average precision, precision@k and card precision@k (daily, Handbook)."""
    return {
        "auc": roc_auc(y, score),
        "ap": average_precision(y, score),
        f"p@{k}": precision_at_k(y, score, k) if len(y) >= k else float("nan"),
        f"cp@{k}": card_precision_at_k(day, card, y, score, k)[0],
        "rows": float(len(y)),
        "frauds": float(np.sum(y)),
    }


def evaluate_model(
    model_dir: Path, rows: Rows, window: Window | None, k: int = 100
) -> tuple[Window, dict[str, float]]:
    """Score the window's rows with the artifact (ONNX Runtime) against every label in the
    data (ground truth, whenever it arrived). Default window: after training + delay."""
    scorer = Scorer(model_dir)
    manifest = scorer.manifest
    if list(rows.columns) != manifest.columns:
        raise ValueError(f"rows have other columns than the model ({manifest.feature_set})")
    offset = offset_of(feature_set(manifest.feature_set))
    if window is None:
        last = _date_of(int(rows.ts.max()), offset)
        window = Window(manifest.labels_as_of, _shift(last, 1))
    mask = window.mask(rows, offset)
    if not mask.any():
        raise ValueError(f"no rows in {window.start} … {window.end}")
    y = (rows.label_ts[mask] != -1).astype(np.int8)
    score = scorer.score(rows.x[mask])
    return window, ranking_metrics(y, score, rows.card[mask], local_days(rows.ts[mask], offset), k)


def thresholds_on(model_dir: Path, rows: Rows, window: Window) -> dict[str, dict[str, float]]:
    """The manifest's thresholds applied to a later period (does the budget hold?)."""
    scorer = Scorer(model_dir)
    offset = offset_of(feature_set(scorer.manifest.feature_set))
    mask = window.mask(rows, offset)
    y = (rows.label_ts[mask] != -1).astype(np.int8)
    score = scorer.score(rows.x[mask])
    return {
        action: apply_threshold(score, y, t["budget"], t["threshold"]).as_dict()
        for action, t in scorer.manifest.thresholds.items()
    }


def manifest_json(manifest: Manifest) -> str:
    from dataclasses import asdict

    return json.dumps(asdict(manifest), indent=2, sort_keys=True)
