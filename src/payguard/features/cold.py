"""Records restored from a snapshot stay encoded until something touches them.

Decoding a 20,000-customer × 90-day snapshot's entities builds about a million timelines
and took most of a start-up (6.2 of ~10 s of CPU, issue 16: "start-up to the first
decision ≤ 5 s"). So `FeatureState.restore` decodes each entity table only into
`msgspec.Raw` values — one slice of the snapshot per entity, about a quarter of the
cost — and decodes a record when it is first used (only the few records of at least
`THAW_AT_RESTORE` bytes, the hubs, are decoded by the restore itself: a first use of
one took up to 10 ms inside one request): before an event is read or filed,
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
(the `encode_idle_after` setting: off by default, `auto` turns it on in `serve`), the
sweep also encodes again a record whose newest entry is that much older than the round's
base, and counts it into `cold`:
most accounts act about once a day, and an encoded record is a fraction of the memory of
its timelines. Such a record is a `bytes` (`Idle`), not a `msgspec.Raw`: a header with
the event time from which the sweep would change it (its oldest raw entry reaching the
fold horizon, a folded value leaving the longest window, its last time leaving the
`memory`) and the work the sweep counts for it, then its encoding compressed with zlib
at level 1. Until its due time the sweep passes over it without decoding it, counting
that work, so a round's slices fall exactly where they fall on decoded records. `export`
writes an idle record as it is, header and all (a msgpack `bin` where a decoded record is
an array), and a restore keeps it idle (`restored`): so the first sweep round after a
restart passes over what was idle before it, as it would have without the restart,
instead of decoding every record (on a 20k × 90-day server that thawed ~850,000 records
within the first ~25,000 events, ~365 µs of CPU per event, docs/benchmarks.md). Only
the records that were decoded when the snapshot was taken come back as raw slices and
are decoded by that round.
"""

import struct
import zlib

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
its header (`IDLE_HEAD`, then `SLOT_COST` per timeline), then its zlib-compressed
encoding."""

COLD = (Cold, Idle)
"""The classes of an encoded record (`isinstance(record, COLD)`)."""

IDLE_HEAD = struct.Struct(">qIH")
"""An idle record's due time (the event time from which the sweep would change it), the
units of work the sweep counts for it until then (`state.sweep_entity_of`: 1 + its folded
values, per timeline) and how many timelines it has."""
SLOT_COST = struct.Struct(">HI")
"""Per timeline of an idle record: its slot and its folded values (a slice of the sweep
may pause between two timelines, or inside a large folded past, so that a round's slices
fall where they fall on the decoded record: the work is the same encoded or not)."""


def pack_idle(record: Record, due: int, costs: list[tuple[int, int]]) -> Idle:
    """An idle record's encoding (`Idle`): `costs` are (slot, folded values) of its
    timelines."""
    head = IDLE_HEAD.pack(due, sum(1 + c for _, c in costs), len(costs))
    slots = b"".join(SLOT_COST.pack(slot, cost) for slot, cost in costs)
    return head + slots + zlib.compress(encode_record(record), 1)


def idle_costs(idle: Idle) -> list[tuple[int, int]]:
    """The (slot, folded values) of an idle record's timelines (`pack_idle`)."""
    return list(SLOT_COST.iter_unpack(idle[IDLE_HEAD.size : _head_end(idle)]))


def _head_end(idle: Idle) -> int:
    """Where an idle record's header ends and its compressed encoding begins."""
    timelines: int = IDLE_HEAD.unpack_from(idle)[2]
    return IDLE_HEAD.size + timelines * SLOT_COST.size


def _body(idle: Idle) -> memoryview:
    return memoryview(idle)[_head_end(idle) :]


_BIN_MARKERS = frozenset({0xC4, 0xC5, 0xC6})
"""First byte of a msgpack `bin` (8, 16 or 32-bit length): an idle record in a snapshot;
a decoded record's slice is an array."""
_decode_bin = msgspec.msgpack.Decoder(bytes).decode


def restored(record: msgspec.Raw) -> msgspec.Raw | Idle:
    """A snapshot's slice as the state keeps it: an idle record's bytes (`export` wrote
    it as they are), any other the slice itself, decoded on first use."""
    if memoryview(record)[0] in _BIN_MARKERS:
        return _decode_bin(record)
    return record


def snapshot_slice(record: msgspec.Raw | Idle) -> msgspec.Raw:
    """An encoded record as a decoded one's slice: a restored slice as it is, an idle
    record decompressed."""
    if isinstance(record, Cold):
        return record
    return Cold(zlib.decompress(_body(record)))


def decode_cold(record: msgspec.Raw | Idle) -> Record:
    """Either kind of encoded record, decoded."""
    if isinstance(record, Cold):
        return decode_record(record)
    return decode_record(zlib.decompress(_body(record)))


def timelines_in(record: Record | msgspec.Raw | Idle) -> int:
    """How many slots of a record hold a timeline, without thawing an encoded one."""
    if isinstance(record, COLD):
        slots = _slots(snapshot_slice(record))
        return sum(len(slot) > 1 for slot in slots)  # nil, one byte: no timeline
    return len(record) - record.count(None)
