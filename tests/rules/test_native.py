"""Rules translated to Python decide exactly as CEL does.

A translated expression may raise where CEL raises (the engine then re-runs the rule in
CEL); whenever it returns, CEL must return the same boolean. Random expressions over
typed variables, with values at the int64 edges, zero divisors and nulls, check that;
the default ruleset must translate completely and give CEL's records on real events.
"""

import traceback
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import cel
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payguard.cel.translate import INT64_MAX, INT64_MIN, Untranslatable, predicate, translate
from payguard.config import load_settings
from payguard.engine import Engine, compile_ruleset
from payguard.features import FeatureState, load_catalog
from payguard.generated import filename_of, source_of
from payguard.rules import RuleHit, evaluate
from payguard.rules.variables import EVENT_VARIABLE_TYPES
from payguard.store import MemoryRecorder

ROOT = Path(__file__).resolve().parents[2]

TYPES = {
    "i": "int",
    "j": "int",
    "k": "int",
    "b": "bool",
    "c": "bool",
    "s": "string",
    "t": "string",
    "ns": "string?",
    "nb": "bool?",
    "ni": "int?",
}
INTS = st.sampled_from(
    [0, 1, -1, 2, -7, 7, 3, 100_000, 10**9, INT64_MAX, INT64_MIN, 2**62, -(2**62), 2**32]
)
STRINGS = st.sampled_from(["", "a", "b", "api", "é", "ab"])
VALUES = {
    "int": INTS,
    "bool": st.booleans(),
    "string": STRINGS,
    "string?": st.none() | STRINGS,
    "bool?": st.none() | st.booleans(),
    "int?": st.none() | INTS,
}


def _atoms() -> st.SearchStrategy[str]:
    literals = st.sampled_from(
        ["0", "1", "5", "-3", "9223372036854775807", "true", "false", "null", "'a'", '"api"']
    )
    odd = st.sampled_from(["1.5", "2u", "size(s)", "s.size()", "'a\\n'", "[]", "0x10", "{}"])
    return st.sampled_from(sorted(TYPES)) | literals | odd


def _expressions() -> st.SearchStrategy[str]:
    binary = st.sampled_from(
        ["&&", "||", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "in"]
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return (
            st.tuples(inner, binary, inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}")
            | inner.map(lambda x: f"({x})")
            | inner.map(lambda x: f"!{x}")
            | inner.map(lambda x: f"-{x}")
            | st.lists(inner, min_size=1, max_size=3).map(lambda xs: f"[{', '.join(xs)}]")
            | st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} ? {t[1]} : {t[2]}")
        )

    return st.recursive(_atoms(), extend, max_leaves=8)


def _typed() -> st.SearchStrategy[str]:
    """Well-typed boolean expressions, so most examples reach the comparison."""
    ints = st.deferred(
        lambda: (
            st.sampled_from(["i", "j", "k", "0", "2", "-3", "100000", "9223372036854775807"])
            | st.tuples(ints, st.sampled_from(["+", "-", "*", "/", "%"]), ints).map(" ".join)
            | ints.map(lambda x: f"-({x})")
            | ints.map(lambda x: f"({x})")
        )
    )
    strings = st.sampled_from(["s", "t", "'a'", '"api"', "''"])
    nullable = st.sampled_from(["ns", "nb", "null"])
    relop = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
    bools = st.deferred(
        lambda: (
            st.sampled_from(["b", "c", "true", "false", "nb == true", "nb != false"])
            | st.tuples(ints, relop, ints).map(" ".join)
            | st.tuples(strings, relop, strings).map(" ".join)
            | st.tuples(nullable, st.sampled_from(["==", "!="]), strings | nullable).map(" ".join)
            | st.tuples(strings | nullable, st.just("in ['a', 'api', '']")).map(" ".join)
            | st.tuples(ints, st.just("in [0, 2, -7]")).map(" ".join)
            | st.tuples(bools, st.sampled_from(["&&", "||", "==", "!="]), bools).map(" ".join)
            | bools.map(lambda x: f"!({x})")
            | bools.map(lambda x: f"({x})")
        )
    )
    return bools


def _check(text: str, values: dict[str, Any]) -> bool:
    """Compare translation and CEL on one expression; False if it was not compared."""
    try:
        program = cel.compile(text)
        code = translate(text, TYPES, lambda name: f"v[{name!r}]")
    except (ValueError, Untranslatable):
        return False
    namespace: dict[str, Any] = {"v": values}
    exec("from payguard.cel.translate import _int64, _div, _mod", namespace)
    try:
        got = eval(code, namespace)
    except (OverflowError, ZeroDivisionError):
        return False  # the engine re-runs the rule through CEL
    expected = program.execute(cel.Context(values))
    assert type(got) is bool and type(expected) is bool, (text, code, values)
    assert got == expected, (text, code, values)
    return True


VALUE_SETS = st.fixed_dictionaries({n: VALUES[t] for n, t in TYPES.items()})


@settings(max_examples=3_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_typed(), VALUE_SETS)
def test_translation_returns_what_cel_returns(text: str, values: dict[str, Any]) -> None:
    _check(text, values)


@settings(max_examples=1_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expressions(), VALUE_SETS)
def test_translation_of_arbitrary_text_is_refused_or_exact(
    text: str, values: dict[str, Any]
) -> None:
    _check(text, values)


