"""The Fraud Detection Handbook's evaluation protocols, on payguard's rows and model.

Chapter 3.4: train on 7 days, wait the 7-day feedback delay, test on the next 7 days with
cards already known to be compromised removed. Chapter 5.3: the same split repeated on 4
folds stepping back 7 days (prequential), hyper-parameters chosen on validation folds that
end before the test folds begin.

"Known compromised" is what payguard itself would know: a card is known on test day D if
a fraud report on one of its payments made since the training start arrived before D
began. Because reports arrive exactly 7 days after the payment, that is the Handbook's
set (frauds of days start … D − 8).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from payguard.ml.metrics import (
    average_precision,
    card_precision_at_k,
    card_precision_ceiling,
    roc_auc,
)
from payguard.ml.model import train_booster
from payguard.ml.rows import NO_LABEL, Rows
from payguard.types import DAY_MS, HOUR_MS

Array = npt.NDArray[Any]
PUBLISHED_34 = {  # Chapter 3.4 (BaselineModeling), best of each metric in bold in the book
    "Logistic regression": (0.871, 0.606, 0.291),
    "Random forest": (0.867, 0.658, 0.287),
    "XGBoost": (0.862, 0.639, 0.273),
}
PUBLISHED_53 = {  # Chapter 5.3 (ModelSelection), test mean ± std at the validation best
    "Logistic regression": ((0.868, 0.02), (0.623, 0.02), (0.297, 0.01)),
    "Random forest": ((0.870, 0.02), (0.678, 0.01), (0.299, 0.01)),
    "XGBoost": ((0.869, 0.01), (0.687, 0.01), (0.303, 0.01)),
}
SPLIT_34_START = "2018-07-25"
VALID_53_START = "2018-07-11"
TEST_53_START = "2018-08-15"


def day_number(text: str) -> int:
    """A calendar date as days since 1970-01-01."""
    return (date.fromisoformat(text) - date(1970, 1, 1)).days


def local_days(ts: Array, offset_hours: int) -> Array:
    """The local calendar day (days since 1970-01-01) of each epoch-ms time."""
    return np.asarray((ts + offset_hours * HOUR_MS) // DAY_MS)


@dataclass
class Split:
    train: Array
    test: Array
    y_train: Array
    y_test: Array
    day: Array
    """Local day of every row (card precision is per day)."""


def handbook_split(
    rows: Rows,
    start: str,
    offset_hours: int,
    delta_train: int = 7,
    delta_delay: int = 7,
    delta_test: int = 7,
) -> Split:
    """The Handbook's `get_train_test_set`, with labels and known cards from the reports
    payguard received (a report's time is when its label became known)."""
    day = local_days(rows.ts, offset_hours)
    first = day_number(start)
    midnight = (first - offset_hours / 24) * DAY_MS  # local midnight of the start, in UTC ms
    train = (day >= first) & (day < first + delta_train)
    test_start_ms = int(midnight + (delta_train + delta_delay) * DAY_MS)
    test = np.zeros(len(rows), bool)
    since_start = rows.ts >= midnight
    cards = rows.card_codes()
    for k in range(delta_test):
        begins = test_start_ms + k * DAY_MS
        known = since_start & (rows.label_ts != NO_LABEL) & (rows.label_ts < begins)
        is_known = np.zeros(int(cards.max()) + 1, bool)
        is_known[cards[known]] = True
        today = day == first + delta_train + delta_delay + k
        test |= today & ~is_known[cards]
    y_train = rows.labels_known_at(test_start_ms)
    y_test = (rows.label_ts != NO_LABEL).astype(np.int8)
    return Split(train, test, y_train, y_test, day)


def assess(split: Split, rows: Rows, score: Array) -> dict[str, float]:
    """AUC ROC, average precision and card precision@100 on the split's test rows."""
    y = split.y_test[split.test]
    cp, _ = card_precision_at_k(split.day[split.test], rows.card[split.test], y, score, 100)
    return {
        "auc": roc_auc(y, score),
        "ap": average_precision(y, score),
        "cp100": cp,
        "cp100_ceiling": card_precision_ceiling(split.day[split.test], rows.card[split.test], y),
        "test_rows": float(split.test.sum()),
        "test_frauds": float(y.sum()),
        "train_rows": float(split.train.sum()),
        "train_frauds": float(split.y_train[split.train].sum()),
    }


def fit_assess(
    rows: Rows, split: Split, columns: Sequence[int], params: dict[str, Any], rounds: int
) -> dict[str, float]:
    """Train on the split's training rows (chosen columns), assess on its test rows."""
    x = rows.x[:, list(columns)]
    booster = train_booster(x[split.train], split.y_train[split.train], params, rounds)
    return assess(split, rows, np.asarray(booster.predict(x[split.test])))


def prequential(
    rows: Rows,
    start: str,
    offset_hours: int,
    columns: Sequence[int],
    params: dict[str, Any],
    rounds: int,
    n_folds: int = 4,
) -> list[dict[str, float]]:
    """Chapter 5.3's folds: training starts at `start`, then 7, 14, 21 days earlier."""
    first = day_number(start)
    results = []
    for fold in range(n_folds):
        fold_start = date.fromordinal(date(1970, 1, 1).toordinal() + first - 7 * fold)
        split = handbook_split(rows, fold_start.isoformat(), offset_hours)
        results.append(fit_assess(rows, split, columns, params, rounds))
    return results


def mean_std(folds: list[dict[str, float]], key: str) -> tuple[float, float]:
    values = np.array([f[key] for f in folds])
    return float(values.mean()), float(values.std())
