"""The state snapshot file: versioned, checksummed MessagePack, never pickle.

A snapshot lets a restart skip replaying the whole event log. It is data, not code: a
crafted file must not run anything, and a damaged one must never load as wrong state. The
file is

    MAGIC (18 bytes) | SHA-256 of the envelope (32 bytes) | envelope (MessagePack)

where the envelope holds a `SnapshotHeader` (format, payguard version, catalog and ruleset
fingerprints, the event log sequence it is as of) and the body (plain maps, lists, ints,
strings and bytes, decoded with msgspec's typed decoder, which builds no objects but
those). The checksum covers header and body, so any flipped bit or cut tail is caught
before anything is decoded; the caller then ignores the file and replays the event log
(`SnapshotError`). Cost: hashing ~55 MB takes about 0.1 s of a restart.
"""

import hashlib
from typing import Any

import msgspec

MAGIC = b"PAYGUARD-SNAPSHOT\n"
FORMAT = 6
"""Bumped when the content changes meaning: 2 added the feature state's watched history,
3 replaced the pickle with this file, 4 folded feature timelines past their raw head
(features.timeline), 5 added the recent event ids (the idempotency window), 6 packed the
timelines into arrays (features.timeline). Another format is ignored and the log
replayed."""
_DIGEST_BYTES = 32


class SnapshotError(ValueError):
    """The file is not a snapshot this build can trust: refuse it and replay the log."""


class SnapshotHeader(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: int
    payguard: str
    """The payguard version that wrote it (for the operator; `format` decides)."""
    catalog: str
    """SHA-256 of the feature catalog: timelines mean nothing under another one."""
    ruleset: str
    """The ruleset version when written (chain state carries its own pattern digest)."""
    seq: int
    """The last event log sequence the state includes: replay resumes after it."""


class SnapshotBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    features: dict[str, Any]
    """`FeatureState.export()`: plain values, the entities as one MessagePack blob."""
    graph: bytes | None
    chains: bytes | None
    recent: dict[int, bytes] | None = None
    """The recent event ids, per day of event time (engine.idempotency)."""


class _Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    header: SnapshotHeader
    body: SnapshotBody


_decode_envelope = msgspec.msgpack.Decoder(_Envelope).decode


def encode_snapshot(header: SnapshotHeader, body: SnapshotBody) -> bytes:
    """The file's bytes (see the module docstring)."""
    envelope = msgspec.msgpack.encode(_Envelope(header, body))
    return MAGIC + hashlib.sha256(envelope).digest() + envelope


def decode_snapshot(data: bytes) -> tuple[SnapshotHeader, SnapshotBody]:
    """Header and body of a snapshot file; raises SnapshotError, naming why, for anything
    that is not an intact snapshot (another kind of file, a cut tail, a flipped bit, a
    shape this build does not know)."""
    if not data.startswith(MAGIC):
        raise SnapshotError("not a payguard snapshot (no header; a pickle is never loaded)")
    start = len(MAGIC) + _DIGEST_BYTES
    if len(data) < start:
        raise SnapshotError("truncated snapshot")
    digest, envelope = data[len(MAGIC) : start], data[start:]
    if hashlib.sha256(envelope).digest() != digest:
        raise SnapshotError("snapshot checksum mismatch (corrupt or truncated)")
    try:
        decoded = _decode_envelope(envelope)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise SnapshotError(f"snapshot of an unknown shape: {exc}") from None
    return decoded.header, decoded.body
