"""Every example in docs/events.md decodes (or fails on the field it says)."""

import re
import sys
from pathlib import Path

import msgspec
import pytest

from payguard.events import CARRIER_TYPES, EventDecoder, EventError, Tokenizer

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from docs_examples import load_examples  # noqa: E402

DOC = TESTS.parent / "docs" / "events.md"
DECODER = EventDecoder(Tokenizer(b"docs-examples-key-0123456789"))
VALID = load_examples(DOC, "event")
INVALID = load_examples(DOC, "invalid-event")

GROUPS = {
    "account": {"register", "login", "logout", "password_reset", "phone_change"}
    | {"profile_change", "kyc_verify"},
    "carrier": set(CARRIER_TYPES),
    "instruments": {"card_bind", "card_unbind"},
    "verification": {"otp_send", "otp_verify"},
    "money": {"payment", "transfer", "withdrawal", "loan_apply", "loan_disburse"}
    | {"investment_buy", "investment_redeem", "refund"},
    "feedback": {"fraud_report", "chargeback", "label"},
    "outcomes": {"challenge_result"},
}


def _id(example: tuple[bytes, str | None]) -> str:
    return example[0].decode()[:60]


@pytest.mark.parametrize("example", VALID, ids=_id)
def test_valid_example_decodes(example: tuple[bytes, str | None]) -> None:
    raw, _ = example
    event = DECODER.decode(raw)
    # one complete object per block, and the example's own event_id survives
    assert event.event_id == msgspec.json.decode(raw)["event_id"]


@pytest.mark.parametrize("example", INVALID, ids=_id)
def test_invalid_example_names_its_field(example: tuple[bytes, str | None]) -> None:
    raw, field = example
    with pytest.raises(EventError) as info:
        DECODER.decode(raw)
    assert info.value.field == field


def test_examples_cover_every_type_group_and_the_seed_cases() -> None:
    types = {DECODER.decode(raw).type for raw, _ in VALID}
    for group, members in GROUPS.items():
        assert types & members, f"no example for {group}"
    seeds = {"sim_swap", "card_bind", "otp_send", "otp_verify", "payment", "transfer"}
    assert seeds | {"fraud_report"} <= types
    events = [DECODER.decode(raw) for raw, _ in VALID]
    assert any(e.type == "payment" and e.card is not None for e in events)
    assert any(e.type == "transfer" and e.payee is not None for e in events)


def test_example_event_ids_are_unique() -> None:
    ids = []
    for raw, _ in VALID + INVALID:
        match = re.search(rb'"event_id": "([^"]+)"', raw)
        assert match, raw
        ids.append(match.group(1))
    assert len(ids) == len(set(ids))


def test_there_are_examples() -> None:
    assert len(VALID) >= 10
    assert len(INVALID) >= 10


def test_load_examples_format(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "text\n"
        "```json event\n"
        '{"a": 1}\n'
        "```\n"
        "```json\n"
        '{"ignored": true}\n'
        "```\n"
        "```json invalid-event\n"
        "{\n"
        '  "b": 2\n'
        "}\n"
        "```\n"
        "<!-- field: card.number -->\n",
        encoding="utf-8",
    )
    assert load_examples(doc, "event") == [(b'{"a": 1}', None)]
    assert load_examples(doc, "invalid-event") == [(b'{\n  "b": 2\n}', "card.number")]


def test_load_examples_requires_field_comment(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("```json invalid-event\n{}\n```\n\n<!-- field: x -->\n", encoding="utf-8")
    with pytest.raises(ValueError):
        load_examples(doc, "invalid-event")
