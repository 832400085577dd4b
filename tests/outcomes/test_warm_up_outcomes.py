"""`payguard warm-up` loads outcome history too: a strong step-up passed before go-live
keeps its cause cleared after it (the same rule does not challenge that account on that
device again), an SMS code still clears nothing, and an analyst's `not_fraud` label in
the history clears the merchant of its earlier reports — through the real two-process
load into a real data directory, and across the restart that follows it."""

from pathlib import Path
from typing import Any

import msgspec
import pytest
from support import HOUR, RULESET, T0, label, payment, result, send, settings_for, wire
from typer.testing import CliRunner

from payguard.cli.main import app
from payguard.engine import Engine

MIN = 60_000
MERCHANT = {"id": "m-hist", "category": "food"}


def _load(tmp_path: Path, history: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Warm a data directory up with `history` (the test ruleset), then open it."""
    data = tmp_path / "data"
    settings = settings_for(data, RULESET)
    monkeypatch.setenv("PAYGUARD_RULESET", str(settings.ruleset))
    lines = tmp_path / "history.jsonl"
    lines.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in history))
    args = ["warm-up", str(lines), "--data-dir", str(data)]
    outcome = CliRunner().invoke(app, args, catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.output
    return Engine.open(settings)


@pytest.mark.parametrize(
    ("method", "cleared"), [("face", True), ("hardware_token", True), ("sms_otp", False)]
)
def test_a_step_up_passed_before_go_live_stays_cleared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, cleared: bool
) -> None:
    history = [
        payment("h-pay", T0),  # 1500.00: big_payment challenges it
        result("h-res", "h-pay", T0 + MIN, method, "passed"),
    ]
    engine = _load(tmp_path, history, monkeypatch)
    try:
        assert engine.outcomes.book.state("h-pay") == "challenge:passed"
        live = send(engine, payment("live", T0 + 2 * HOUR))
        assert live == ("allow" if cleared else "challenge")
        other_device = send(engine, payment("other", T0 + 2 * HOUR + 1, device_id="dev-2"))
        assert other_device == "challenge"  # a clearance is for that device only
    finally:
        engine.close()


def test_without_the_result_the_rule_challenges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _load(tmp_path, [payment("h-pay", T0)], monkeypatch)
    try:
        assert send(engine, payment("live", T0 + 2 * HOUR)) == "challenge"
    finally:
        engine.close()


def test_the_clearance_survives_a_restart_after_warm_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = [payment("h-pay", T0), result("h-res", "h-pay", T0 + MIN, "face", "passed")]
    _load(tmp_path, history, monkeypatch).close()
    engine = Engine.open(settings_for(tmp_path / "data", RULESET))
    try:
        assert send(engine, payment("live", T0 + 2 * HOUR)) == "allow"
    finally:
        engine.close()


def test_an_analysts_not_fraud_in_history_clears_the_merchant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = [
        payment("h-p1", T0, "10.00", user="u1", merchant=MERCHANT),
        payment("h-p2", T0, "10.00", user="u2", merchant=MERCHANT),
        wire("h-r1", "fraud_report", T0 + MIN, "u1", ref_event_id="h-p1"),
        wire("h-r2", "fraud_report", T0 + 2 * MIN, "u2", ref_event_id="h-p2"),
        label("h-l1", "h-p1", T0 + 10 * MIN, "not_fraud", source="analyst"),
    ]
    engine = _load(tmp_path, history, monkeypatch)
    try:
        plan = engine.features.plan({"count_fraud_label_by_merchant_30d"})
        probe = payment("probe", T0 + 11 * MIN, "10.00", user="u9", merchant=MERCHANT)
        event = engine.decoder.decode(msgspec.json.encode(probe))
        assert engine.features.snapshot(event, plan)["count_fraud_label_by_merchant_30d"] == 0
        before = msgspec.structs.replace(event, ts=T0 + 9 * MIN)
        assert engine.features.snapshot(before, plan)["count_fraud_label_by_merchant_30d"] == 2
        assert [h.label for h in engine.outcomes.history("h-p1")] == ["fraud", "not_fraud"]
    finally:
        engine.close()


def test_a_second_pass_in_history_extends_the_clearance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """clear_hours is 24: the first pass clears until T0 + 24 h, the second (for a payment
    the rules would challenge but for that clearance) until T0 + 44 h."""
    history = [
        payment("h-pay1", T0),
        result("h-res1", "h-pay1", T0 + MIN, "face", "passed"),
        payment("h-pay2", T0 + 20 * HOUR),
        result("h-res2", "h-pay2", T0 + 20 * HOUR + MIN, "face", "passed"),
    ]
    engine = _load(tmp_path, history, monkeypatch)
    try:
        assert send(engine, payment("live", T0 + 30 * HOUR)) == "allow"
        assert send(engine, payment("later", T0 + 45 * HOUR)) == "challenge"
    finally:
        engine.close()
