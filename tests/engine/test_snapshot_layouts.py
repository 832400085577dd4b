"""State snapshots round-trip; anything else at the snapshot path is refused, not run.

The snapshot is checksummed MessagePack (payguard.snapshots). A restart must accept an
intact one without replaying the log and end with exactly the state a clean run has; a
snapshot of another format, or a pickle (what snapshots used to be), is ignored with a
warning and the whole log replayed, which rebuilds every state. Bit flips and cut tails
are in tests/durability/test_snapshot_corruption.py.
"""

import logging
import os
import pickle
from itertools import islice
from pathlib import Path
from typing import Any

import msgspec
import pytest

from payguard.config import load_settings
from payguard.engine import SNAPSHOT_FILE, Engine
from payguard.snapshots import decode_snapshot, encode_snapshot

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "examples" / "events.jsonl"


def _open(data_dir: Path) -> Engine:
    return Engine.open(
        load_settings(
            env={
                "PAYGUARD_DATA_DIR": str(data_dir),
                "PAYGUARD_RULESET": str(ROOT / "rules" / "default.yaml"),
            }
        )
    )


@pytest.fixture
def replayed(tmp_path: Path) -> tuple[Path, list[Any]]:
    """A store with 3,000 example events and a snapshot of them; the state's digest."""
    engine = _open(tmp_path)
    with EVENTS.open("rb") as lines:
        for line in islice(lines, 3_000):
            engine.process(engine.decoder.decode(line))
    engine.close()
    return tmp_path, engine.features.digest_items()


def test_snapshot_round_trips(replayed: tuple[Path, list[Any]]) -> None:
    data_dir, digest = replayed
    engine = _open(data_dir)
    try:
        assert engine.recover() == 0  # nothing left to replay after the snapshot
        assert engine.features.digest_items() == digest
    finally:
        engine.recorder.close()


class _Exploit:
    """Unpickling this runs a shell command: what a crafted snapshot used to achieve."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_at_the_snapshot_path_is_refused_and_never_run(
    replayed: tuple[Path, list[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    data_dir, digest = replayed
    marker = data_dir / "pwned"
    (data_dir / SNAPSHOT_FILE).write_bytes(pickle.dumps({"state": _Exploit(marker)}))
    with caplog.at_level(logging.WARNING, logger="payguard"):
        reopened = _open(data_dir)
    try:
        assert not marker.exists(), "the pickle ran"
        assert "not a payguard snapshot" in caplog.text
        assert reopened.features.digest_items() == digest  # rebuilt from the log
    finally:
        reopened.recorder.close()


def test_snapshot_of_an_earlier_format_is_ignored(replayed: tuple[Path, list[Any]]) -> None:
    """An intact file of another format (here: format 2, which had no checksummed
    envelope) is ignored and the whole log replayed, which rebuilds every state."""
    data_dir, digest = replayed
    header, body = decode_snapshot((data_dir / SNAPSHOT_FILE).read_bytes())
    older = msgspec.structs.replace(header, format=2)
    (data_dir / SNAPSHOT_FILE).write_bytes(encode_snapshot(older, body))
    reopened = _open(data_dir)
    try:
        assert reopened.recorder.last_seq() == 3_000
        assert reopened.features.digest_items() == digest
        assert reopened.features.watch.registered  # rebuilt from the log
    finally:
        reopened.recorder.close()
