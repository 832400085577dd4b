"""The model's budget rules compile beside the default ruleset read from its file (which
is rewritten independently), keep every default rule, and read the cut-offs exactly."""

from pathlib import Path

import pytest
import yaml

from payguard.engine import compile_ruleset
from payguard.features import DEFAULT_CATALOG_PATH, FeatureState, load_catalog
from payguard.ml.budget_rules import cut_offs, model_only_yaml, model_rules, with_model_yaml

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "rules" / "default.yaml"


def _ids(text: str) -> list[str]:
    features = FeatureState(load_catalog(DEFAULT_CATALOG_PATH))
    return [r.rule.id for r in compile_ruleset(text, features).rules]


def test_default_rules_plus_model_rules_compile() -> None:
    default = DEFAULT_RULES.read_text(encoding="utf-8")
    combined = with_model_yaml(default, 0.0043, 0.05)
    assert _ids(combined) == [*_ids(default), "model_challenge", "model_review"]
    assert yaml.safe_load(combined)["version"] == yaml.safe_load(default)["version"] + "+model"
    assert _ids(model_only_yaml(0.0043, 0.05)) == ["model_challenge", "model_review"]


def test_cut_offs_are_written_exactly() -> None:
    challenge, review = model_rules(0.1 + 0.2, 1e-05)
    assert challenge["when"] == "model.score >= 0.30000000000000004"
    assert review["when"] == "model.score >= 1e-05"
    assert _ids(model_only_yaml(1e-05, 1.0)) == ["model_challenge", "model_review"]  # CEL reads it
    assert float(yaml.safe_load(model_only_yaml(0.0043, 0.05))["rules"][0]["when"][15:]) == 0.0043


def test_cut_offs_need_both_thresholds() -> None:
    assert cut_offs({"challenge": {"threshold": 0.2}, "review": {"threshold": 0.7}}) == (0.2, 0.7)
    with pytest.raises(ValueError, match="review"):
        cut_offs({"challenge": {"threshold": 0.2}})
