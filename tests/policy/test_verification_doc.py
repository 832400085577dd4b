"""Every seed case in docs/verification.md, run through a fresh engine with the default
ruleset and catalog, decides exactly as the page says (minus latency and ruleset version)."""

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from payguard.config import Settings
from payguard.engine import Engine

DOC = Path(__file__).resolve().parents[2] / "docs" / "verification.md"
_BLOCK = re.compile(
    r"^```(?P<kind>jsonl seed-events|json seed-decision) (?P<name>\w+)\n(?P<body>.*?)^```$",
    re.S | re.M,
)


def _cases() -> dict[str, dict[str, Any]]:
    cases: dict[str, dict[str, Any]] = {}
    for match in _BLOCK.finditer(DOC.read_text(encoding="utf-8")):
        case = cases.setdefault(match["name"], {})
        body = match["body"]
        if match["kind"].startswith("jsonl"):
            case["events"] = [line for line in body.splitlines() if line.strip()]
        else:
            case["decision"] = msgspec.json.decode(body)
    return cases


CASES = _cases()


def test_the_page_has_the_seed_cases() -> None:
    assert set(CASES) >= {"phone_theft", "otp_channel", "stuffing", "fake_cs", "merchant"}
    assert all({"events", "decision"} <= set(case) for case in CASES.values())
    actions = {case["decision"]["action"] for case in CASES.values()}
    assert {"challenge", "review", "hold"} <= actions


@pytest.mark.parametrize("name", sorted(CASES))
def test_seed_case_decides_as_documented(name: str, tmp_path: Path) -> None:
    engine = Engine.open(Settings(data_dir=tmp_path))
    decision = None
    for line in CASES[name]["events"]:
        decision, _ = engine.process(engine.decoder.decode(line.encode()))
    engine.close()
    assert decision is not None
    got = msgspec.to_builtins(decision.public())
    got.pop("latency_us")
    got.pop("ruleset")
    assert got == CASES[name]["decision"]
