"""Ranking metrics for fraud scores, with the Handbook's definitions.

AUC ROC and average precision follow scikit-learn (ties share a threshold); precision@k
takes the k highest scores; card precision@k is the Handbook's daily metric (Chapter 4.2):
per day, each card scores its highest transaction and is positive if any of its
transactions is a fraud; the k highest cards are checked; cards found on earlier days are
removed from later days; the result is the mean over days.
"""

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


def roc_auc(y: Array, score: Array) -> float:
    """Probability that a random fraud outscores a random genuine one (ties count half)."""
    y = np.asarray(y, bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(score, np.float64))
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _average_ranks(values: Array) -> Array:
    """1-based ranks, tied values sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    average = (starts + ends + 1) / 2  # mean of ranks starts+1 … ends
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def average_precision(y: Array, score: Array) -> float:
    """Σ over distinct thresholds of (recall gained) × (precision there)."""
    y = np.asarray(y, bool)
    positives = int(y.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-np.asarray(score, np.float64), kind="mergesort")
    s, hits = np.asarray(score, np.float64)[order], y[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # end of each tie block
    tp = np.cumsum(hits)[last]
    precision = tp / (last + 1)
    recall_gain = np.diff(np.r_[0, tp]) / positives
    return float((recall_gain * precision).sum())


def precision_at_k(y: Array, score: Array, k: int) -> float:
    """Share of frauds among the k highest scores (stable order among ties)."""
    order = np.argsort(-np.asarray(score, np.float64), kind="mergesort")[:k]
    return float(np.asarray(y, bool)[order].sum() / k)


def card_precision_at_k(
    day: Array, card: Array, y: Array, score: Array, k: int = 100
) -> tuple[float, list[float]]:
    """The Handbook's card precision@k: (mean over days, per-day values)."""
    day, card = np.asarray(day), np.asarray(card)
    y, score = np.asarray(y, bool), np.asarray(score, np.float64)
    detected: set[Any] = set()
    per_day: list[float] = []
    for d in np.unique(day):
        best: dict[Any, tuple[float, bool]] = {}
        for c, s, f in zip(card[day == d], score[day == d], y[day == d], strict=True):
            if c in detected:
                continue
            old = best.get(c)
            best[c] = (s, bool(f)) if old is None else (max(old[0], s), old[1] or bool(f))
        top = sorted(best.items(), key=lambda item: -item[1][0])[:k]
        found = [c for c, (_, fraud) in top if fraud]
        per_day.append(len(found) / k)
        detected.update(found)
    return (float(np.mean(per_day)) if per_day else float("nan")), per_day


def card_precision_ceiling(day: Array, card: Array, y: Array, k: int = 100) -> float:
    """Card precision@k of a perfect ranking: min(compromised cards that day, k) / k,
    with perfectly detected cards removed from later days, as the metric does."""
    return card_precision_at_k(day, card, y, np.asarray(y, np.float64), k)[0]
