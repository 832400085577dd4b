"""Verdicts that come back in the stream (`label`, `fraud_report`, `chargeback`) feed each
rule's labelled precision in the backtest report, the latest verdict about an event
counting; the ten-event file of tests/backtest with labels appended."""

import io
from pathlib import Path

import msgspec
import pytest
from rich.console import Console

from payguard.backtest import Summary, run_backtest
from payguard.backtest.report_text import render_text
from payguard.config import Settings
from payguard.engine import compile_ruleset
from payguard.features import FeatureState, load_catalog

DATA = Path(__file__).resolve().parents[1] / "backtest" / "data"
TS = 1_791_500_000_000  # 2026-10-08: after every event of the ten-event file


def verdict(event_id: str, ref: str, kind: str = "label", **fields: str) -> bytes:
    body = {"event_id": event_id, "type": kind, "ts": TS, "user_id": "u1", "ref_event_id": ref}
    return msgspec.json.encode({**body, **fields})


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> Summary:
    events = tmp_path_factory.mktemp("verdicts") / "events.jsonl"
    lines = [
        verdict("v1", "e07", label="not_fraud", source="customer"),  # game_sms, legitimate
        verdict("v2", "e02", label="fraud", source="customer"),  # game_sms, attack
        verdict("v3", "e03", label="fraud", source="bank"),  # gift_face
        verdict("v4", "e05", label="fraud", source="analyst"),  # gift_face, then cleared:
        verdict("v5", "e05", label="not_fraud", source="analyst"),  # the latest counts
        verdict("v6", "e06", "chargeback"),  # big_transfer
    ]
    events.write_bytes((DATA / "ten_events.jsonl").read_bytes() + b"\n".join(lines) + b"\n")
    settings = Settings()
    features = FeatureState(load_catalog(settings.features))
    ruleset = compile_ruleset((DATA / "ten_rules.yaml").read_text(), features)
    return run_backtest(
        events, DATA / "ten_labels.jsonl", ruleset=ruleset, features=features, settings=settings
    )


def test_labelled_precision_per_rule(summary: Summary) -> None:
    rows = {
        r.rule: (r.labelled_fraud, r.labelled_not_fraud, r.labelled_precision)
        for r in summary.rules
    }
    assert rows["game_sms"] == (1, 1, 0.5)
    assert rows["gift_face"] == (1, 1, 0.5)
    assert rows["big_transfer"] == (1, 0, 1.0)
    assert rows["bad_device"] == (0, 0, None)


def test_ground_truth_precision_is_unchanged_by_verdicts(summary: Summary) -> None:
    rows = {r.rule: (r.hits, r.attack_hits) for r in summary.rules}
    assert rows["game_sms"] == (2, 1)
    assert rows["gift_face"] == (2, 2)


def test_text_report_shows_the_labelled_columns(summary: Summary) -> None:
    out = io.StringIO()
    render_text(summary, Console(file=out, width=250, color_system=None))
    assert "labelled precision" in out.getvalue()
