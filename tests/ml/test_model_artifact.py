"""The artifact round trip: LightGBM → ONNX + manifest on disk → ONNX Runtime scores."""

from pathlib import Path

import numpy as np
import pytest

from payguard.ml.model import (
    Manifest,
    Platt,
    Scorer,
    fit_platt,
    margin_of,
    read_manifest,
    save_artifact,
    train_booster,
)


def _data(n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + rng.normal(scale=0.5, size=n) > 1.5).astype(int)
    return x, y


def _manifest() -> Manifest:
    return Manifest(
        version="",
        feature_set="fdh@+8h",
        columns=["a", "b", "c", "d"],
        catalog_sha256="0" * 64,
        train_window=["2018-07-25", "2018-08-01"],
        valid_window=["2018-08-01", "2018-08-08"],
        label_source="feedback events",
        labels_as_of="2018-08-15",
        data_sha256="1" * 64,
        params={"num_leaves": 7},
        rounds=40,
        platt={"a": 0.8, "b": -0.3},
        metrics={"valid_ap": 0.5},
    )


def test_onnx_scores_equal_lightgbm_and_manifest_round_trips(tmp_path: Path) -> None:
    x, y = _data()
    booster = train_booster(x, y, {"num_leaves": 7}, rounds=40)
    save_artifact(tmp_path, booster, _manifest())
    assert {p.name for p in tmp_path.iterdir()} == {"model.onnx", "model.txt", "manifest.json"}
    scorer = Scorer(tmp_path)
    expected = booster.predict(x[:500])
    assert np.abs(scorer.raw(x[:500]) - expected).max() < 1e-5
    calibrated = Platt(0.8, -0.3).apply(margin_of(np.asarray(expected)))
    assert np.abs(scorer.score(x[:500]) - calibrated).max() < 1e-5
    manifest = read_manifest(tmp_path)
    assert manifest.version.startswith("lgbm-") and manifest.version == scorer.version
    assert manifest.columns == ["a", "b", "c", "d"]
    assert manifest.train_window == ["2018-07-25", "2018-08-01"]


def test_platt_recovers_a_known_calibration() -> None:
    rng = np.random.default_rng(5)
    margin = rng.normal(scale=2.0, size=20000)
    truth = 1 / (1 + np.exp(-(0.5 * margin - 1.0)))
    y = (rng.random(20000) < truth).astype(int)
    platt = fit_platt(margin, y)
    assert platt.a == pytest.approx(0.5, abs=0.05)
    assert platt.b == pytest.approx(-1.0, abs=0.08)


@pytest.mark.parametrize(("high", "low"), [(2.0, -2.0), (12.0, -9.0), (30.0, -25.0)])
def test_platt_stays_finite_on_a_separable_calibration_period(high: float, low: float) -> None:
    """Two margins, every fraud above every genuine row: the fit has an exact answer
    (each margin maps to its Platt target), which a plain Newton step overshoots."""
    margin = np.r_[np.full(50, high), np.full(5000, low)]
    y = np.r_[np.ones(50), np.zeros(5000)]
    platt = fit_platt(margin, y)
    p = platt.apply(np.array([high, low]))
    assert p[0] == pytest.approx(51 / 52, rel=1e-6)
    assert p[1] == pytest.approx(1 / 5002, rel=1e-6)
