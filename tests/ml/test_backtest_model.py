"""`payguard backtest` decides with the configured model, as production would: a rule on
`model.score` hits exactly the events the artifact scores above its cut-off; without a
model the same rule never fires."""

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from payguard.backtest import run_backtest
from payguard.cli.main import app
from payguard.config import Settings, load_settings
from payguard.engine import compile_ruleset
from payguard.features import FeatureState, load_catalog
from payguard.ml.feature_set import FDH_CATALOG_PATH, fdh_feature_set
from payguard.ml.model import Scorer
from payguard.ml.rows import build_rows

from .test_engine_model import RULESET
from .test_model_cli import _imported


def _data(tmp_path: Path) -> tuple[Path, Path, Path]:
    runner = CliRunner()
    events, labels = _imported(tmp_path)
    model = tmp_path / "model"
    train = ["model", "train", "--events", str(events), "--out", str(model),
             "--feature-set", "fdh@+8h", "--rounds", "30"]  # fmt: skip
    result = runner.invoke(app, train)
    assert result.exit_code == 0, result.output
    return events, labels, model


def _hits(tmp_path: Path, events: Path, labels: Path, model: Path | None) -> tuple[int, int]:
    settings = Settings(data_dir=tmp_path / "data", features=FDH_CATALOG_PATH, model=model)
    features = FeatureState(load_catalog(FDH_CATALOG_PATH))
    ruleset = compile_ruleset(RULESET, features)
    summary = run_backtest(events, labels, ruleset=ruleset, features=features, settings=settings)
    (row,) = [r for r in summary.rules if r.rule == "model_says_fraud"]
    return row.hits, row.attack_hits


def test_backtest_serves_the_configured_model(tmp_path: Path) -> None:
    events, labels, model = _data(tmp_path)
    rows = build_rows(events, fdh_feature_set(extras=False), load_settings().token_key.encode())
    flagged = Scorer(model).score(rows.x) >= 0.5
    hits, attack_hits = _hits(tmp_path, events, labels, model)
    assert hits == int(flagged.sum()) > 0
    assert 0 < attack_hits <= hits
    assert _hits(tmp_path, events, labels, None) == (0, 0)
    assert np.any(flagged)
