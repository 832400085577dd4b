"""OpenAPI request bodies for handlers that read their body raw (Litestar cannot infer them)."""

from dataclasses import dataclass
from typing import Any

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

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

EVENT_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    title="Event (contract v1)",
    description=(
        "One event exactly as docs/events.md defines it. payguard validates it itself, so "
        "errors name the offending field (`card.number`, `ts`, ...). Unknown fields are "
        "rejected; card, ID and phone numbers are tokenized at the edge and never stored."
    ),
    required=["event_id", "type", "ts"],
    properties={
        "event_id": Schema(type=OpenAPIType.STRING, min_length=1, max_length=128),
        "type": Schema(type=OpenAPIType.STRING, description="see docs/events.md"),
        "ts": Schema(
            one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.INTEGER)],
            description="RFC 3339 with offset, or epoch milliseconds",
        ),
    },
    additional_properties=True,
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
