"""Fuzzing the decoder (issue 14): whatever bytes or JSON arrive, `EventDecoder` answers an
`Event` or an `EventError` naming a field and a reason, never another exception. The edges
(HTTP 4xx, CLI exit code 2) rely on that."""

import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payguard.events import (
    Event,
    EventDecoder,
    EventError,
    Tokenizer,
    to_major_units,
    to_minor_units,
)
from payguard.events.contract import EventIn

DECODER = EventDecoder(Tokenizer(b"decoder-fuzz-key-0123456789abcdef"))
FIELDS = sorted(EventIn.__struct_fields__)
TYPES = ["payment", "card_bind", "login", "label", "challenge_result", "sim_swap", "transfer"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
REQUIRED = {
    "event_id": st.text(max_size=5),
    "type": st.sampled_from(TYPES),
    "ts": st.integers(946_684_800_000, 4_102_444_800_000) | json_values,
}
near_events = st.fixed_dictionaries(
    REQUIRED,
    optional={field: json_values for field in FIELDS if field not in REQUIRED}
    | {"amount": st.text(max_size=12) | json_values},
)


def _decode(raw: bytes) -> None:
    try:
        event = DECODER.decode(raw)
    except EventError as exc:
        assert exc.field and isinstance(exc.field, str)
        assert exc.reason and isinstance(exc.reason, str)
        return
    assert isinstance(event, Event)


def _decode_many(raw: bytes) -> None:
    try:
        wires = DECODER.decode_many(raw)
    except EventError as exc:
        assert exc.field and exc.reason
        return
    for wire in wires:
        try:
            DECODER.validate(wire)
        except EventError as exc:
            assert exc.field and exc.reason


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_arbitrary_bytes(raw: bytes) -> None:
    _decode(raw)
    _decode_many(raw)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    raw = json.dumps(value).encode()
    _decode(raw)
    _decode_many(raw)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(near_events, st.binary(max_size=3), st.integers(0, 400))
def test_events_with_wrong_values_and_bad_bytes(
    body: dict[str, Any], junk: bytes, cut: int
) -> None:
    """Events close to valid (real field names and types), whole, spliced with stray bytes
    (bad UTF-8 in a key or a value), and deeply nested."""
    raw = json.dumps(body).encode()
    _decode(raw)
    _decode(raw[:cut] + junk + raw[cut:])
    _decode_many(b"[" + raw + b"]")
    _decode(raw[:-1] + b',"attrs":{"a":' + b"[" * 5_000 + b"]" * 5_000 + b"}}")


@given(st.integers(1, 10**13), st.sampled_from(["CNY", "USD", "JPY", "KWD"]))
def test_major_units_are_what_the_client_sent(minor: int, currency: str) -> None:
    """What the API shows beside a fen amount decodes back to the same fen, exactly."""
    shown = to_major_units(minor, currency)
    assert to_minor_units(Decimal(shown), currency) == minor
    assert shown.count(".") == (0 if currency == "JPY" else 1)
