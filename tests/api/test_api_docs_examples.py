"""Every event example in docs/events.md, sent over HTTP: valid → 200, invalid → 4xx + field."""

import sys

import httpx
import pytest
from apiserver import REPO

DOC = REPO / "docs" / "events.md"
TESTS = REPO / "tests"

if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from docs_examples import load_examples  # noqa: E402

VALID = load_examples(DOC, "event")
INVALID = load_examples(DOC, "invalid-event")


def _id(example: tuple[bytes, str | None]) -> str:
    return example[0].decode()[:50]


def test_there_are_docs_examples() -> None:
    assert VALID and INVALID


@pytest.mark.parametrize("example", VALID, ids=_id)
def test_valid_docs_example_is_decided(
    client: httpx.Client, example: tuple[bytes, str | None]
) -> None:
    raw, _ = example
    r = client.post("/v1/events", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["action"] in {"allow", "challenge", "hold", "review", "block"}


@pytest.mark.parametrize("example", INVALID, ids=_id)
def test_invalid_docs_example_is_rejected(
    client: httpx.Client, example: tuple[bytes, str | None]
) -> None:
    raw, field = example
    r = client.post("/v1/events", content=raw, headers={"content-type": "application/json"})
    assert r.status_code in (400, 413, 422), r.text
    body = r.json()
    if r.status_code != 413:
        assert body["error"] == "invalid_event"
        assert body["field"] == field
