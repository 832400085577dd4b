"""`payguard replay` with outcomes: a challenge result that fits its decision is recorded
and filed; one that fits none is refused on its line (exit 2, field named) and the rest
of the file is still decided."""

from pathlib import Path

import msgspec
from support import T0, label, payment, result, settings_for
from typer.testing import CliRunner

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
