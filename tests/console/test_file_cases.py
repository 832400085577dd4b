"""`payguard file-cases`: a log replayed without a server gets the cases a server would
have opened — one open review case per account with a review decision — and a second
run files nothing new."""

import sys
from pathlib import Path

import msgspec
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from world import history

from payguard.cases import CaseQuery, SqlCaseStore
from payguard.cli.main import app

runner = CliRunner()


def test_replayed_reviews_become_cases_once(tmp_path: Path) -> None:
    history(tmp_path / "events.jsonl", tmp_path / "labels.jsonl", users=150, days=3, seed=21)
    env = {"PAYGUARD_DATA_DIR": str(tmp_path / "data")}
    replay = ["replay", str(tmp_path / "events.jsonl"), "-o", str(tmp_path / "decisions.jsonl")]
    assert runner.invoke(app, replay, env=env).exit_code == 0
    events = {
        e["event_id"]: e
        for e in map(msgspec.json.decode, (tmp_path / "events.jsonl").read_bytes().splitlines())
    }
    reviewed = {
        events[d["event_id"]]["user_id"]
        for d in map(msgspec.json.decode, (tmp_path / "decisions.jsonl").read_bytes().splitlines())
        if d.get("action") == "review" and events[d["event_id"]].get("user_id")
    }
    assert reviewed, "the simulated phone thefts were reviewed"

    for _ in range(2):
        done = runner.invoke(app, ["file-cases"], env=env)
        assert done.exit_code == 0, done.output
        store = SqlCaseStore.sqlite(tmp_path / "data" / "cases.db")
        page = store.find(CaseQuery(queue="review", limit=500))
        store.close()
        assert {c.entity_id for c in page.cases} == reviewed
        assert all(c.status == "open" and c.entity_kind == "account" for c in page.cases)
