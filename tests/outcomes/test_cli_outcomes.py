"""Outcomes through the CLI: `payguard replay` records and files a challenge result or a
label that fits its decision, refuses one that fits none on its line (exit 2, field
named) and still decides the rest of the file; `payguard decide` does the same for one
event on stdin."""

from pathlib import Path

import msgspec
from support import T0, label, payment, result, settings_for, wire
from typer.testing import CliRunner, Result

from payguard.cli.main import app
from payguard.engine import Engine


def test_replay_files_outcomes_and_refuses_those_that_fit_no_decision(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = settings_for(data)
    lines = [
        payment("p1", T0),  # challenge: face, hardware_token, sms_otp
        result("r-bad", "p1", T0 + 1, "callback", "passed"),  # not offered
        result("r1", "p1", T0 + 2, "face", "passed"),
        label("l-bad", "nowhere", T0 + 3, "fraud"),  # no such event
        payment("p2", T0 + 4),  # the cleared cause: allowed
    ]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(msgspec.json.encode(line) for line in lines) + b"\n")
    env = {"PAYGUARD_DATA_DIR": str(data), "PAYGUARD_RULESET": str(settings.ruleset)}
    out = tmp_path / "decisions.jsonl"
    run = CliRunner().invoke(app, ["replay", str(events), "-o", str(out)], env=env)
    assert run.exit_code == 2, run.output
    assert "line 2: event r-bad: method:" in run.stderr
    assert "line 4: event l-bad: ref_event_id:" in run.stderr
    decided = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    assert [(d["event_id"], d["action"]) for d in decided] == [
        ("p1", "challenge"),
        ("r1", "allow"),
        ("p2", "allow"),
    ]
    engine = Engine.open(settings)
    try:
        assert engine.outcomes.book.state("p1") == "challenge:passed"
        assert engine.recorder.lookup("r-bad") is None
    finally:
        engine.close()


def test_replay_files_a_label_that_resolves_a_review(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = settings_for(data)
    lines = [
        wire("t1", "transfer", T0, amount="2000.00"),  # review
        label("l1", "t1", T0 + 1, "fraud"),
    ]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(msgspec.json.encode(line) for line in lines) + b"\n")
    env = {"PAYGUARD_DATA_DIR": str(data), "PAYGUARD_RULESET": str(settings.ruleset)}
    run = CliRunner().invoke(app, ["replay", str(events), "-o", str(tmp_path / "d.jsonl")], env=env)
    assert run.exit_code == 0, run.output
    engine = Engine.open(settings)
    try:
        assert engine.outcomes.book.state("t1") == "review:resolved:fraud"
        assert [h.label for h in engine.outcomes.history("t1")] == ["fraud"]
    finally:
        engine.close()


def test_decide_takes_outcomes_and_refuses_those_that_fit_no_decision(tmp_path: Path) -> None:
    """`payguard decide` (one event on stdin): a challenge result and a label are recorded
    and filed; an outcome that fits no decision exits 2 naming the field, recording nothing."""
    data = tmp_path / "data"
    settings = settings_for(data)
    env = {"PAYGUARD_DATA_DIR": str(data), "PAYGUARD_RULESET": str(settings.ruleset)}

    def decide(body: dict[str, object]) -> Result:
        return CliRunner().invoke(app, ["decide"], input=msgspec.json.encode(body), env=env)

    assert msgspec.json.decode(decide(payment("p1", T0)).stdout)["action"] == "challenge"
    assert decide(wire("t1", "transfer", T0 + 1, amount="2000.00")).exit_code == 0
    refused = [
        (result("r-bad", "p1", T0 + 2, "callback", "passed"), "method"),
        (result("r-who", "p1", T0 + 2, "face", "passed", user_id="mallory"), "user_id"),
        (result("r-rev", "t1", T0 + 2, "face", "passed"), "ref_event_id"),
        (label("l-bad", "nowhere", T0 + 2, "fraud"), "ref_event_id"),
    ]
    for body, field in refused:
        run = decide(body)
        assert run.exit_code == 2, run.output
        assert f"event {body['event_id']}: {field}:" in run.stderr
    assert decide(result("r1", "p1", T0 + 3, "face", "passed")).exit_code == 0
    assert decide(label("l1", "t1", T0 + 4, "not_fraud")).exit_code == 0
    engine = Engine.open(settings)
    try:
        assert engine.outcomes.book.state("p1") == "challenge:passed"
        assert engine.outcomes.book.state("t1") == "review:resolved:not_fraud"
        assert all(engine.recorder.lookup(str(b["event_id"])) is None for b, _ in refused)
    finally:
        engine.close()