@pytest.mark.parametrize(
    "text",
    [
        "ni < 5",  # an ordering on a nullable value errors in CEL
        "nb && b",  # so does && on a null
        "i == b",  # Python has True == 1; CEL does not
        "i",  # not a boolean
        "i == 1.0",
        "s.size() > 1",
        "size(s) > 1",
        "i > 1 ? b : c",
        "'a\\'b' == s",
        "[] == []",
        "i in []",
        "s in ['a', 1]",
        "null == i",
    ],
)
def test_untranslatable_forms_stay_in_cel(text: str) -> None:
    with pytest.raises(Untranslatable):
        translate(text, TYPES, str)


def test_cel_integer_semantics() -> None:
    values = {"i": -7, "j": 2}

    def run(text: str) -> Any:
        namespace: dict[str, Any] = {"v": values}
        exec("from payguard.cel.translate import _int64, _div, _mod", namespace)
        return eval(translate(text, TYPES, lambda n: f"v[{n!r}]"), namespace)

    assert run("i / j == -3") is True  # truncating, not floor division
    assert run("i % j == -1") is True  # the dividend's sign
    with pytest.raises(ZeroDivisionError):
        run("i % 0 == 1")
    with pytest.raises(OverflowError):
        run("9223372036854775807 + 1 > 0")
    values.update(i=-(2**63), j=-1)  # the quotient overflows, so CEL errors on both
    for text in ("i % j == 0", "i / j > 0"):
        with pytest.raises(OverflowError):
            cel.compile(text).execute(cel.Context(values))
        with pytest.raises(OverflowError):
            run(text)


NO_BUDGET_US = 10_000_000
"""The largest rule budget settings allow: these tests compare the two paths' records, and
a budget that runs out on a loaded machine in one path and not the other is not a
difference between them."""


def _engine() -> Engine:
    settings_ = msgspec.structs.replace(
        load_settings(env={"PAYGUARD_RULESET": str(ROOT / "rules" / "default.yaml")}),
        rule_budget_us=NO_BUDGET_US,
    )
    features = FeatureState(load_catalog())
    ruleset = compile_ruleset((ROOT / "rules/default.yaml").read_text(), features)
    return Engine(features=features, ruleset=ruleset, recorder=MemoryRecorder(), settings=settings_)


def test_default_rules_over_fields_features_and_params_all_translate() -> None:
    """Every default rule that reads only event fields, catalog features and params runs
    as Python (rules over other variables, such as graph or chain values, may stay CEL)."""
    engine = _engine()
    types = {
        **EVENT_VARIABLE_TYPES,
        **{n: engine.features.value_type(n) for n in engine.features.layout},
        **{k: "int" for k in engine.ruleset.params},
    }
    plain = [r for r in engine.ruleset.rules if r.variables <= types.keys()]
    assert len(plain) >= 30
    for compiled in plain:
        translate(compiled.condition, types, str)


def _records_on_examples(engine: Engine, count: int) -> Iterator[list[RuleHit]]:
    """Each of the first `count` example events' rule records from the runner, after
    checking them against CEL's on the same variables; the event is then processed."""
    event_vars = engine._event_vars
    with (ROOT / "examples" / "events.jsonl").open("rb") as lines:
        for line in islice(lines, count):
            event = engine.decoder.decode(line)
            plan = engine._plan_for(event.type)
            features = engine.decide(event).features  # catalog, graph and chain values
            assert isinstance(features, dict)
            variables = {n: read(event) for n, read in event_vars.items()}
            variables.update(features)
            variables.update(plan.ruleset.params)
            records = plan.run_rules(features, event)
            assert records == evaluate(plan.rules, variables, budget_us=NO_BUDGET_US)
            yield records
            engine.process(event)


def test_runner_records_equal_cel_records_on_example_events() -> None:
    for _ in _records_on_examples(_engine(), 3_000):
        pass


MIXED_RULESET = """
version: mixed
params: {big: 100000}
rules:
  - {id: translated, when: "amount >= big && count_money_out_by_user_1h >= 1", action: review,
     reason: r}
  - {id: overflows, when: "amount * 9223372036854775807 > 0", action: review, reason: r}
  - {id: null_order, when: "success == true || card_kind > 'a'", action: review, reason: r}
  - {id: map_read, when: "attrs['campaign'] == 'x'", action: review, reason: r}
  - {id: not_bool, when: "amount", action: review, reason: r}
  - {id: function, when: "size(type) > 5 && hour < 6", action: block, reason: r}
"""


def test_untranslated_and_raising_rules_fall_back_to_cel() -> None:
    """Records (hits and error messages) are CEL's whichever path a rule takes."""
    engine = _engine()
    engine.set_ruleset(compile_ruleset(MIXED_RULESET, engine.features))
    errors = 0
    for records in _records_on_examples(engine, 2_000):
        errors += sum(r.status == "error" for r in records)
    assert errors > 0


def test_a_traceback_from_a_translated_condition_shows_its_line() -> None:
    """Generated code is debuggable (issue 13): the condition's own filename and line."""
    check = predicate("a > 1 && b == 'x'", {"a": "int", "b": "string"})
    assert check is not None
    assert "# a > 1 && b == 'x'" in source_of(check)
    try:
        check({"a": 2})  # b is missing: the generated code raises KeyError
    except KeyError as exc:
        text = "".join(traceback.format_exception(exc))
    else:
        raise AssertionError("expected a KeyError")
    assert filename_of(check) in text and "<payguard condition #" in text
    assert "return ((v['a'] > 1) and (v['b'] == 'x'))" in text
