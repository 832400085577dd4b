"""OpenAPI request bodies for handlers that read their body raw (Litestar cannot infer them)."""

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from payguard.events import EventIn

EXAMPLE_EVENT: dict[str, Any] = {
    "event_id": "evt-20200904-0007",
    "type": "payment",
    "ts": "2020-09-04T09:41:27+08:00",
    "user_id": "u_10086",
    "device_id": "dfp_e93b5d10",
    "ip": "117.136.12.79",
    "amount": "4999.00",
    "currency": "CNY",
    "card": {"number": "6222 0212 3456 7890 128", "bank": "ICBC", "kind": "debit"},
    "merchant": {"id": "m_88231", "category": "gift_card"},
    "channel": "app",
}

_SCHEMA_FIELDS: Final = {field.name for field in dataclasses.fields(Schema)}
_JSON_SCHEMA_NAMES: Final = {"anyOf": "any_of", "additionalProperties": "additional_properties"}


def schema_of(wire_type: Any, **overrides: Any) -> Schema:
    """The OpenAPI schema of a msgspec wire type, derived from the type the decoder uses,
    so the document cannot drift from the contract: every field, its enum, its limits, and
    `additionalProperties: false` where the decoder forbids unknown fields. References are
    inlined (the wire types are small and not recursive)."""
    document = msgspec.json.schema(wire_type)
    definitions: dict[str, Any] = document.get("$defs", {})
    return dataclasses.replace(_to_schema(document, definitions), **overrides)


def _to_schema(node: dict[str, Any], definitions: dict[str, Any]) -> Schema:
    if "$ref" in node:
        return _to_schema(definitions[node["$ref"].rsplit("/", 1)[1]], definitions)
    fields: dict[str, Any] = {}
    for key, value in node.items():
        name = _JSON_SCHEMA_NAMES.get(key) or re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
        if name not in _SCHEMA_FIELDS:
            continue
        if name == "properties":
            value = {prop: _to_schema(item, definitions) for prop, item in value.items()}
        elif name in {"any_of", "one_of"}:
            value = [_to_schema(item, definitions) for item in value]
        elif name == "items" and isinstance(value, dict):
            value = _to_schema(value, definitions)
        elif name == "type":
            value = OpenAPIType(value)
        fields[name] = value
    return Schema(**fields)


EVENT_SCHEMA = schema_of(
    EventIn,
    title="Event (contract v1)",
    description=(
        "One event exactly as docs/events.md defines it. payguard validates it itself, so "
        "errors name the offending field (`card.number`, `ts`, ...). Unknown fields are "
        "rejected; card, ID and phone numbers are tokenized at the edge and never stored. "
        "`ts`: RFC 3339 with an offset, or epoch milliseconds. `amount`: decimal major "
        'units as a string ("4999.00"). Conditional rules (the fields each type requires) '
        "are in docs/events.md."
    ),
)


def _json_body(schema: Schema, example: Any, description: str) -> RequestBody:
    return RequestBody(
        content={"application/json": OpenAPIMediaType(schema=schema, example=example)},
        description=description,
        required=True,
    )


@dataclass
class EventOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _json_body(EVENT_SCHEMA, EXAMPLE_EVENT, "One contract-v1 event.")


@dataclass
class BatchOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _json_body(
            Schema(type=OpenAPIType.ARRAY, items=EVENT_SCHEMA, max_items=10_000),
            [EXAMPLE_EVENT],
            "A JSON array of contract-v1 events, decided in order, all or nothing.",
        )


@dataclass
class RulesetOperation(Operation):
    def __post_init__(self) -> None:
        text = Schema(type=OpenAPIType.STRING, description="ruleset YAML (rules/default.yaml)")
        self.request_body = RequestBody(
            content={
                media: OpenAPIMediaType(schema=text)
                for media in ("text/yaml", "application/yaml", "text/plain")
            },
            description="The complete ruleset as YAML text.",
            required=True,
        )
