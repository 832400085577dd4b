"""Metrics on cases small enough to compute by hand."""

import math

import numpy as np
import pytest

from payguard.ml.metrics import (
    average_precision,
    card_precision_at_k,
    card_precision_ceiling,
    precision_at_k,
    roc_auc,
)


def test_auc_and_ap_by_hand() -> None:
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.4, 0.1])
    assert roc_auc(y, s) == pytest.approx(3 / 4)  # 3 of 4 (fraud, genuine) pairs in order
    assert average_precision(y, s) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert precision_at_k(y, s, 2) == pytest.approx(0.5)
    assert precision_at_k(y, s, 1) == pytest.approx(1.0)


def test_ties_share_a_threshold() -> None:
    y = np.array([1, 0, 0])
    s = np.array([0.5, 0.5, 0.1])
    assert roc_auc(y, s) == pytest.approx((0.5 + 1) / 2)
    assert average_precision(y, s) == pytest.approx(0.5)


def test_undefined_without_frauds() -> None:
    assert math.isnan(roc_auc(np.array([0, 0]), np.array([0.1, 0.2])))
    assert math.isnan(average_precision(np.array([0, 0]), np.array([0.1, 0.2])))


def test_card_precision_removes_cards_found_on_earlier_days() -> None:
    day = np.array([1, 1, 1, 1, 2, 2, 2])
    card = np.array(["A", "A", "B", "C", "A", "C", "B"])
    y = np.array([1, 0, 0, 1, 1, 1, 0])
    s = np.array([0.9, 0.3, 0.8, 0.1, 0.95, 0.7, 0.2])
    mean, per_day = card_precision_at_k(day, card, y, s, k=2)
    # day 1: cards by max score A .9 (fraud), B .8, C .1 → top 2 = A, B → 1/2; A is found.
    # day 2: A is removed; C .7 (fraud), B .2 → 1/2.
    assert per_day == [0.5, 0.5]
    assert mean == pytest.approx(0.5)
    # a perfect ranking finds C on day 1 too, so day 2 has nothing left to find
    assert card_precision_ceiling(day, card, y, k=2) == pytest.approx((1.0 + 0.0) / 2)
