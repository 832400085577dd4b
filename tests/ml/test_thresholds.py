"""Thresholds for a budget: the chosen cut-off respects the budget exactly, and no lower
cut-off does (checked by brute force over every distinct score, ties included)."""

import math

import numpy as np
import pytest

from payguard.ml.thresholds import (
    allowed_rows,
    apply_threshold,
    choose_thresholds,
    shortest_decimal_above,
    threshold_for_budget,
)


def _scored(seed: int, n: int = 3000, decimals: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Frauds score higher on average; rounding makes many ties at every cut-off."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.05).astype(np.int8)
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 2.5 * y - 3)))
    return np.round(score, decimals), y


def _legit_at_or_above(score: np.ndarray, y: np.ndarray, t: float) -> int:
    return int(((score >= t) & (y == 0)).sum())


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("budget", [0.0, 0.001, 0.002, 0.01, 0.05, 0.29, 0.5, 1.0])
def test_budget_respected_and_no_lower_cut_off_is(seed: int, budget: float) -> None:
    score, y = _scored(seed, decimals=2 + seed % 3)
    legit = int((y == 0).sum())
    allowed = math.floor(round(budget * legit, 9))  # the budget as the decimal written
    t = threshold_for_budget(score, y, budget)
    assert _legit_at_or_above(score, y, t) <= allowed
    for v in np.unique(score):
        if v < t:  # every lower cut-off at an actual score breaks the budget
            assert _legit_at_or_above(score, y, float(v)) > allowed
    # it flags exactly the rows of the lowest admissible cut-off at an actual score
    admissible = [v for v in np.unique(score) if _legit_at_or_above(score, y, v) <= allowed]
    expected = score >= min(admissible) if admissible else np.zeros(len(score), bool)
    assert ((score >= t) == expected).all()


def test_ties_at_the_boundary_are_left_out_rather_than_overrun() -> None:
    """Five legitimate rows tie at 0.5: a budget of 3 cannot take them, so the cut-off
    goes above the tie, to the next score (a fraud), which it still flags."""
    score = np.array([0.9, 0.8, 0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.1] + [0.0] * 91)
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1] + [0] * 91)
    t = threshold_for_budget(score, y, 0.04)  # 98 legit rows → 3 may be flagged
    assert 0.5 < t <= 0.6
    result = apply_threshold(score, y, 0.04, t)
    assert (result.legit_flagged, result.frauds_flagged) == (2, 1)
    assert result.precision == pytest.approx(1 / 3) and result.recall == 0.5


def test_the_cut_off_is_short_but_flags_the_same_rows() -> None:
    low, high = 0.123456789, 0.2
    assert shortest_decimal_above(low, high) == 0.2
    assert shortest_decimal_above(0.123456789, 0.1235) == 0.1235
    assert shortest_decimal_above(0.5, math.inf) == 0.6
    near = float(np.nextafter(0.3, 1.0))
    assert shortest_decimal_above(0.3, near) == near  # no shorter decimal in between


def test_budget_reads_as_written_and_must_be_a_share() -> None:
    assert allowed_rows(0.29, 100) == 29  # 0.29 * 100 == 28.999999999999996 in floats
    assert allowed_rows(0.01, 99) == 0
    with pytest.raises(ValueError, match="budget"):
        allowed_rows(1.5, 10)


def test_choose_thresholds_per_action_is_nested() -> None:
    score, y = _scored(3)
    chosen = choose_thresholds(score, y, {"challenge": 0.01, "review": 0.002})
    assert chosen["review"].threshold >= chosen["challenge"].threshold
    for action, budget in (("challenge", 0.01), ("review", 0.002)):
        t = chosen[action]
        assert t.legit_share <= budget
        assert t.legit == int((y == 0).sum()) and t.frauds == int(y.sum())
        flagged = score >= t.threshold
        assert t.frauds_flagged == int((flagged & (y == 1)).sum())
        assert t.as_dict()["recall"] == pytest.approx(t.frauds_flagged / t.frauds)
