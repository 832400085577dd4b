"""Records restored from a snapshot stay encoded until something touches them.

Decoding a 20,000-customer × 90-day snapshot's entities builds about a million timelines
and took most of a start-up (6.2 of ~10 s of CPU, issue 16: "start-up to the first
decision ≤ 5 s"). So `FeatureState.restore` decodes each entity table only into
`msgspec.Raw` values — one slice of the snapshot per entity, about a quarter of the
cost — and decodes a record when it is first used: before an event is read or filed,
the records it can touch (its own entities, the event a verdict references, the payee's
view; `FeatureState.thaw_for`), a carrier signal's linked accounts, and whatever the
sweep visits, whose first whole round after a restart leaves nothing encoded. A thawed
record replaces its raw slice under the same key, so a table's key order (which the
sweep's slices rely on) never changes. The generated feature code never meets a raw
record and does not check for one: once the state holds none (`FeatureState.cold`
counts them), the engine's per-event path is what it was before. Writing a snapshot
encodes a raw slice back as the bytes it is, so a record nothing touched costs nothing
to write either.

Until the first sweep round is over, the raw slices keep the snapshot's entity blob
alive (they are views into it): about the snapshot's size on top of the thawed
records, the same peak a whole decode had while it ran.
"""

import msgspec

from payguard.features.layout import Record
from payguard.features.timeline import Timeline, decode_array

Cold = msgspec.Raw
"""An entity's record as the snapshot holds it, not decoded yet."""

decode_record = msgspec.msgpack.Decoder(list[Timeline | None], ext_hook=decode_array).decode
"""One entity's record, as `FeatureState.export` packs it inside the entity blob
(state.redis keeps each record in its own field)."""

decode_cold_tables = msgspec.msgpack.Decoder(list[dict[str, msgspec.Raw]]).decode
"""The entity blob of a snapshot, each record left encoded (`FeatureState.thaw` decodes one)."""

_slots = msgspec.msgpack.Decoder(list[msgspec.Raw]).decode


def timelines_in(record: Record | msgspec.Raw) -> int:
    """How many slots of a record hold a timeline, without thawing a cold one."""
    if record.__class__ is Cold:
        return sum(len(slot) > 1 for slot in _slots(record))  # nil, one byte: no timeline
    return len(record) - record.count(None)
