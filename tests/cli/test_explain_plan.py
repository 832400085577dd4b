"""`payguard explain-plan EVENT_TYPE`: prints the generated code of a type, a comment per
feature and rule; bad input exits 2 naming what is wrong (issue 13)."""

import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from payguard.cli.main import app
from payguard.config import load_settings
from payguard.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
RULESET = ROOT / "rules" / "default.yaml"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["explain-plan", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("event_type", ["payment", "login", "transfer"])
def test_prints_code_naming_every_feature_and_rule_of_the_type(event_type: str) -> None:
    code, out, _ = _run(event_type, "--ruleset", str(RULESET))
    assert code == 0
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env={"PAYGUARD_DATA_DIR": tmp, "PAYGUARD_RULESET": str(RULESET)})
        engine = Engine.open(settings)
        try:
            plan = engine._plan_for(event_type)
            rules = [r.rule.id for r in plan.rules]
            features = plan.features.names
        finally:
            engine.close()
    assert features, "the default ruleset reads features on this type"
    for name in features:
        assert f"# feature {name}" in out, name
    for rule in rules:
        assert f"# rule {rule}: " in out, rule
    assert f"<payguard snapshot {event_type} #" in out
    assert f"<payguard rules {event_type} #" in out
    assert f"<payguard update {event_type} #" in out
    compile(out, "explain-plan output", "exec")  # the printout is valid Python as a whole


def test_unknown_event_type_exits_2_naming_it() -> None:
    code, out, err = _run("paymnt", "--ruleset", str(RULESET))
    assert code == 2
    assert "event_type" in err and "'paymnt'" in err and "payment" in err
    assert out == ""


def test_missing_ruleset_exits_2(tmp_path: Path) -> None:
    code, _, err = _run("payment", "--ruleset", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "--ruleset" in err


def test_invalid_ruleset_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: x\nrules:\n  - id: r\n    when: 'no_such_feature > 1'\n")
    code, _, err = _run("payment", "--ruleset", str(bad))
    assert code == 2
    assert "error" in err
