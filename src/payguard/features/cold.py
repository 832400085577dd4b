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

**Idle records** (issue 16: "state ≤ 8 KB per account"). With `FeatureState.idle_ms` set
(the `encode_idle_after` setting, on in `serve`), the sweep also encodes again a record
whose newest entry is that much older than the round's base, and counts it into `cold`:
most accounts act about once a day, and an encoded record is a fraction of the memory of
its timelines. Such a record is a `bytes` (`Idle`), not a `msgspec.Raw`: eight bytes of
the event time from which the sweep would change it (`due_of`: its oldest raw entry
reaching the fold horizon, a folded value leaving the longest window, its last time
leaving the `memory`), then its encoding compressed with zlib at level 1. The sweep
passes over an idle record until its due time (one dictionary look-up, no decode), so a
round costs what the records in use cost; `export` writes it as the record's encoding
(`snapshot_slice`), which a restore reads as any other slice.
"""

import zlib
from typing import Any

import msgspec

from payguard.features.layout import Record
from payguard.features.timeline import Timeline, decode_array, encode_array

Cold = msgspec.Raw
"""An entity's record as the snapshot holds it, not decoded yet."""

decode_record = msgspec.msgpack.Decoder(list[Timeline | None], ext_hook=decode_array).decode
"""One entity's record, as `FeatureState.export` packs it inside the entity blob
(state.redis keeps each record in its own field)."""

decode_cold_tables = msgspec.msgpack.Decoder(list[dict[str, msgspec.Raw]]).decode
"""The entity blob of a snapshot, each record left encoded (`FeatureState.thaw` decodes one)."""

_slots = msgspec.msgpack.Decoder(list[msgspec.Raw]).decode

encode_record = msgspec.msgpack.Encoder(enc_hook=encode_array).encode
"""One record, as the bytes of its slice in `FeatureState.export`'s entity blob."""

Idle = bytes
"""A record the sweep encoded again because nothing used it for `idle_ms` (module doc):
its due time (8 bytes, big-endian) then its zlib-compressed encoding."""

COLD = (Cold, Idle)
"""The classes of an encoded record (`record.__class__ in COLD`)."""

DUE_BYTES = 8


def pack_idle(record: Record, due: int) -> Idle:
    """An idle record's encoding: its due time, then its record compressed (zlib level 1:
    about a third of the bytes at a few µs a record)."""
    return due.to_bytes(DUE_BYTES, "big", signed=True) + zlib.compress(encode_record(record), 1)


def due_of(idle: Idle) -> int:
    """The event time from which the sweep would change an idle record (`pack_idle`)."""
    return int.from_bytes(idle[:DUE_BYTES], "big", signed=True)


def snapshot_slice(record: Cold | Idle) -> Cold:
    """An encoded record as `export` writes it: a snapshot's slice as it is, an idle
    record decompressed."""
    if record.__class__ is Cold:
        return record
    return Cold(zlib.decompress(memoryview(record)[DUE_BYTES:]))


def decode_cold(record: Any) -> Record:
    """Either kind of encoded record, decoded."""
    if record.__class__ is Cold:
        return decode_record(record)
    return decode_record(zlib.decompress(memoryview(record)[DUE_BYTES:]))


def timelines_in(record: Record | msgspec.Raw | Idle) -> int:
    """How many slots of a record hold a timeline, without thawing an encoded one."""
    if record.__class__ in COLD:
        slots = _slots(snapshot_slice(record))  # type: ignore[arg-type]
        return sum(len(slot) > 1 for slot in slots)  # nil, one byte: no timeline
    return len(record) - record.count(None)  # type: ignore[union-attr,arg-type]
