"""Contract v1 outcomes: `challenge_result` and `label` decode, and refuse what they must
(naming the field); the older types are untouched by the new fields."""

from typing import Any, get_args

import msgspec
import pytest

from payguard.events import (
    LABEL_TYPES,
    OUTCOME_TYPES,
    STEP_UP_METHODS,
    EventDecoder,
    EventError,
    Tokenizer,
    is_fraud_verdict,
)
from payguard.events.decode import _OUTCOME_FIELDS
from payguard.types import CHALLENGE_METHODS

DECODER = EventDecoder(Tokenizer(b"outcome-contract-key-0123456789"))
TS = 1_599_182_640_000


def challenge_result(**fields: Any) -> dict[str, Any]:
    body = {
        "event_id": "chr-1",
        "type": "challenge_result",
        "ts": TS,
        "user_id": "u_1",
        "ref_event_id": "pay-1",
        "method": "face",
        "outcome": "passed",
        "device_id": "dfp_1",
    }
    return {**body, **fields}


def label(**fields: Any) -> dict[str, Any]:
    body = {
        "event_id": "lbl-1",
        "type": "label",
        "ts": TS,
        "user_id": "u_1",
        "ref_event_id": "pay-1",
        "label": "fraud",
        "source": "customer",
    }
    return {**body, **fields}


def field_refused(body: dict[str, Any]) -> str:
    with pytest.raises(EventError) as info:
        DECODER.decode(msgspec.json.encode(body))
    return info.value.field


def test_step_up_methods_are_the_rules_challenge_methods() -> None:
    assert set(CHALLENGE_METHODS) == STEP_UP_METHODS


def test_outcome_types_are_event_types_and_labels_include_the_reports() -> None:
    assert {"challenge_result", "label"} == OUTCOME_TYPES
    assert {"fraud_report", "chargeback", "label"} == LABEL_TYPES


@pytest.mark.parametrize("method", sorted(STEP_UP_METHODS))
@pytest.mark.parametrize("outcome", ["passed", "failed", "abandoned"])
def test_challenge_result_decodes(method: str, outcome: str) -> None:
    event = DECODER.decode(msgspec.json.encode(challenge_result(method=method, outcome=outcome)))
    assert (event.method, event.outcome, event.device_id) == (method, outcome, "dfp_1")
    assert event.ref_event_id == "pay-1"


@pytest.mark.parametrize("missing", ["ref_event_id", "method", "outcome", "device_id"])
def test_challenge_result_requires(missing: str) -> None:
    body = challenge_result()
    del body[missing]
    assert field_refused(body) == missing


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"method": "sms"}, "method"),  # an OTP event's method, not a step-up method
        ({"method": "retina"}, "method"),
        ({"outcome": "maybe"}, "outcome"),
        ({"label": "fraud"}, "label"),
        ({"source": "bank"}, "source"),
    ],
)
def test_challenge_result_refuses(fields: dict[str, Any], field: str) -> None:
    assert field_refused(challenge_result(**fields)) == field


def test_label_decodes_with_optional_scenario_and_note() -> None:
    body = label(label="not_fraud", source="analyst", scenario="sim_swap", note="called back")
    event = DECODER.decode(msgspec.json.encode(body))
    assert (event.label, event.source, event.scenario, event.note) == (
        "not_fraud",
        "analyst",
        "sim_swap",
        "called back",
    )


@pytest.mark.parametrize("source", ["customer", "analyst", "chargeback", "bank"])
def test_every_label_source(source: str) -> None:
    assert DECODER.decode(msgspec.json.encode(label(source=source))).source == source


@pytest.mark.parametrize("missing", ["ref_event_id", "label", "source"])
def test_label_requires(missing: str) -> None:
    body = label()
    del body[missing]
    assert field_refused(body) == missing


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"label": "maybe"}, "label"),
        ({"source": "neighbour"}, "source"),
        ({"outcome": "passed"}, "outcome"),
        ({"note": ""}, "note"),
        ({"note": "card 6222021234567890128"}, "note"),
        ({"note": "id 11010519491231002X"}, "note"),
    ],
)
def test_label_refuses(fields: dict[str, Any], field: str) -> None:
    assert field_refused(label(**fields)) == field


@pytest.mark.parametrize("field", [field for field, _ in _OUTCOME_FIELDS])
def test_outcome_fields_refused_on_other_types(field: str) -> None:
    """Every field of the decoder's table, so one added there is refused on a payment
    too, or this fails (the decoder's fast path for other events names them again)."""
    value = {"outcome": "passed", "label": "fraud", "source": "bank"}.get(field, "x")
    body = {"event_id": "p", "type": "payment", "ts": TS, "user_id": "u", "amount": "1"}
    assert field_refused({**body, field: value}) == field


def test_fraud_verdicts() -> None:
    def verdict(body: dict[str, Any]) -> bool:
        return is_fraud_verdict(DECODER.decode(msgspec.json.encode(body)))

    report = {"event_id": "r", "type": "fraud_report", "ts": TS, "user_id": "u"}
    assert verdict({**report, "ref_event_id": "p"})
    assert verdict({**report, "type": "chargeback", "ref_event_id": "p"})
    assert verdict(label(label="fraud"))
    assert not verdict(label(label="not_fraud"))
    assert not verdict(challenge_result())


def test_events_without_outcome_fields_encode_as_before() -> None:
    """New fields are omitted when unset, so a stored event's payload hash is unchanged."""
    body = {"event_id": "p", "type": "payment", "ts": TS, "user_id": "u", "amount": "1"}
    encoded = msgspec.json.decode(msgspec.json.encode(DECODER.decode(msgspec.json.encode(body))))
    assert not {"outcome", "label", "source", "scenario", "note"} & encoded.keys()


def test_method_literal_keeps_its_old_values() -> None:
    from payguard.events.contract import Method

    old = {"sms", "email", "face", "password", "id_card", "security_question", "ukey"}
    assert old <= set(get_args(Method))
