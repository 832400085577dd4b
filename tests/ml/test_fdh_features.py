"""payguard's features equal the Handbook's own `transactions_transformed` columns.

Three weeks of the real file (201,254 payments): customer windows including the current
payment, terminal windows delayed 7 days, terminal risk from fraud reports that arrive 7
days late. The slice holds one skipped zero-amount payment and two same-second pairs the
Handbook's unstable sort reversed, so both accounted differences are exercised.
"""

from datetime import datetime
from pathlib import Path

from payguard.ml.fdh_check import check_features


def test_handbook_features_equal_on_three_weeks(fdh: Path) -> None:
    result = check_features(
        fdh / "transactions_raw.csv.xz",
        fdh / "transactions_transformed.csv.xz",
        until=datetime(2018, 4, 22),
    )
    assert result.rows == 201_254
    assert result.adjusted_for_zero_amounts > 0
    assert result.reordered_ties > 0
    for column in result.columns:
        assert column.compared == result.rows
        assert column.mismatches == 0, f"{column.column}: e.g. TRANSACTION_ID {column.examples}"
    risky = [c for c in result.columns if c.column.startswith("TERMINAL_ID_RISK")]
    assert all(c.max_abs_diff == 0 for c in risky)
