"""The engine on the Postgres event log (`PAYGUARD_LOG_DSN`): it decides as on SQLite,
a restart recovers its state from the Postgres log, and a repeated event is answered
with the recorded decision."""

from itertools import islice
from pathlib import Path

from payguard.config import Settings
from payguard.engine import SNAPSHOT_FILE, Engine
from payguard.events import Event

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "examples" / "events.jsonl"


def _decide_all(engine: Engine, events: list[Event]) -> list[tuple[str, int, list[str]]]:
    out = []
    for event in events:
        decision, _ = engine.process(event)
        out.append((decision.action, decision.score, [r.code for r in decision.reasons]))
    engine.flush()
    return out


def test_engine_on_postgres_log_decides_and_recovers_like_sqlite(
    tmp_path: Path, pg_schema: tuple[str, str]
) -> None:
    dsn, schema = pg_schema
    lines = EVENTS.read_bytes().splitlines()
    on_pg = Settings(data_dir=tmp_path / "pg", log_dsn=f"{dsn} options='-c search_path={schema}'")
    on_sqlite = Settings(data_dir=tmp_path / "sqlite")
    pg, lite = Engine.open(on_pg), Engine.open(on_sqlite)
    events = [pg.decoder.decode(line) for line in islice(lines, 300)]
    assert _decide_all(pg, events[:200]) == _decide_all(lite, events[:200])
    pg.close()
    lite.close()
    # restart without snapshots: the state is replayed from each log, so the next events
    # decide alike again
    for settings in (on_pg, on_sqlite):
        (settings.data_dir / SNAPSHOT_FILE).unlink()
    pg, lite = Engine.open(on_pg), Engine.open(on_sqlite)
    assert pg.recorder.last_seq() > 0
    assert _decide_all(pg, events[200:]) == _decide_all(lite, events[200:])
    repeat, was_repeat = pg.process(events[0])
    assert was_repeat and repeat.action == lite.process(events[0])[0].action
    pg.close()
    lite.close()
