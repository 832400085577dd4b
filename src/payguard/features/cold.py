"""Records restored from a snapshot stay encoded until something touches them.

Decoding a 20,000-customer × 90-day snapshot's entities builds about a million timelines
and took most of a start-up (6.2 of ~10 s of CPU, issue 16: "start-up to the first
decision ≤ 5 s"). So `FeatureState.restore` decodes each entity table only into
`msgspec.Raw` values — one slice of the snapshot per entity, about a quarter of the
cost — and every place that reads a record thaws it on first use (`thaw`): the
generated update and snapshot code, the carrier-signal filing, the clearings and the
sweep, whose first round after a restart thaws whatever no event touched. A thawed
record replaces its raw slice under the same key, so a table's key order (which the
sweep's slices rely on) never changes. Writing a snapshot encodes a raw slice back as the
bytes it is, so a record nothing touched costs nothing to write either.

Until the first sweep round is over, the raw slices keep the snapshot's entity blob
alive (they are views into it): about the snapshot's size on top of the thawed
records, the same peak a whole decode had while it ran.
"""

from typing import Any

import msgspec

from payguard.features.layout import Record
from payguard.features.timeline import Timeline, decode_array

Cold = msgspec.Raw
"""An entity's record as the snapshot holds it, not decoded yet."""

decode_record = msgspec.msgpack.Decoder(list[Timeline | None], ext_hook=decode_array).decode
"""One entity's record, as `FeatureState.export` packs it inside the entity blob
(state.redis keeps each record in its own field)."""

decode_cold_tables = msgspec.msgpack.Decoder(list[dict[str, msgspec.Raw]]).decode
"""The entity blob of a snapshot, each record left encoded (`thaw` decodes one)."""

_slots = msgspec.msgpack.Decoder(list[msgspec.Raw]).decode


def thaw(records: dict[str, Any], key: str, cold: msgspec.Raw) -> Record:
    """Decode the record `cold` of `key` and put it in its place (same key: the table's
    order stays)."""
    record = records[key] = decode_record(cold)
    return record


def thawed(records: dict[str, Any], key: str) -> Record | None:
    """The record of `key`, decoded if it was still cold; None if there is none."""
    record = records.get(key)
    if record.__class__ is Cold:
        return thaw(records, key, record)
    return record


def timelines_in(record: Record | msgspec.Raw) -> int:
    """How many slots of a record hold a timeline, without thawing a cold one."""
    if record.__class__ is Cold:
        return sum(len(slot) > 1 for slot in _slots(record))  # nil, one byte: no timeline
    return len(record) - record.count(None)
