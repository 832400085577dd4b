"""The rules sandbox at the ruleset level: what is refused, and what a failing rule does.

Refusals (comment tricks, cost over budget, alias bombs, signal bombs, too many rules)
are checked by outcome and by a bound on the work done (nodes, memory), never by time.
A rule that cannot be evaluated is recorded with its error class and fails open or
closed as declared, whether it runs through CEL, through its Python translation or
runs out of the per-event budget.
"""

import logging
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from typer.testing import CliRunner

from payguard.cel import RuleError
from payguard.cel.sandbox import MAX_RULE_COST, MAX_RULESET_COST
from payguard.cli.main import app
from payguard.engine import EVENT_TYPES, known_variables
from payguard.events import Event
from payguard.features import FeatureState, load_catalog
from payguard.metrics import Metrics, RuleErrorLog
from payguard.rules import evaluate
from payguard.rules.evaluate import BUDGET_EXCEEDED, rule_runner
from payguard.rules.variables import EVENT_VARIABLE_TYPES, event_variables
from payguard.ruleset import parse_ruleset
from payguard.ruleset.yamlload import (
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    YamlError,
    expanded_size,
    load_yaml,
)

KNOWN = known_variables(FeatureState(load_catalog()))


def _balanced_or(terms: list[str]) -> str:
    """`terms` joined by `||` as a balanced tree, so only the cost (not the depth) is large."""
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({_balanced_or(terms[:half])} || {_balanced_or(terms[half:])})"


def _rules(*rules: str, head: str = "") -> str:
    return "version: t\n" + head + "rules:\n" + "".join(f"  - {r}\n" for r in rules)


def test_a_comment_cannot_hide_a_macro_from_the_check() -> None:
    text = _rules(
        "id: sneaky\n    when: |\n      [amount].//\n      all(x, x > 0)\n"
        "    action: block\n    reason: x"
    )
    with pytest.raises(RuleError) as err:
        parse_ruleset(text, KNOWN, EVENT_TYPES)
    assert err.value.rule == "sneaky"
    assert "comprehension macros are not allowed: `.all()`" in err.value.message


def test_a_comment_in_a_signal_does_not_swallow_the_rule_that_names_it() -> None:
    """Signals were inlined as text, so `(amount > 5 // note)` commented out the rest of
    the rule; inlined as trees, the comment is gone and the rule means what it says."""
    head = 'signals:\n  big: "amount > 5 // more than 5 fen"\n'
    text = _rules("{id: r, when: 'big && hour < 6', action: review, reason: x}", head=head)
    rule = parse_ruleset(text, KNOWN, EVENT_TYPES).rules[0]
    assert rule.condition == "((amount > 5) && (hour < 6))"
    assert [h.rule for h in evaluate((rule,), {"amount": 6, "hour": 3})] == ["r"]
    assert evaluate((rule,), {"amount": 6, "hour": 12}) == []


def test_a_rule_over_the_cost_budget_is_refused_naming_it_and_its_cost() -> None:
    costly = _balanced_or([f"channel.contains('x{n}')" for n in range(50)])
    text = _rules(f'{{id: costly, when: "{costly}", action: review, reason: x}}')
    with pytest.raises(RuleError) as err:
        parse_ruleset(text, KNOWN, EVENT_TYPES)
    assert err.value.rule == "costly"
    assert f"exceeds the budget of {MAX_RULE_COST} per rule" in err.value.message
    assert "estimated cost 1199" in err.value.message


def test_a_ruleset_over_the_total_budget_is_refused_naming_its_costliest_rule() -> None:
    when = "amount in [" + ", ".join(str(n) for n in range(400)) + "]"  # 403 steps
    rules = [f'{{id: r{n}, when: "{when}", action: review, reason: x}}' for n in range(130)]
    with pytest.raises(RuleError, match=f"exceeds the budget of {MAX_RULESET_COST}"):
        parse_ruleset(_rules(*rules), KNOWN, EVENT_TYPES)


