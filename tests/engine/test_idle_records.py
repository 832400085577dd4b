"""A server's sweep encodes idle feature records again (features.cold, "Idle records").

- `encode_idle_after`: off by default; `auto` is on (`IDLE_AFTER`) for `serve` and off
  elsewhere; a duration or `off` applies everywhere; a bad value is refused by name at load;
- an engine that encodes idle records decides every event as one that never does (sweep
  rounds run between events), counts the same records, and its snapshot restores the
  very state the other one holds.
"""

from itertools import islice
from pathlib import Path

import msgspec
import pytest

from payguard.config import IDLE_AFTER, load_settings
from payguard.engine import Engine
from payguard.features.spec import parse_duration

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "examples" / "events.jsonl"


def _open(data_dir: Path, idle: str, serving: bool = False) -> Engine:
    env = {
        "PAYGUARD_DATA_DIR": str(data_dir),
        "PAYGUARD_RULESET": str(ROOT / "rules" / "default.yaml"),
        "PAYGUARD_ENCODE_IDLE_AFTER": idle,
    }
    return Engine.open(load_settings(env=env), serving=serving)


def test_off_by_default_and_auto_encodes_idle_records_in_a_server_only() -> None:
    default = load_settings(env={})
    assert default.idle_ms(serving=True) == default.idle_ms(serving=False) == 0
    auto = load_settings(env={"PAYGUARD_ENCODE_IDLE_AFTER": "auto"})
    assert auto.idle_ms(serving=True) == parse_duration(IDLE_AFTER) > 0
    assert auto.idle_ms(serving=False) == 0
    for serving in (True, False):
        assert (
            load_settings(env={"PAYGUARD_ENCODE_IDLE_AFTER": "off"}).idle_ms(serving=serving) == 0
        )
        assert (
            load_settings(env={"PAYGUARD_ENCODE_IDLE_AFTER": "30m"}).idle_ms(serving=serving)
            == 1_800_000
        )
    with pytest.raises(ValueError, match="PAYGUARD_ENCODE_IDLE_AFTER"):
        load_settings(env={"PAYGUARD_ENCODE_IDLE_AFTER": "soon"})


def test_a_server_engine_encodes_idle_records(tmp_path: Path) -> None:
    assert _open(tmp_path / "a", "auto", serving=True).features.idle_ms > 0
    assert _open(tmp_path / "b", "auto").features.idle_ms == 0


def _round(engine: Engine) -> None:
    engine.state.begin_sweep(1)
    while engine.state.sweep_step():
        pass


def test_idle_records_change_no_decision_and_restore_alike(tmp_path: Path) -> None:
    never, idle = _open(tmp_path / "never", "off"), _open(tmp_path / "idle", "1h")
    encoded = 0
    with EVENTS.open("rb") as lines:
        for i, line in enumerate(islice(lines, 3_000)):
            decided = [e.process(e.decoder.decode(line))[0].public(True) for e in (never, idle)]
            decisions = [msgspec.structs.replace(d, latency_us=0) for d in decided]
            assert decisions[0] == decisions[1], i
            if i % 250 == 249:
                _round(never)
                _round(idle)
                encoded = max(encoded, idle.features.cold)
    assert encoded > 0
    assert idle.features.record_count() == never.features.record_count()
    digest = never.features.digest_items()
    idle.close()  # writes the snapshot, idle records as their slices
    never.recorder.close()
    reopened = _open(tmp_path / "idle", "off")
    try:
        assert reopened.recover() == 0
        assert reopened.features.digest_items() == digest
    finally:
        reopened.recorder.close()
