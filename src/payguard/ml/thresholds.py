"""Score thresholds for a friction budget: "challenge at most 1 % of legitimate payments".

A budget is a promise to customers, not a score: operations can say how much friction
legitimate traffic may bear, while a probability cut-off means nothing to them and drifts
with every retrain. So the artifact records, per action, the lowest `model.score` cut-off
whose share of legitimate rows at or above it stays within the budget on the validation
period (scored through ONNX Runtime exactly as serving scores), with the precision and
recall it gave there. Rules then read `model.score >= threshold`.
"""

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

DEFAULT_BUDGETS: dict[str, float] = {"challenge": 0.01, "review": 0.002}
"""Share of legitimate rows each action may reach (review is nested in challenge)."""


@dataclass(frozen=True)
class Threshold:
    """One action's cut-off and what it did on the period it was chosen on."""

    budget: float
    threshold: float
    legit_flagged: int
    legit: int
    frauds_flagged: int
    frauds: int

    @property
    def legit_share(self) -> float:
        return self.legit_flagged / self.legit if self.legit else float("nan")

    @property
    def precision(self) -> float:
        flagged = self.legit_flagged + self.frauds_flagged
        return self.frauds_flagged / flagged if flagged else float("nan")

    @property
    def recall(self) -> float:
        return self.frauds_flagged / self.frauds if self.frauds else float("nan")

    def as_dict(self) -> dict[str, float]:
        """For the manifest: the fields plus the derived shares (NaN when undefined)."""
        numbers = {k: float(v) for k, v in asdict(self).items()}
        return {**numbers, "legit_share": self.legit_share, "precision": self.precision,
                "recall": self.recall}  # fmt: skip


def allowed_rows(budget: float, legit: int) -> int:
    """floor(budget × legit), with the budget read as the decimal it was written as
    (0.29 × 100 is 29 rows, not the 28.999… of binary floating point)."""
    if not 0.0 <= budget <= 1.0:
        raise ValueError(f"a budget is a share of legitimate rows in [0, 1], not {budget}")
    return math.floor(Fraction(repr(budget)) * legit)


def threshold_for_budget(score: Array, y: Array, budget: float) -> float:
    """The lowest cut-off t with #{legit: score >= t} <= floor(budget × #legit).

    Any t above the (allowed+1)-th highest legitimate score s qualifies and nothing at or
    below s does; every t in (s, next higher score] flags the same rows, so the shortest
    decimal there is returned (readable in a rule, same decisions on this period)."""
    score, legit_mask = np.asarray(score, np.float64), np.asarray(y) == 0
    legit = np.sort(score[legit_mask])[::-1]
    allowed = allowed_rows(budget, len(legit))
    if allowed >= len(legit):
        return float(score.min(initial=0.0))  # every row
    below = float(legit[allowed])
    above = score[score > below]
    return shortest_decimal_above(below, float(above.min()) if len(above) else math.inf)


def shortest_decimal_above(low: float, high: float) -> float:
    """The float with the fewest decimals in (low, high]; the next float after `low` if
    none has up to 17."""
    for digits in range(1, 18):
        scale: int = 10**digits
        candidate = round((math.floor(low * scale) + 1) / scale, digits)
        if low < candidate <= high:
            return candidate
    return float(np.nextafter(low, math.inf))


def apply_threshold(score: Array, y: Array, budget: float, threshold: float) -> Threshold:
    """What `score >= threshold` flags among legitimate rows and frauds."""
    score, fraud = np.asarray(score, np.float64), np.asarray(y) != 0
    flagged = score >= threshold
    return Threshold(
        budget=budget,
        threshold=threshold,
        legit_flagged=int((flagged & ~fraud).sum()),
        legit=int((~fraud).sum()),
        frauds_flagged=int((flagged & fraud).sum()),
        frauds=int(fraud.sum()),
    )


def choose_thresholds(score: Array, y: Array, budgets: dict[str, float]) -> dict[str, Threshold]:
    """Per action, the threshold for its budget and what it gives on these rows."""
    return {
        action: apply_threshold(score, y, budget, threshold_for_budget(score, y, budget))
        for action, budget in budgets.items()
    }