def test_signals_doubling_each_other_are_refused_without_expanding_them() -> None:
    """`s1: s0 && s0`, `s2: s1 && s1`, …: 2^40 nodes as text, 121 as a shared tree."""
    chain = [f'  s{k}: "s{k - 1} && s{k - 1}"' for k in range(1, 41)]
    head = "signals:\n" + "\n".join(['  s0: "amount > 1"', *chain]) + "\n"
    text = _rules("{id: r, when: s40, action: review, reason: x}", head=head)
    with pytest.raises(RuleError) as err:
        parse_ruleset(text, KNOWN, EVENT_TYPES)
    assert err.value.rule.startswith("signals.s")
    assert "exceeds the budget" in err.value.message


def _alias_bomb(levels: int = 12, width: int = 10) -> str:
    """A rules list that expands to width^levels rules from a few hundred bytes."""
    lines = ["version: bomb", 'r0: &r0 {id: r, when: "amount > 1", action: review, reason: x}']
    for level in range(1, levels + 1):
        items = ", ".join([f"*r{level - 1}"] * width)
        lines.append(f"r{level}: &r{level} [{items}]")
    lines.append(f"rules: *r{levels}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_before_anything_is_built_from_it() -> None:
    text = _alias_bomb()
    tracemalloc.start()
    try:
        with pytest.raises(RuleError) as err:
            parse_ruleset(text, KNOWN, EVENT_TYPES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.value.rule == "-"
    assert f"expands to more than {MAX_YAML_NODES} nodes" in err.value.message
    assert peak < 5_000_000, "memory stays in proportion to the text, not the expansion"


def test_a_megabyte_of_aliases_is_refused_and_counting_stops_at_the_limit() -> None:
    rule = '{id: r, when: "amount > 1", action: review, reason: x}'
    text = f"version: b\nbase: &r {rule}\nrules: [" + ", ".join(["*r"] * 240_000) + "]\n"
    assert len(text) < 1024 * 1024
    with pytest.raises(YamlError, match="expands to more than"):
        load_yaml(text)
    root = yaml.compose(_alias_bomb(levels=30))
    assert expanded_size(root, limit=1_000) == 1_001  # 10^30 nodes, counted up to the limit


@pytest.mark.parametrize(
    "nested",
    ["rules: " + "[" * 30_000 + "]" * 30_000, "rules:\n  " + "- " * 30_000 + "x"],
    ids=["flow", "block"],
)
def test_deep_nesting_is_refused_not_a_crash(tmp_path: Path, nested: str) -> None:
    """libyaml's composer recurses per level and kills the process (SIGSEGV) at some
    thousands of levels, so this runs `rules check` in a child process: a crash is -11."""
    path = tmp_path / "deep.yaml"
    path.write_text(nested + "\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "payguard.cli", "rules", "check", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PAYGUARD_DATA_DIR": str(tmp_path / "data")},
    )
    assert done.returncode == 2, done.stderr
    assert f"nested more than {MAX_YAML_DEPTH} levels deep" in done.stderr
    with pytest.raises(YamlError, match="levels deep"):
        load_yaml(nested)
    inner = MAX_YAML_DEPTH - 1  # the mapping is a level too
    assert load_yaml("a: " + "[" * inner + "]" * inner) is not None


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(RuleError, match="contains it"):
        parse_ruleset("version: t\nrules: &a [*a]\n", KNOWN, EVENT_TYPES)


def test_too_many_rules_are_refused_before_they_are_compiled() -> None:
    rules = [f'{{id: r{n}, when: "amount > {n}", action: review, reason: x}}' for n in range(2001)]
    with pytest.raises(RuleError, match="at most 2000 rules"):
        parse_ruleset(_rules(*rules), KNOWN, EVENT_TYPES)


def test_the_default_ruleset_is_far_inside_the_budgets() -> None:
    text = (Path(__file__).resolve().parents[2] / "rules/default.yaml").read_text()
    ruleset = parse_ruleset(text, KNOWN, EVENT_TYPES, KNOWN - {"model"})
    assert max(r.cost for r in ruleset.rules) * 5 < MAX_RULE_COST
    assert sum(r.cost for r in ruleset.rules) * 10 < MAX_RULESET_COST
    assert expanded_size(yaml.compose(text), MAX_YAML_NODES) * 20 < MAX_YAML_NODES


# -- failing rules -------------------------------------------------------------------------

FAILING = _rules(
    "{id: open, when: \"attrs.secret == 'x'\", action: block, reason: x}",
    "{id: closed, when: \"attrs.secret == 'x'\", action: review, reason: x, on_error: fail_closed}",
    "{id: fine, when: 'amount > 0', action: challenge, reason: x, challenge: [sms_otp]}",
)


def _event(**fields: Any) -> Event:
    body = {"event_id": "e1", "type": "payment", "ts": 1_600_000_000_000, "user_id": "u1"}
    return msgspec.convert({**body, **fields}, Event)


def test_failing_rules_fail_open_or_closed_through_cel() -> None:
    rules = parse_ruleset(FAILING, KNOWN, EVENT_TYPES).rules
    records = {h.rule: h for h in evaluate(rules, {"attrs": {"tier": "13800138000"}, "amount": 1})}
    assert (records["open"].status, records["open"].error) == ("error", "KeyError")
    assert (records["closed"].status, records["closed"].error) == ("hit", "KeyError")
    assert (records["fine"].status, records["fine"].error) == ("hit", None)
    assert all("13800138000" not in (h.error or "") for h in records.values())


def _runner(budget_us: int) -> Any:
    rules = parse_ruleset(FAILING, KNOWN, EVENT_TYPES).rules
    event_vars = event_variables()
    return rule_runner(rules, EVENT_VARIABLE_TYPES, frozenset(), event_vars, {}, budget_us)


def test_failing_rules_fail_open_or_closed_on_the_engine_path() -> None:
    run, translated = _runner(50_000)
    assert translated == 1  # `fine`; the attrs rules run through CEL
    records = {h.rule: (h.status, h.error) for h in run({}, _event(amount=5, attrs={"a": 1}))}
    assert records == {
        "open": ("error", "KeyError"),
        "closed": ("hit", "KeyError"),
        "fine": ("hit", None),
    }


def test_an_exhausted_budget_fails_the_remaining_cel_rules_by_their_mode() -> None:
    """A budget of 0 is spent before the first CEL call; translated rules still run."""
    run, _ = _runner(0)
    records = {h.rule: (h.status, h.error) for h in run({}, _event(amount=5, attrs={"a": 1}))}
    assert records == {
        "open": ("error", BUDGET_EXCEEDED),
        "closed": ("hit", BUDGET_EXCEEDED),
        "fine": ("hit", None),
    }
    rules = parse_ruleset(FAILING, KNOWN, EVENT_TYPES).rules
    assert [h.error for h in evaluate(rules, {"attrs": {}, "amount": 1}, budget_us=0)] == [
        BUDGET_EXCEEDED
    ] * 3


def test_rule_errors_are_counted_every_time_and_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    metrics = Metrics()
    errors = RuleErrorLog(metrics, logging.getLogger("test.rules"), 60.0, lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.rules"):
        for second in range(130):
            now[0] = float(second)
            errors.report([("open", "KeyError", "fail_open")])
        errors.report([("closed", "TypeError", "fail_closed")])
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "rule open failed: KeyError (fail_open); 0 more failures since the last report",
        "rule open failed: KeyError (fail_open); 59 more failures since the last report",
        "rule open failed: KeyError (fail_open); 59 more failures since the last report",
        "rule closed failed: TypeError (fail_closed); 0 more failures since the last report",
    ]
    assert metrics.rule_errors == {("open", "KeyError"): 130, ("closed", "TypeError"): 1}
    text = metrics.render({})
    assert 'payguard_rule_errors_total{error="KeyError",rule="open"} 130.0' in text


# -- payguard rules check --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            _rules('{id: sneaky, when: "[amount].//\\n all(x, x > 0)", action: block, reason: x}'),
            "rule sneaky: comprehension macros are not allowed",
        ),
        (_alias_bomb(), "expands to more than"),
        (
            _rules(
                '{id: slow, when: "'
                + _balanced_or([f"channel.contains('x{n}')" for n in range(50)])
                + '", action: review, reason: x}'
            ),
            "rule slow: estimated cost 1199 exceeds the budget",
        ),
    ],
)
def test_rules_check_refuses_with_exit_2_naming_the_rule(
    text: str, expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["rules", "check", str(path)])
    assert result.exit_code == 2
    assert expected in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_rules_check_accepts_a_fail_closed_rule(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(FAILING)
    result = CliRunner().invoke(app, ["rules", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "3 rules" in result.stdout
