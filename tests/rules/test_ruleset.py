"""Ruleset validation and evaluation: errors name the rule, the position and a suggestion."""

from pathlib import Path

import pytest

from payguard.cel import RuleError
from payguard.engine import EVENT_TYPES, compile_ruleset, known_variables
from payguard.features import FeatureState, load_catalog
from payguard.rules import evaluate
from payguard.ruleset import parse_ruleset

ROOT = Path(__file__).resolve().parents[2]
KNOWN = known_variables(FeatureState(load_catalog()))
CHAIN = """chains:
  - name: reset_then_bind
    key: user
    within: 1h
    steps:
      - events: [password_reset]
      - events: [card_bind]
        when: "STEP2"
"""


def _ruleset(when: str, **extra: object) -> str:
    fields = "".join(f"\n    {k}: {v}" for k, v in extra.items())
    return (
        "version: t\nrules:\n  - id: r1\n"
        f'    when: "{when}"\n    action: review\n    reason: because{fields}\n'
    )


def test_default_ruleset_loads_with_enough_rules_and_features() -> None:
    text = (ROOT / "rules/default.yaml").read_text()
    ruleset = compile_ruleset(text, FeatureState(load_catalog()))
    assert len(ruleset.rules) >= 30
    used = set().union(*(r.variables for r in ruleset.rules))
    assert len(used & set(load_catalog_names())) >= 40
    assert any(r.rule.mode == "shadow" for r in ruleset.rules)
    assert {p.name for p in ruleset.chains} >= {"phone_takeover", "identity_reuse_cashout"}
    assert any(n.startswith("graph_") for n in used), "the default rules read the graph"
    assert any(n.startswith("chain_") for n in used), "the default rules read the chains"


def _chained(step2: str, when: str) -> str:
    return CHAIN.replace("STEP2", step2) + _ruleset(when)


def test_rules_read_the_features_of_the_rulesets_own_chains() -> None:
    text = _chained("graph_card_bound_elsewhere", "chain_reset_then_bind_completes")
    ruleset = parse_ruleset(text, KNOWN, EVENT_TYPES, KNOWN)
    assert [p.name for p in ruleset.chains] == ["reset_then_bind"]
    assert ruleset.rules[0].variables == {"chain_reset_then_bind_completes"}
    with pytest.raises(RuleError) as info:
        parse_ruleset(_ruleset("chain_reset_then_bind_completes"), KNOWN, EVENT_TYPES, KNOWN)
    assert "unknown identifier `chain_reset_then_bind_completes`" in info.value.message


def test_chain_conditions_are_validated_and_errors_name_the_chain() -> None:
    features = FeatureState(load_catalog())
    for step2, error in [
        ("graph_card_bound_elswhere", "did you mean `graph_card_bound_elsewhere`"),
        ("model > 0.5", "unknown identifier `model`"),  # matched before the model scores
        ("chain_reset_then_bind_step > 0", "unknown identifier"),  # no chain reads a chain
        ("amount >", "CEL syntax error"),
    ]:
        with pytest.raises(RuleError) as info:
            compile_ruleset(_chained(step2, "amount > 1"), features)
        assert info.value.rule == "reset_then_bind" and error in info.value.message, step2


def test_without_graph_and_chains_their_names_and_sections_are_refused() -> None:
    features = FeatureState(load_catalog())
    with pytest.raises(RuleError, match="without chain patterns"):
        compile_ruleset(_chained("true", "amount > 1"), features, graph_chains=False)
    with pytest.raises(RuleError, match="unknown identifier `graph_new_link`"):
        compile_ruleset(_ruleset("graph_new_link"), features, graph_chains=False)


def test_version_covers_the_chains() -> None:
    first = parse_ruleset(_chained("true", "amount > 1"), KNOWN, EVENT_TYPES, KNOWN)
    second = parse_ruleset(_chained("false", "amount > 1"), KNOWN, EVENT_TYPES, KNOWN)
    assert first.version != second.version


def load_catalog_names() -> list[str]:
    return list(FeatureState(load_catalog()).layout)


