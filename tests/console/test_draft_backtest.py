"""The console's draft backtest against a brute-force count over the same recorded events.

A drafted rule that reads only the event (`amount >= X` on money out) hits exactly
the window's payments, transfers and withdrawals at or above X, whatever state the replay
starts from; money stopped is their amount where a label in the log calls them fraud (the
draft's action, review, stops money), and the rest is legitimate friction. Overlap cannot
exceed the hits.
"""

import sys
from pathlib import Path

import msgspec
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from world import history

from payguard.config import load_settings
from payguard.console.draft import DAY_MS, backtest_draft, changed_rules
from payguard.engine import Engine
from payguard.events import LABEL_TYPES, Event
from payguard.store import LogFilter
from payguard.types import LEAVING_TYPES

REPO = Path(__file__).resolve().parents[2]
TYPES = ("payment", "transfer", "withdrawal")
RULE = """  - id: drafted_big_transfer
    events: [payment, transfer, withdrawal]
    when: amount >= {threshold}
    action: review
    score: 40
    reason: A big transfer.
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("draft")
    history(root / "events.jsonl", root / "labels.jsonl", users=200, days=4, seed=11)
    settings = msgspec.structs.replace(
        load_settings(env={"PAYGUARD_DATA_DIR": str(root / "data")}),
        ruleset=REPO / "rules" / "default.yaml",
    )
    live = Engine.open(settings)
    for line in (root / "events.jsonl").read_bytes().splitlines():
        live.process(live.decoder.decode(line))
    live.flush()
    yield live
    live.close()


def _window(engine: Engine, days: int) -> list[Event]:
    newest = next(engine.recorder.newest(None, LogFilter()))[1].ts
    return [
        e for _, e, _ in engine.recorder.newest(None, LogFilter(since_ms=newest - days * DAY_MS))
    ]


def _verdicts(events: list[Event]) -> dict[str, str]:
    """The latest verdict a label, fraud report or chargeback gave each event, in log order."""
    found: dict[str, str] = {}
    for event in sorted(events, key=lambda e: e.ts):
        if event.type in LABEL_TYPES and event.ref_event_id is not None:
            found[event.ref_event_id] = event.label if event.type == "label" else "fraud"
    return found


@pytest.mark.parametrize(("threshold", "days"), [(20_000, 2), (100_000, 3), (50_000, 4)])
def test_draft_figures_match_a_brute_force_count(engine: Engine, threshold: int, days: int) -> None:
    live = engine.ruleset.source
    head, marker, tail = live.partition("\nrules:\n")
    draft = engine.parse_ruleset(head + marker + RULE.format(threshold=threshold) + tail)
    assert changed_rules(draft, engine.ruleset) == ["drafted_big_transfer"]

    figures = backtest_draft(engine, draft, days)

    window = _window(engine, days)
    verdicts = _verdicts(window)
    hits = [e for e in window if e.type in TYPES and (e.amount or 0) >= threshold]
    fraud = [e for e in hits if verdicts.get(e.event_id) == "fraud"]
    assert hits, "the simulated window has big payments"
    assert figures.events == len(window)
    assert figures.hits == len(hits) == figures.per_rule["drafted_big_transfer"]
    assert figures.money_stopped_fen == sum(
        e.amount or 0 for e in fraud if e.type in LEAVING_TYPES and e.currency == "CNY"
    )
    assert figures.legit_friction == len(hits) - len(fraud)
    assert 0 <= figures.overlap <= figures.hits


def test_an_unchanged_draft_changes_nothing(engine: Engine) -> None:
    same = engine.parse_ruleset(engine.ruleset.source)
    figures = backtest_draft(engine, same, 2)
    assert figures.changed_rules == [] and figures.hits == 0
