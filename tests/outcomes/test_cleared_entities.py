"""An analyst's `not_fraud` label clears the merchant of its earlier fraud reports, through
the engine and across a real restart (from the state snapshot, and by replaying the log
when the snapshot is gone); a `fraud` label keeps counting as a report."""

from pathlib import Path

import pytest
from support import T0, decode, label, open_engine, payment, send, wire

from payguard.engine import SNAPSHOT_FILE, Engine

MIN = 60_000
MERCHANT = {"id": "m-cleared", "category": "food"}
FEATURES = {"count_fraud_label_by_merchant_30d", "distinct_user_fraud_label_by_merchant_7d"}


def _reported(engine: Engine, ts: int) -> dict[str, object]:
    probe = decode(engine, payment("probe", ts, "10.00", user="u9", merchant=MERCHANT))
    return engine.features.snapshot(probe, engine.features.plan(FEATURES))


def _history(engine: Engine) -> None:
    """Two customers pay the merchant and report it; an analyst clears u1's payment."""
    for user in ("u1", "u2"):
        send(engine, payment(f"p-{user}", T0, "10.00", user=user, merchant=MERCHANT))
    for i, user in enumerate(("u1", "u2")):
        send(
            engine,
            wire(f"r-{user}", "fraud_report", T0 + (i + 1) * MIN, user, ref_event_id=f"p-{user}"),
        )
    assert _reported(engine, T0 + 5 * MIN)["count_fraud_label_by_merchant_30d"] == 2
    send(engine, label("l1", "p-u1", T0 + 10 * MIN, "not_fraud", source="analyst"))


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    opened = open_engine(tmp_path / "data")
    yield opened
    opened.close()


def test_the_analysts_verdict_clears_the_merchant(engine: Engine) -> None:
    _history(engine)
    assert _reported(engine, T0 + 11 * MIN) == {
        "count_fraud_label_by_merchant_30d": 0,
        "distinct_user_fraud_label_by_merchant_7d": 0,
    }
    assert _reported(engine, T0 + 9 * MIN)["count_fraud_label_by_merchant_30d"] == 2


def test_a_fraud_label_after_it_counts_again(engine: Engine) -> None:
    _history(engine)
    send(engine, label("l2", "p-u2", T0 + 20 * MIN, "fraud", source="bank"))
    assert _reported(engine, T0 + 21 * MIN)["count_fraud_label_by_merchant_30d"] == 1


@pytest.mark.parametrize("lose_snapshot", [False, True])
def test_a_restart_keeps_the_clearing(tmp_path: Path, lose_snapshot: bool) -> None:
    data = tmp_path / "data"
    first = open_engine(data)
    _history(first)
    first.close()
    if lose_snapshot:  # recovery replays the whole log
        (data / SNAPSHOT_FILE).unlink()
    second = open_engine(data)
    try:
        assert _reported(second, T0 + 11 * MIN)["count_fraud_label_by_merchant_30d"] == 0
        assert _reported(second, T0 + 9 * MIN)["count_fraud_label_by_merchant_30d"] == 2
    finally:
        second.close()
