"""Sending events through the test world's engine, as the HTTP edge does."""

from typing import Any

import msgspec

from payguard.decision import Decision

PAN = "6222021234567890128"
"""A UnionPay test card number (in clear only in requests; stored as its token)."""
OTHER_PAN = "4111111111111111"


def send(world: Any, event_id: str, type_: str, user: str, **fields: Any) -> Decision:
    """Decode (tokenize), decide, record and flush one event; its decision."""
    body: dict[str, Any] = {
        "event_id": event_id,
        "type": type_,
        "ts": world.clock.now,
        "user_id": user,
        **fields,
    }
    event = world.engine.decoder.decode(msgspec.json.encode(body))
    decision, _ = world.engine.process(event, commit=True)
    world.engine.flush()
    return decision


def transfer(world: Any, event_id: str, user: str, yuan: str, **fields: Any) -> Decision:
    fields.setdefault("payee", {"id": f"payee-{event_id}"})
    return send(world, event_id, "transfer", user, amount=yuan, device_id=f"d-{user}", **fields)


def payment(world: Any, event_id: str, user: str, yuan: str, **fields: Any) -> Decision:
    fields.setdefault("merchant", {"id": "m1", "category": "other"})
    return send(world, event_id, "payment", user, amount=yuan, device_id=f"d-{user}", **fields)