def test_syntax_error_reports_position() -> None:
    with pytest.raises(RuleError) as info:
        parse_ruleset(_ruleset("amount > "), KNOWN, EVENT_TYPES)
    assert info.value.rule == "r1"
    assert "1:10" in info.value.message


def test_unknown_identifier_suggests_nearest_feature() -> None:
    with pytest.raises(RuleError) as info:
        parse_ruleset(_ruleset("count_card_bind_by_usr_1h > 2"), KNOWN, EVENT_TYPES)
    assert "count_card_bind_by_usr_1h" in info.value.message
    assert "count_card_bind_by_user_1h" in info.value.message


@pytest.mark.parametrize(
    "when", ["[1, 2].exists(x, x > amount)", "[amount].all(x, x > 0)", "[1].map(x, x)"]
)
def test_comprehension_macros_are_refused(when: str) -> None:
    with pytest.raises(RuleError, match="macros"):
        parse_ruleset(_ruleset(when), KNOWN, EVENT_TYPES)


def test_overlong_expression_is_refused() -> None:
    with pytest.raises(RuleError, match="longer than"):
        parse_ruleset(_ruleset(" || ".join(["amount > 1"] * 300)), KNOWN, EVENT_TYPES)


def test_unknown_event_type_and_missing_challenge_are_refused() -> None:
    with pytest.raises(RuleError, match="unknown event type"):
        parse_ruleset(_ruleset("amount > 1", events="[paymnt]"), KNOWN, EVENT_TYPES)
    text = _ruleset("amount > 1").replace("action: review", "action: challenge")
    with pytest.raises(RuleError, match="challenge"):
        parse_ruleset(text, KNOWN, EVENT_TYPES)


def test_params_are_known_variables_and_version_tracks_content() -> None:
    text = "params:\n  limit: 5\n" + _ruleset("amount > limit")
    first = parse_ruleset(text, KNOWN, EVENT_TYPES)
    second = parse_ruleset(text.replace("limit: 5", "limit: 6"), KNOWN, EVENT_TYPES)
    assert first.version.startswith("t+") and first.version != second.version


def test_failing_rule_is_recorded_as_error_and_others_still_run() -> None:
    text = (
        "version: t\nrules:\n"
        '  - {id: bad, when: "attrs.missing > 1", action: block, reason: x}\n'
        '  - {id: good, when: "amount > 1", action: review, reason: y}\n'
        '  - {id: typed, when: "amount", action: review, reason: z}\n'
    )
    ruleset = parse_ruleset(text, KNOWN, EVENT_TYPES)
    hits = evaluate(ruleset.rules, {"attrs": {}, "amount": 5})
    status = {h.rule: h.status for h in hits}
    assert status == {"bad": "error", "good": "hit", "typed": "error"}


SIGNALS = """version: t
params: {big: 500}
signals:
  large: "amount >= big"
  large_at_night: "large && hour < 6"
rules:
  - id: r1
    when: "large_at_night || merchant_category == 'large'"
    action: review
    reason: because
"""


def test_signals_are_inlined_where_rules_name_them() -> None:
    ruleset = parse_ruleset(SIGNALS, KNOWN, EVENT_TYPES)
    rule = ruleset.rules[0]
    # inlined by syntax tree and printed fully parenthesised
    assert rule.condition == "(((amount >= big) && (hour < 6)) || (merchant_category == 'large'))"
    assert rule.variables == {"amount", "big", "hour", "merchant_category"}
    night = {"amount": 600, "big": 500, "hour": 3, "merchant_category": "x"}
    assert evaluate(ruleset.rules, night)[0].rule == "r1"
    assert evaluate(ruleset.rules, {**night, "hour": 12}) == []


def test_a_field_selected_with_a_dot_is_not_a_signal() -> None:
    text = SIGNALS.replace("|| merchant_category == 'large'", "|| attrs.large == 'yes'")
    condition = parse_ruleset(text, KNOWN, EVENT_TYPES).rules[0].condition
    assert condition == "(((amount >= big) && (hour < 6)) || (attrs.large == 'yes'))"


