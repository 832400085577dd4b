"""Train LightGBM, calibrate it, and ship it as a versioned ONNX artifact.

An artifact is a directory:
    model.onnx     the trees, for ONNX Runtime (what serving loads)
    model.txt      the same trees in LightGBM's text format (for per-feature contributions)
    manifest.json  version, feature set and columns, training window, label source, the
                   calibration, metrics, and the sha256 of the events it was trained on
Ranking metrics do not need calibration; thresholds and `model.score` in rules do, so a
Platt map fitted on a later validation period turns raw scores into probabilities.
"""

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 50,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "num_threads": 1,
    "seed": 0,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}
DEFAULT_ROUNDS = 300


def train_booster(
    x: Array, y: Array, params: dict[str, Any] | None = None, rounds: int = DEFAULT_ROUNDS
) -> lgb.Booster:
    """A LightGBM binary classifier with `params` over the defaults."""
    merged = {**DEFAULT_PARAMS, **(params or {})}
    return lgb.train(merged, lgb.Dataset(x, label=y, free_raw_data=True), num_boost_round=rounds)


@dataclass(frozen=True)
class Platt:
    """p = sigmoid(a * margin + b), fitted on held-out rows (identity: a=1, b=0)."""

    a: float = 1.0
    b: float = 0.0

    def apply(self, margin: Array) -> Array:
        return np.asarray(0.5 * (1.0 + np.tanh((self.a * margin + self.b) / 2)))  # no overflow


def fit_platt(margin: Array, y: Array, iterations: int = 100) -> Platt:
    """Logistic regression of labels on the raw margin (Platt's targets), by Newton steps
    halved until the loss falls: a plain Newton step overshoots when the calibration
    period is nearly separable (the slope ran off to 1e10 on simulator data), and a
    saturated map turns every score into exactly 0 or 1, ties that ruin any ranking."""
    y = np.asarray(y, np.float64)
    positives, negatives = y.sum(), len(y) - y.sum()
    if positives == 0 or negatives == 0:
        return Platt()
    target = np.where(y > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    m = np.asarray(margin, np.float64)
    ab = np.array([1.0, 0.0])
    loss = _platt_loss(ab, m, target)
    for _ in range(iterations):
        p = Platt(*ab).apply(m)
        w = np.maximum(p * (1 - p), 1e-12)
        grad = np.array([((p - target) * m).sum(), (p - target).sum()])
        hess = np.array([[(w * m * m).sum(), (w * m).sum()], [(w * m).sum(), w.sum()]])
        step = np.linalg.solve(hess + 1e-9 * np.eye(2), grad)
        ab, new_loss = _backtrack(ab, step, grad, loss, m, target)
        if loss - new_loss <= 1e-12 * max(1.0, loss):
            break
        loss = new_loss
    return Platt(float(ab[0]), float(ab[1]))


def _platt_loss(ab: Array, m: Array, target: Array) -> float:
    """Cross-entropy of the targets under p = sigmoid(a·m + b), without overflow."""
    z = ab[0] * m + ab[1]
    return float((target * np.logaddexp(0.0, -z) + (1 - target) * np.logaddexp(0.0, z)).sum())


def _backtrack(
    ab: Array, step: Array, grad: Array, loss: float, m: Array, target: Array
) -> tuple[Array, float]:
    """The Newton step, halved until it decreases the loss enough (Armijo); no move if
    even a tiny step does not."""
    fraction = 1.0
    while fraction > 1e-10:
        trial = ab - fraction * step
        trial_loss = _platt_loss(trial, m, target)
        if trial_loss <= loss - 1e-4 * fraction * float(grad @ step):
            return trial, trial_loss
        fraction /= 2
    return ab, loss


def to_onnx(booster: lgb.Booster, n_features: int) -> bytes:
    """The booster as an ONNX graph: input `x` float[N, n], output probabilities[N, 2]."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    model = convert_lightgbm(
        booster, initial_types=[("x", FloatTensorType([None, n_features]))], zipmap=False
    )
    return bytes(model.SerializeToString())


def margin_of(p: Array) -> Array:
    """The raw score behind a probability (LightGBM's margin), clipped away from 0 and 1."""
    q = np.clip(np.asarray(p, np.float64), 1e-15, 1 - 1e-15)
    return np.asarray(np.log(q / (1 - q)))


@dataclass
class Manifest:
    version: str
    feature_set: str
    columns: list[str]
    catalog_sha256: str
    train_window: list[str]
    """[from, to) local dates the training rows were decided in."""
    valid_window: list[str]
    label_source: str
    labels_as_of: str
    data_sha256: str
    params: dict[str, Any]
    rounds: int
    platt: dict[str, float]
    metrics: dict[str, float] = field(default_factory=dict)
    created: str = ""
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per action: `model.score` cut-off for its budget of legitimate rows, chosen on the
    validation period, with what it flagged there (payguard.ml.thresholds)."""
    positives: int = 0
    rows: int = 0
    worlds: dict[str, Any] = field(default_factory=dict)
    """For a model trained across simulated worlds (`payguard.sim.training`): the variant set,
    simulator settings and which seeds fit and which calibrated; empty otherwise."""


class Scorer:
    """Calibrated fraud probabilities from an artifact, through ONNX Runtime."""

    def __init__(self, directory: Path) -> None:
        self._open(str(directory / "model.onnx"), read_manifest(directory))

    @classmethod
    def in_memory(cls, onnx_bytes: bytes, manifest: Manifest) -> "Scorer":
        """Score as serving will before the artifact is written (thresholds are chosen
        on these scores, not on LightGBM's own, which differ in the last digits)."""
        scorer = cls.__new__(cls)
        scorer._open(onnx_bytes, manifest)
        return scorer

    def _open(self, model: str | bytes, manifest: Manifest) -> None:
        import onnxruntime as ort

        self.manifest = manifest
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._platt = Platt(**manifest.platt)

    @property
    def version(self) -> str:
        return self.manifest.version

    def raw(self, x: Array) -> Array:
        """Uncalibrated probabilities (the trees' own output)."""
        x32 = np.ascontiguousarray(x, np.float32)
        return np.asarray(self._session.run(["probabilities"], {"x": x32})[0][:, 1])

    def score(self, x: Array) -> Array:
        return self._platt.apply(margin_of(self.raw(x)))


def save_artifact(
    directory: Path, booster: lgb.Booster, manifest: Manifest, onnx_bytes: bytes | None = None
) -> None:
    """Write the three files; the version is a hash of the model and its manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    onnx_bytes = onnx_bytes or to_onnx(booster, len(manifest.columns))
    text = booster.model_to_string()
    digest = hashlib.sha256(onnx_bytes + json.dumps(asdict(manifest), sort_keys=True).encode())
    manifest.created = manifest.created or datetime.now(UTC).isoformat(timespec="seconds")
    manifest.version = f"lgbm-{manifest.created[:10]}-{digest.hexdigest()[:12]}"
    (directory / "model.onnx").write_bytes(onnx_bytes)
    (directory / "model.txt").write_text(text, encoding="utf-8")
    body = json.dumps(asdict(manifest), indent=2, sort_keys=True, allow_nan=True)
    (directory / "manifest.json").write_text(body + "\n", encoding="utf-8")


def read_manifest(directory: Path) -> Manifest:
    raw = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    return Manifest(**raw)


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """Metrics with NaN (undefined: no positives) kept as None-free floats for JSON."""
    return {k: (v if math.isfinite(v) else float("nan")) for k, v in metrics.items()}
