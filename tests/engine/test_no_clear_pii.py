"""After a replay, no card, ID or phone number appears in clear anywhere payguard writes.

The example file carries real-format PANs, resident ID numbers and phone numbers in clear;
the test greps the SQLite database (and its WAL), the snapshot, the decisions and the
command's log output for every one of them, including in rejected events.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "examples" / "events.jsonl"


def _clear_values(events: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for event in events:
        for card in (event.get("card"), (event.get("payee") or {}).get("card")):
            if card and card.get("number"):
                found.add(card["number"].replace(" ", ""))
        for field in ("id_number", "phone"):
            if event.get(field):
                found.add(event[field])
                if field == "phone":
                    found.add(event[field].removeprefix("+86"))
    return found


def test_no_clear_pii_in_database_snapshot_decisions_or_logs(tmp_path: Path) -> None:
    events = [json.loads(line) for line in EVENTS.read_text().splitlines()]
    rejected = dict(events[0], event_id="bad-1", type="payment", amount="-1")
    rejected["card"] = {"number": "4367421234567890123"}  # not UnionPay: Luhn applies
    rejected_file = tmp_path / "events.jsonl"
    rejected_file.write_text(EVENTS.read_text() + json.dumps(rejected) + "\n", encoding="utf-8")
    clear = _clear_values([*events, rejected])
    assert len(clear) > 500, "the example file should exercise many distinct values"

    env = dict(os.environ, PAYGUARD_DATA_DIR=str(tmp_path / "data"))
    env["PAYGUARD_RULESET"] = str(ROOT / "rules" / "default.yaml")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "payguard.cli",
            "replay",
            str(rejected_file),
            "-o",
            str(tmp_path / "decisions.jsonl"),
            "--explain",
        ],
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2, "the rejected event must give exit code 2"
    assert b"bad-1" in result.stderr and b"card.number" in result.stderr

    written = [p for p in (tmp_path / "data").iterdir() if p.is_file()]
    assert any(p.name == "payguard.db" for p in written)
    blobs = {p.name: p.read_bytes() for p in written}
    blobs["decisions"] = (tmp_path / "decisions.jsonl").read_bytes()
    blobs["stdout"] = result.stdout
    blobs["stderr"] = result.stderr
    for name, blob in blobs.items():
        leaks = sorted(v for v in clear if v.encode() in blob)
        assert not leaks, f"{name} holds clear PII: {leaks[:3]}"
    assert b"pan_" in blobs["payguard.db"], "tokens, not numbers, are stored"
