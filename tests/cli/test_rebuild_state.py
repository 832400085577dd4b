"""`payguard rebuild-state`: state lost entirely is rebuilt from the event log alone
(SQLite in the data directory, or Postgres), equal to the state the events built."""

import copy
import os
import subprocess
import sys
from itertools import islice
from pathlib import Path
from typing import Any

import msgspec
import pytest

from payguard.config import Settings
from payguard.engine import SNAPSHOT_FILE, Engine

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "examples" / "events.jsonl"


def _state(engine: Engine) -> list[Any]:
    graph = chains = None
    if engine.graph is not None and engine.chains is not None:
        graph = msgspec.msgpack.decode(engine.graph.export())
        graph["edges"] = sorted(graph["edges"], key=lambda e: (e[0], e[1]))
        chains = msgspec.msgpack.decode(engine.chains.export())
    return copy.deepcopy([engine.features.digest_items(), graph, chains])


def _payguard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "payguard.cli", *args],
        env=env, capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("log", ["sqlite", "postgres"])
def test_state_lost_entirely_is_rebuilt_from_the_log(
    tmp_path: Path, log: str, request: pytest.FixtureRequest
) -> None:
    settings = Settings(data_dir=tmp_path / "data", ruleset=REPO / "rules" / "default.yaml")
    if log == "postgres":
        dsn, schema = request.getfixturevalue("pg_schema")
        settings = msgspec.structs.replace(
            settings, log_dsn=f"{dsn} options='-c search_path={schema}'"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGUARD_")}
    env.update(
        PAYGUARD_DATA_DIR=str(settings.data_dir),
        PAYGUARD_RULESET=str(settings.ruleset),
        PYTHONPATH=str(REPO / "src"),
        **({"PAYGUARD_LOG_DSN": settings.log_dsn} if settings.log_dsn else {}),
    )
    engine = Engine.open(settings)
    with EVENTS.open("rb") as lines:
        for line in islice(lines, 600):
            engine.process(engine.decoder.decode(line))
    engine.flush()
    built = _state(engine)
    engine.close()
    snapshot = settings.data_dir / SNAPSHOT_FILE
    snapshot.unlink()  # the state is lost entirely: only the log is left
    done = _payguard(env, "rebuild-state")
    assert done.returncode == 0, done.stderr
    assert f"{log} event log" in done.stderr
    assert snapshot.exists()
    # the rebuilt snapshot, loaded with nothing left to replay, holds the same state
    again = Engine.open(settings)
    assert _state(again) == built
    again.close()
    # a damaged snapshot is set aside, not trusted
    snapshot.write_bytes(b"not a snapshot")
    assert _payguard(env, "rebuild-state").returncode == 0
    assert (settings.data_dir / (SNAPSHOT_FILE + ".replaced")).read_bytes() == b"not a snapshot"
    again = Engine.open(settings)
    assert _state(again) == built
    again.close()
