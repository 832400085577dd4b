"""`payguard replay` ends its process without the interpreter's teardown (cli.main
`_Teardown`): what it printed and recorded must all be there, and its exit code kept."""

import os
import subprocess
import sys
from itertools import islice
from pathlib import Path

import msgspec

from payguard.config import Settings
from payguard.engine import Engine

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "examples" / "events.jsonl"


def _replay(tmp_path: Path, events: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGUARD_")}
    env.update(
        PAYGUARD_DATA_DIR=str(tmp_path / "data"),
        PAYGUARD_RULESET=str(REPO / "rules" / "default.yaml"),
        PYTHONPATH=str(REPO / "src"),
    )
    out = str(tmp_path / "out.jsonl")
    return subprocess.run(
        [sys.executable, "-m", "payguard.cli", "replay", str(events), "-o", out],
        env=env, capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip


def _first(tmp_path: Path, count: int, bad_line: bytes | None = None) -> Path:
    path = tmp_path / "events.jsonl"
    with EVENTS.open("rb") as lines:
        head = list(islice(lines, count))
    if bad_line is not None:
        head.insert(count // 2, bad_line)
    path.write_bytes(b"".join(head))
    return path


def test_a_replay_prints_its_summary_and_records_every_event(tmp_path: Path) -> None:
    done = _replay(tmp_path, _first(tmp_path, 300))
    assert done.returncode == 0, done.stderr
    assert "300 decisions" in done.stdout  # stdout is a pipe here: flushed before the exit
    decided = (tmp_path / "out.jsonl").read_bytes().splitlines()
    assert len(decided) == 300
    settings = Settings(data_dir=tmp_path / "data", ruleset=REPO / "rules" / "default.yaml")
    engine = Engine.open(settings)  # the data directory's lock went with the process
    try:
        assert engine.recorder.last_seq() == 300
        first = msgspec.json.decode(decided[0])
        assert engine.stored_decision(first["event_id"]) is not None
    finally:
        engine.close()


def test_a_replay_with_a_rejected_line_still_exits_2_naming_it(tmp_path: Path) -> None:
    done = _replay(tmp_path, _first(tmp_path, 100, b'{"event_id": "bad", "type": "payment"}\n'))
    assert done.returncode == 2
    assert "line 51" in done.stderr and "event bad" in done.stderr
    assert "100 decisions" in done.stdout
    assert len((tmp_path / "out.jsonl").read_bytes().splitlines()) == 100
