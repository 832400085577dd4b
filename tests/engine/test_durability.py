"""Kill -9 during `payguard replay`, run it again: the result equals a clean run.

The replay is a real subprocess on a real SQLite store with small flush and snapshot
intervals, so the kill lands between commits, between snapshots, or inside either. The
state compared is all of it: feature timelines, the identity graph and the chain matcher
(whose recovery recomputes the values its conditions read, since it decides nothing).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from engine_state import whole_state

from payguard.config import load_settings
from payguard.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "examples" / "events.jsonl"


def _env(data_dir: Path, config: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PAYGUARD_DATA_DIR": str(data_dir),
            "PAYGUARD_CONFIG": str(config),
            "PAYGUARD_RULESET": str(ROOT / "rules" / "default.yaml"),
        }
    )
    return env


def _replay(data_dir: Path, config: Path, output: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "payguard.cli", "replay", str(EVENTS), "-o", str(output)],
        env=_env(data_dir, config),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _decisions(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row.pop("latency_us")
    return rows


def _state(data_dir: Path, config: Path) -> list[Any]:
    settings = load_settings(env=_env(data_dir, config))
    engine = Engine.open(settings)
    try:
        return whole_state(engine)
    finally:
        engine.recorder.close()


def _recorded(data_dir: Path) -> int:
    import sqlite3

    db = data_dir / "payguard.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=0.1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "payguard.toml"
    path.write_text("flush_every = 97\nsnapshot_every = 1013\n")
    return path


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, config: Path) -> tuple[Path, Path]:
    data_dir = tmp_path_factory.mktemp("clean")
    output = data_dir / "decisions.jsonl"
    proc = _replay(data_dir, config, output)
    assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    return data_dir, output


@pytest.mark.parametrize("kill_after", [1, 2_500, 6_000])
def test_kill_during_replay_then_rerun_equals_clean_run(
    tmp_path: Path, config: Path, clean: tuple[Path, Path], kill_after: int
) -> None:
    output = tmp_path / "decisions.jsonl"
    proc = _replay(tmp_path, config, output)
    deadline = time.monotonic() + 120
    while _recorded(tmp_path) < kill_after and proc.poll() is None:
        assert time.monotonic() < deadline, "replay made no progress"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _recorded(tmp_path) < sum(1 for _ in EVENTS.open()), "killed too late to test"

    rerun = _replay(tmp_path, config, output)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read() if rerun.stderr else ""

    clean_dir, clean_output = clean
    assert _decisions(output) == _decisions(clean_output)
    assert _state(tmp_path, config) == _state(clean_dir, config)
    assert _recorded(tmp_path) == _recorded(clean_dir)