@pytest.mark.parametrize(
    ("signals", "owner", "reason"),
    [
        ('  amount: "amount > 1"', "signals.amount", "may not shadow"),
        ('  early: "later"\n  later: "amount > 1"', "signals.early", "unknown identifier `later`"),
        ('  bad: "amount >"', "signals.bad", "CEL syntax error"),
    ],
)
def test_bad_signals_are_refused_naming_the_signal(signals: str, owner: str, reason: str) -> None:
    text = f"version: t\nsignals:\n{signals}\nrules: []\n"
    with pytest.raises(RuleError) as err:
        parse_ruleset(text, KNOWN, EVENT_TYPES)
    assert err.value.rule == owner and reason in err.value.message


def test_line_cleared_must_name_rules_of_the_ruleset() -> None:
    text = _ruleset("amount > 0") + "policy:\n  outcomes:\n    line_cleared: [r9]\n"
    with pytest.raises(RuleError) as info:
        parse_ruleset(text, KNOWN, EVENT_TYPES)
    assert "line_cleared names no rule: r9" in info.value.message
    ok = _ruleset("amount > 0") + "policy:\n  outcomes:\n    line_cleared: [r1]\n"
    assert parse_ruleset(ok, KNOWN, EVENT_TYPES).policy.outcomes.line_cleared == ["r1"]


def test_released_by_label_must_name_rules_of_the_ruleset() -> None:
    text = _ruleset("amount > 0") + "policy:\n  outcomes:\n    released_by_label: [r1, r9]\n"
    with pytest.raises(RuleError) as info:
        parse_ruleset(text, KNOWN, EVENT_TYPES)
    assert info.value.rule == "policy"
    assert "released_by_label names no rule: r9" in info.value.message
    ok = _ruleset("amount > 0") + "policy:\n  outcomes:\n    released_by_label: [r1]\n"
    outcomes = parse_ruleset(ok, KNOWN, EVENT_TYPES).policy.outcomes
    assert outcomes.released_by_label == ["r1"]
    assert outcomes.release_sources == ["analyst", "bank"]


def test_release_sources_are_label_sources() -> None:
    text = _ruleset("amount > 0") + "policy:\n  outcomes:\n    release_sources: [neighbour]\n"
    with pytest.raises(RuleError, match="release_sources"):
        parse_ruleset(text, KNOWN, EVENT_TYPES)


def test_follow_on_horizons_are_rule_variables_per_entity_kind() -> None:
    """`policy.follow_on` sets how long each kind of stopped entity is remembered; rules
    read it as `follow_on_<kind>_minutes`, and unset kinds keep their defaults."""
    when = "minutes_since_stopped_by_merchant_7d <= follow_on_merchant_minutes"
    text = _ruleset(when) + "policy:\n  follow_on: {merchant: 4320, user: 60}\n"
    ruleset = parse_ruleset(text, KNOWN, EVENT_TYPES)
    assert ruleset.params["follow_on_merchant_minutes"] == 4320
    assert ruleset.params["follow_on_user_minutes"] == 60
    assert ruleset.params["follow_on_device_minutes"] == 1440
    within = {"minutes_since_stopped_by_merchant_7d": 4000, **ruleset.params}
    assert [h.status for h in evaluate(ruleset.rules, within)] == ["hit"]
    past = {"minutes_since_stopped_by_merchant_7d": 5000, **ruleset.params}
    assert evaluate(ruleset.rules, past) == []


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        ("  follow_on: {merchant: 20000}\n", "follow_on.merchant"),
        ("  follow_on: {shop: 60}\n", "shop"),
    ],
)
def test_bad_follow_on_horizons_are_refused(policy: str, reason: str) -> None:
    with pytest.raises(RuleError, match=reason):
        parse_ruleset(_ruleset("amount > 0") + "policy:\n" + policy, KNOWN, EVENT_TYPES)


def test_a_param_may_not_redefine_a_follow_on_horizon() -> None:
    text = "params:\n  follow_on_user_minutes: 5\n" + _ruleset("amount > 0")
    with pytest.raises(RuleError, match=r"policy\.follow_on") as info:
        parse_ruleset(text, KNOWN, EVENT_TYPES)
    assert info.value.rule == "params"
