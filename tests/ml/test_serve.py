"""Serving scores a live event exactly as training built its row (no skew), and refuses
models it cannot serve with a reason (the engine then decides with rules only)."""

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from payguard.cli.main import app
from payguard.config import load_settings
from payguard.events import EventDecoder, Tokenizer
from payguard.features import DEFAULT_CATALOG_PATH
from payguard.ml.feature_set import FDH_CATALOG_PATH, fdh_feature_set
from payguard.ml.model import Scorer
from payguard.ml.rows import build_rows
from payguard.ml.serve import load_model

from .test_model_cli import _raw


def _trained(tmp_path: Path, features: str) -> tuple[Path, Path]:
    runner = CliRunner()
    events = tmp_path / "events.jsonl"
    assert (
        runner.invoke(
            app, ["import-fdh", str(_raw(tmp_path / "raw.csv")), "-o", str(events)]
        ).exit_code
        == 0
    )
    model = tmp_path / "model"
    train = ["model", "train", "--events", str(events), "--out", str(model),
             "--feature-set", features, "--rounds", "30"]  # fmt: skip
    result = runner.invoke(app, train)
    assert result.exit_code == 0, result.output
    return events, model


def test_served_scores_equal_training_rows(tmp_path: Path) -> None:
    events, model = _trained(tmp_path, "fdh@+8h")
    key = load_settings().token_key.encode()
    fs = fdh_feature_set(extras=False)
    rows = build_rows(events, fs, key)
    expected = Scorer(model).score(rows.x)
    state = fs.state()
    server, message = load_model(model, state, FDH_CATALOG_PATH)
    assert server is not None, message
    assert "loaded" in message and server.version in message
    decoder = EventDecoder(Tokenizer(key))
    referenced = {}
    served = []
    with events.open("rb") as fh:
        for line in fh:
            event = decoder.decode(line)
            score = server.score(event)
            if score is not None:
                served.append(score)
            if event.type == "payment":  # what the engine's recorder would look up
                referenced[event.event_id] = event
            state.update(event, referenced.get(event.ref_event_id or ""))
    assert len(served) == len(rows)
    assert np.abs(np.array(served) - expected).max() < 1e-5


def test_models_that_cannot_be_served_are_refused_with_a_reason(tmp_path: Path) -> None:
    _, model = _trained(tmp_path, "fdh+extras@+8h")
    state = fdh_feature_set().state()
    server, message = load_model(model, state, FDH_CATALOG_PATH)
    assert server is None and "needs state the engine does not keep" in message
    server, message = load_model(None, state, FDH_CATALOG_PATH)
    assert server is None and message == "no model configured: deciding with rules only"
    server, message = load_model(tmp_path / "nowhere", state, FDH_CATALOG_PATH)
    assert server is None and "no model artifact" in message


def test_a_model_of_another_catalog_is_refused(tmp_path: Path) -> None:
    _, model = _trained(tmp_path, "fdh@+8h")
    server, message = load_model(model, fdh_feature_set().state(), DEFAULT_CATALOG_PATH)
    assert server is None and "another feature catalog" in message
