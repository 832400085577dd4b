"""Event variables added for issue 11: `amount_round_unit` and `phone_plan_valid`."""

from pathlib import Path
from typing import Any

import cel
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from payguard.cel.translate import predicate, translate
from payguard.config import load_settings
from payguard.engine import Engine, compile_ruleset
from payguard.events import EventDecoder, Tokenizer
from payguard.features import FeatureState, load_catalog
from payguard.rules.variables import (
    EVENT_VARIABLE_TYPES,
    ROUND_UNITS_YUAN,
    event_variables,
    round_unit,
)
from payguard.store import MemoryRecorder

ROOT = Path(__file__).resolve().parents[2]
DECODE = EventDecoder(Tokenizer(b"variables-test-key-0123456789")).decode
VARIABLES = event_variables()


def _event(**fields: Any) -> bytes:
    base = {"event_id": "e1", "type": "payment", "ts": 1_599_182_640_000, "user_id": "u_1"}
    return msgspec.json.encode({"amount": "1.00", **base, **fields})


@pytest.mark.parametrize(
    ("yuan", "unit"),
    [
        ("9800.00", 10_000),
        ("10000.00", 10_000),
        ("19999.00", 10_000),
        ("10200.00", 10_000),  # 2 % over
        ("10200.01", 100),  # just past 2 % of 10,000 (and of 10 x 1,000); 102 x 100
        ("4999.50", 1_000),
        ("12000", 1_000),
        ("2450", 100),  # 24.5 hundreds: the tie rounds up to 2,500, exactly 2 % away
        ("98", 100),
        ("102", 100),
        ("97.99", 0),
        ("103", 0),
        ("37", 0),
        ("0.01", 0),
        ("49.99", 0),
    ],
)
def test_amount_round_unit(yuan: str, unit: int) -> None:
    assert VARIABLES["amount_round_unit"](DECODE(_event(amount=yuan))) == unit


def test_amount_round_unit_is_zero_without_an_amount() -> None:
    assert VARIABLES["amount_round_unit"](DECODE(_event(type="login", amount=None))) == 0


def _brute_round_unit(amount: int) -> int:
    """The definition, searched: the largest unit with any positive multiple m·U within
    2 % of m·U of the amount (exact fractions, no rounding rule)."""
    for unit_yuan in ROUND_UNITS_YUAN:
        unit = unit_yuan * 100
        for multiple in range(1, amount // unit + 2):
            if abs(amount - multiple * unit) * 50 <= multiple * unit:
                return unit_yuan
    return 0


def _amounts() -> st.SearchStrategy[int]:
    """Any amount, and amounts at the 2 % edges of multiples (where rounding matters)."""
    near_edge = st.builds(
        lambda unit, m, side, off: max(0, m * unit * 100 + side * (m * unit * 2) + off),
        st.sampled_from(ROUND_UNITS_YUAN),
        st.integers(1, 60),
        st.sampled_from([-1, 1, 0]),
        st.integers(-2, 2),
    )
    ties = st.builds(
        lambda unit, m: m * unit * 100 + unit * 50,
        st.sampled_from(ROUND_UNITS_YUAN),
        st.integers(0, 60),
    )
    return st.integers(0, 10**8) | near_edge | ties


@given(_amounts())
def test_round_unit_matches_the_brute_force_definition(amount: int) -> None:
    assert round_unit(amount) == _brute_round_unit(amount)


@pytest.mark.parametrize(
    ("phone", "valid"),
    [("+8613800138000", True), ("+861440123456789", False), ("+8610000000000", False)],
)
def test_phone_plan_valid(phone: str, valid: bool) -> None:
    assert VARIABLES["phone_plan_valid"](DECODE(_event(phone=phone))) is valid


def test_phone_plan_valid_is_null_without_a_phone() -> None:
    assert VARIABLES["phone_plan_valid"](DECODE(_event())) is None


def test_every_event_variable_has_a_declared_type() -> None:
    assert set(VARIABLES) - {"attrs"} == set(EVENT_VARIABLE_TYPES)
    assert EVENT_VARIABLE_TYPES["amount_round_unit"] == "int"
    assert EVENT_VARIABLE_TYPES["phone_plan_valid"] == "bool?"


RULES_OVER_NEW_VARIABLES = [
    "amount_round_unit >= 1000",
    "amount_round_unit == 0 || amount_round_unit in [100, 1000]",
    "phone_plan_valid == false",
    "phone_plan_valid != true && amount_round_unit > 100",
    "phone_plan_valid == null",
]


@pytest.mark.parametrize("text", RULES_OVER_NEW_VARIABLES)
@pytest.mark.parametrize("unit", [0, 100, 1_000, 10_000])
@pytest.mark.parametrize("valid", [True, False, None])
def test_rules_over_the_new_variables_translate_and_agree_with_cel(
    text: str, unit: int, valid: bool | None
) -> None:
    translate(text, EVENT_VARIABLE_TYPES, str)  # raises Untranslatable if it would stay CEL
    check = predicate(text, EVENT_VARIABLE_TYPES)
    assert check is not None
    values = {"amount_round_unit": unit, "phone_plan_valid": valid}
    assert check(values) == cel.compile(text).execute(cel.Context(values))


RULESET = """
version: i11-variables
rules:
  - {id: near_round, when: "amount_round_unit >= 1000", action: review, reason: near-round amount}
  - {id: odd_phone, when: "phone_plan_valid == false", action: review, reason: unknown phone range}
"""


def test_engine_rules_read_the_new_variables() -> None:
    settings = load_settings(env={"PAYGUARD_RULESET": str(ROOT / "rules" / "default.yaml")})
    features = FeatureState(load_catalog())
    engine = Engine(
        features=features,
        ruleset=compile_ruleset(RULESET, features),
        recorder=MemoryRecorder(),
        settings=settings,
    )
    plan = engine._plan_for("payment")

    def hits(**fields: Any) -> set[str]:
        event = engine.decoder.decode(_event(**fields))
        return {r.rule for r in plan.run_rules({}, event) if r.status == "hit"}

    assert hits(amount="9800") == {"near_round"}
    assert hits(amount="37", phone="+861440123456789") == {"odd_phone"}
    assert hits(amount="37", phone="+8613800138000") == set()
