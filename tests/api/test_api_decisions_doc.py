"""docs/decisions.md: every ```json decision block is a real answer, still given today.

Each ```json request block (one event, or an array sent one by one) is POSTed in order to a
fresh server; at each ```json decision block the answer to the last request (with
`?explain=1` when the documented decision has `features`) must have the same keys and the
same action, and the block itself must decode as a `Decision`. Reason codes, scores and
feature names follow the ruleset, which changes more often than the contract: after a
ruleset change, refresh the blocks with real answers by running

    .venv/bin/python tests/api/test_api_decisions_doc.py --regenerate
"""

from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from apiserver import REPO

from payguard.decision import Decision

DOC = REPO / "docs" / "decisions.md"


def _blocks(path: Path) -> list[tuple[str, bytes, int]]:
    """(tag, body, line) for every ```json request / ```json decision block, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[tuple[str, bytes, int]] = []
    i = 0
    while i < len(lines):
        opener = lines[i].rstrip()
        if opener in ("```json request", "```json decision"):
            end = lines.index("```", i + 1)
            found.append((opener.split()[1], "\n".join(lines[i + 1 : end]).encode(), i + 1))
            i = end
        i += 1
    return found


BLOCKS = _blocks(DOC)
DECISIONS = [(body, line) for tag, body, line in BLOCKS if tag == "decision"]


def test_doc_has_examples_of_every_action() -> None:
    actions = {msgspec.json.decode(body, type=Decision).action for body, _ in DECISIONS}
    assert actions == {"allow", "challenge", "review", "block"}
    assert BLOCKS[0][0] == "request"


@pytest.mark.parametrize("block", DECISIONS, ids=lambda b: f"line{b[1]}")
def test_documented_decision_is_a_decision(block: tuple[bytes, int]) -> None:
    body, _ = block
    decision = msgspec.json.decode(body, type=Decision)
    # what was written is exactly what the struct would encode (no extra or misspelt keys)
    assert msgspec.json.decode(msgspec.json.encode(decision)) == msgspec.json.decode(body)


def _same_shape(documented: dict[str, Any], served: dict[str, Any]) -> None:
    assert set(served) == set(documented)
    assert served["action"] == documented["action"]
    for reason in served["reasons"]:
        assert set(reason) - {"chains"} == {"code", "rule", "text"}
    documented_chains = [r["chains"] for r in documented["reasons"] if "chains" in r]
    assert documented_chains == [r["chains"] for r in served["reasons"] if "chains" in r]
    if "shadow" in documented:
        documented_shadow = {hit["rule"] for hit in documented["shadow"]}
        assert documented_shadow <= {hit["rule"] for hit in served["shadow"]}


def _replay(client: httpx.Client) -> list[tuple[int, dict[str, Any], httpx.Response]]:
    """(line, documented decision, served answer) for every decision block, in order."""
    pending: list[Any] = []
    results = []
    for tag, body, line in BLOCKS:
        value = msgspec.json.decode(body)
        if tag == "request":
            pending.extend(value if isinstance(value, list) else [value])
            continue
        assert pending, f"decision at line {line} has no request before it"
        explain = "features" in value
        answer = None
        for i, event in enumerate(pending):
            last = i == len(pending) - 1
            params = {"explain": "1"} if last and explain else None
            answer = client.post("/v1/events", json=event, params=params)
            assert answer.status_code == 200, f"line {line}: {answer.text}"
        assert answer is not None
        results.append((line, value, answer))
        pending = []
    return results


def test_documented_decisions_match_the_server(client: httpx.Client) -> None:
    results = _replay(client)
    for line, documented, answer in results:
        assert answer.json()["event_id"] == documented["event_id"], line
        _same_shape(documented, answer.json())
    assert len(results) == len(DECISIONS) >= 5


def regenerate() -> None:
    """Rewrite every ```json decision block with the answer a fresh server gives now."""
    import json
    import tempfile

    from apiserver import Server

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp)).start()
        try:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                results = _replay(client)
        finally:
            server.stop()
    lines = DOC.read_text(encoding="utf-8").splitlines()
    for line, _, answer in reversed(results):  # from the end: earlier line numbers stay valid
        end = lines.index("```", line)
        served = json.dumps(answer.json(), ensure_ascii=False, indent=2).splitlines()
        lines[line:end] = served
    DOC.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"rewrote {len(results)} decision blocks in {DOC}")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: test_api_decisions_doc.py --regenerate")
    regenerate()
