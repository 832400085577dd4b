"""Reason codes for a model score: the features that pushed this event's score up, in words.

A challenged customer, an analyst reviewing a case and a regulator all ask why; "the model
said 0.93" is not an answer. LightGBM's `pred_contrib` (tree SHAP) splits a row's margin
exactly into one contribution per feature plus a bias. The calibration is affine in the
margin (p = σ(a · margin + b)), so multiplied by `a` the contributions split the calibrated
log-odds, and the largest positive ones are the reasons. Words come from the feature
name's grammar (`{how}[_{of}]_{over}_by_{by}_{window}`, docs/features.md), so every
catalog feature has them without a hand-kept table that would drift from the catalog.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from payguard.features import NEVER, Catalog
from payguard.features.spec import FeatureSpec
from payguard.ml.model import read_manifest

Array = npt.NDArray[Any]
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Reason:
    """One feature's share of a score."""

    feature: str
    value: float
    contribution: float
    """Calibrated log-odds this feature added (positive: towards fraud)."""
    text: str


class Explainer:
    """Per-feature contributions of an artifact's trees (model.txt), calibrated."""

    def __init__(self, directory: Path, catalog: Catalog | None = None) -> None:
        manifest = read_manifest(directory)
        self.columns: tuple[str, ...] = tuple(manifest.columns)
        self._booster = lgb.Booster(model_file=str(directory / "model.txt"))
        self._a = float(manifest.platt["a"])
        self._b = float(manifest.platt["b"])
        self._specs = specs_by_name(catalog) if catalog is not None else {}

    def contributions(self, x: Array) -> Array:
        """(rows, features + 1): each feature's calibrated log-odds, then the bias (which
        includes the calibration's intercept), summing to each row's calibrated logit."""
        # rows are float32 in training and serving: split on the same values here
        x64 = np.asarray(x, np.float32).astype(np.float64).reshape(-1, len(self.columns))
        raw = np.asarray(self._booster.predict(x64, pred_contrib=True)) * self._a
        raw[:, -1] += self._b
        return raw

    def reasons(self, row: Sequence[float], k: int = 3) -> list[Reason]:
        """The (at most) k features that raised this row's score most, largest first."""
        contribution = self.contributions(np.asarray([row]))[0, :-1]
        out: list[Reason] = []
        for i in np.argsort(-contribution, kind="stable")[:k]:
            if contribution[i] <= 0:
                break
            name, value = self.columns[i], float(np.float32(row[i]))
            out.append(
                Reason(name, value, float(contribution[i]), describe(name, value, self._specs))
            )
        return out


def specs_by_name(catalog: Catalog) -> dict[str, tuple[FeatureSpec, str]]:
    """Feature name → (its spec, its window)."""
    return {spec.name(w): (spec, w) for spec in catalog.features for w in spec.windows}


def describe(name: str, value: float, specs: dict[str, tuple[FeatureSpec, str]]) -> str:
    """A feature value in words; `name = value` for columns the grammar does not cover."""
    found = specs.get(name)
    if found is not None:
        return _describe_spec(found[0], found[1], value)
    if name == "amount":
        return f"amount {value:,.2f} CNY"
    if name == "local_hour":
        return f"at {int(value):02d}:00–{int(value):02d}:59 local time"
    if name == "local_weekday" and 0 <= value < 7:
        return f"on a {WEEKDAYS[int(value)]}"
    return f"{name} = {value:g}"


def _describe_spec(spec: FeatureSpec, window: str, value: float) -> str:
    over, by = spec.over.replace("_", " "), "this " + spec.by.replace("+", " and ")
    if spec.how == "count":
        return f"{int(value):,} {over} events by {by} in the last {window}"
    if spec.how == "sum":
        return f"{value / 100:,.2f} CNY in {over} events by {by} in the last {window}"
    if spec.how == "distinct":
        return f"{int(value):,} distinct {spec.of}s in {over} events by {by} in the last {window}"
    if spec.how == "is_new":
        seen = "new" if value else "not new"
        return f"a {spec.of} {seen} to {by} over {window} of {over} events"
    if spec.how in ("minutes_since", "seconds_since"):
        if value >= NEVER:
            return f"no {over} event by {by} in the last {window}"
        minutes = value if spec.how == "minutes_since" else value / 60
        return f"last {over} event by {by} {duration(minutes)} ago"
    return f"first {over} event by {by} {duration(value)} ago"  # age


def duration(minutes: float) -> str:
    """Minutes as the largest unit that keeps a readable number."""
    if minutes < 1:
        return "under a minute"
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes >= size:
            amount = minutes / size
            return (
                f"{amount:.0f} {unit}"
                if amount >= 10
                else f"{math.floor(amount * 10) / 10:g} {unit}"
            )
    return f"{minutes:.0f} min"
