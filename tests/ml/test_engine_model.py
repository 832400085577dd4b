"""The engine serves a configured model: `model.score` in rules, its version in the
decision; without a model the same ruleset runs with rules only, and says so."""

import logging
from pathlib import Path

import msgspec
import numpy as np
import pytest

from payguard.config import Settings
from payguard.engine import Engine
from payguard.ml.feature_set import FDH_CATALOG_PATH, fdh_feature_set
from payguard.ml.model import Scorer
from payguard.ml.rows import build_rows
from payguard.store.base import as_recorded

from .test_serve import _trained

RULESET = """version: t
rules:
  - id: model_says_fraud
    events: [payment]
    when: "model.score >= 0.5"
    action: review
    reason: the learned score is high
"""


def _engine(tmp_path: Path, model: Path | None) -> Engine:
    ruleset = tmp_path / "rules.yaml"
    ruleset.write_text(RULESET)
    settings = Settings(
        data_dir=tmp_path / f"data-{model is not None}",
        ruleset=ruleset,
        features=FDH_CATALOG_PATH,
        model=model,
    )
    return Engine.open(settings)


def _decide_all(engine: Engine, events: Path) -> list[tuple[str, str | None, list[str]]]:
    out = []
    with events.open("rb") as fh:
        for line in fh:
            decision, _ = engine.process(engine.decoder.decode(line))
            out.append((decision.event_id, decision.model, [r.rule for r in decision.reasons]))
    engine.close()
    return out


def test_rules_read_the_served_score(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    events, model = _trained(tmp_path, "fdh@+8h")
    with caplog.at_level(logging.INFO, logger="payguard"):
        engine = _engine(tmp_path, model)
    version = Scorer(model).version
    assert f"model {version} loaded" in caplog.text
    decisions = _decide_all(engine, events)
    rows = build_rows(events, fdh_feature_set(extras=False), engine.settings.token_key.encode())
    flagged = set(rows.event_id[Scorer(model).score(rows.x) >= 0.5])
    assert flagged  # the synthetic frauds (amounts over 220) score high
    for event_id, used, rules in decisions:
        is_payment = event_id.startswith("fdh-tx-")
        assert used == (version if is_payment else None)
        assert ("model_says_fraud" in rules) == (event_id in flagged)
    assert np.isin(list(flagged), [d[0] for d in decisions]).all()


def test_without_a_model_the_rules_run_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events, _ = _trained(tmp_path, "fdh@+8h")
    with caplog.at_level(logging.INFO, logger="payguard"):
        engine = _engine(tmp_path, None)
    assert "deciding with rules only" in caplog.text
    decisions = _decide_all(engine, events)
    assert all(used is None and "model_says_fraud" not in rules for _, used, rules in decisions)


def test_decisions_carry_the_score_and_explain_non_allow_ones(tmp_path: Path) -> None:
    """`model_score` is the served probability on every scored event; a non-allow decision
    adds the model's top contributions after the rules' reasons, an allow adds none; both
    survive the SQLite record."""
    events, model = _trained(tmp_path, "fdh@+8h")
    engine = _engine(tmp_path, model)
    assert engine.model is not None
    expected: dict[str, tuple[float, list[str]]] = {}
    decisions = []
    with events.open("rb") as fh:
        for line in fh:
            event = engine.decoder.decode(line)
            score = engine.model.score(event)
            if score is not None:
                words = [r.text for r in engine.model.explain(event)]
                expected[event.event_id] = (score, words)
            decisions.append(engine.process(event)[0])
    reviewed = 0
    for decision in decisions:
        factors = [r for r in decision.reasons if r.code == "MODEL_FACTOR"]
        if decision.event_id not in expected:
            assert decision.model_score is msgspec.UNSET and not factors
            continue
        score, words = expected[decision.event_id]
        assert decision.model_score == pytest.approx(score, abs=1e-6)
        if decision.action == "allow":
            assert not factors
            continue
        reviewed += 1
        assert decision.reasons[0].rule == "model_says_fraud"  # the rule's reason comes first
        assert words and len(factors) == len(words) <= 3
        assert all(f.rule == "model" and w in f.text for f, w in zip(factors, words, strict=True))
    assert reviewed
    engine.flush()
    for decision in decisions:
        assert engine.stored_decision(decision.event_id) == as_recorded(decision)
    engine.close()
