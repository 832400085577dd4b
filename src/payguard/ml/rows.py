"""Point-in-time model rows from an events file: what the engine saw at decision time.

Events are read in file (arrival) order. For each event of a row type the feature state is
snapshotted *before* the event is filed, exactly as `Engine.process` does, so a row holds
only what existed when the decision was made; nothing later (events, labels) can reach it.
Feedback events (`fraud_report`, `chargeback`) are filed through the event they point at,
and also give each payment its label and the time that label became known.
"""

import hashlib
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import numpy as np
import numpy.typing as npt

from payguard.events import FEEDBACK_TYPES, Event, EventDecoder, EventError, Tokenizer
from payguard.features import SWEEP_EVERY
from payguard.ml.feature_set import FeatureSet

NO_LABEL = -1
"""`label_ts` of a row no feedback ever pointed at."""
_CHUNK = 1 << 16


class _Ref(msgspec.Struct):
    """The two fields the first pass reads from each line."""

    type: str = ""
    ref_event_id: str | None = None


@dataclass
class Rows:
    """One row per decided event of the feature set's types, in arrival order."""

    columns: tuple[str, ...]
    x: npt.NDArray[Any]
    """Feature values, one column per name in `columns` (float32 for models)."""
    ts: npt.NDArray[np.int64]
    event_id: npt.NDArray[Any]
    card: npt.NDArray[Any]
    """The card token (the Handbook's customer); the user id when the event has no card."""
    label_ts: npt.NDArray[np.int64]
    """When the first feedback on the event arrived (`NO_LABEL` if none did)."""
    source_sha256: str

    def __len__(self) -> int:
        return len(self.ts)

    def card_codes(self) -> npt.NDArray[np.int64]:
        """`card` as small integers (same card, same code), for fast set operations."""
        codes: dict[Any, int] = {}
        return np.fromiter(
            (codes.setdefault(c, len(codes)) for c in self.card), np.int64, len(self.card)
        )

    def labels_known_at(self, cutoff_ms: int) -> npt.NDArray[np.int8]:
        """Labels as known at `cutoff_ms`: feedback that arrived later does not count."""
        known = (self.label_ts != NO_LABEL) & (self.label_ts <= cutoff_ms)
        return np.asarray(known, np.int8)

    def take(self, mask: npt.NDArray[np.bool_]) -> "Rows":
        return Rows(
            self.columns,
            self.x[mask],
            self.ts[mask],
            self.event_id[mask],
            self.card[mask],
            self.label_ts[mask],
            self.source_sha256,
        )

    def with_labels(self, attacks: set[str], known_ms: int) -> "Rows":
        """Labels from a labels file (simulator ground truth), taken as known at `known_ms`."""
        hit = np.fromiter((eid in attacks for eid in self.event_id), bool, len(self))
        label_ts = np.where(hit, known_ms, self.label_ts).astype(np.int64)
        return Rows(
            self.columns, self.x, self.ts, self.event_id, self.card, label_ts, self.source_sha256
        )

    # -- persistence: one Parquet file, written and read through DuckDB -------------------

    def save(self, path: Path) -> None:
        table = {
            "event_id": self.event_id,
            "ts": self.ts,
            "card": self.card,
            "label_ts": self.label_ts,
            **{name: self.x[:, i] for i, name in enumerate(self.columns)},
        }
        con = duckdb.connect()
        con.register("rows_view", table)
        meta = f"{{'source_sha256': '{self.source_sha256}'}}"
        con.execute(
            f"COPY (SELECT * FROM rows_view) TO '{_sql_path(path)}' "
            f"(FORMAT parquet, KV_METADATA {meta})"
        )
        con.close()

    @classmethod
    def load(cls, path: Path) -> "Rows":
        con = duckdb.connect()
        where = _sql_path(path)
        data = con.execute(f"SELECT * FROM read_parquet('{where}')").fetchnumpy()
        meta = con.execute(
            f"SELECT value FROM parquet_kv_metadata('{where}') WHERE key = 'source_sha256'"
        ).fetchone()
        con.close()
        fixed = ("event_id", "ts", "card", "label_ts")
        columns = tuple(name for name in data if name not in fixed)
        x = np.column_stack([data[name] for name in columns]).astype(np.float32)
        return cls(
            columns,
            x,
            np.asarray(data["ts"], np.int64),
            np.asarray(data["event_id"], object),
            np.asarray(data["card"], object),
            np.asarray(data["label_ts"], np.int64),
            bytes(meta[0]).decode() if meta else "",
        )


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def referenced_ids(events: Path) -> set[str]:
    """First pass: the event ids that feedback points at (only those are kept in memory)."""
    decode = msgspec.json.Decoder(_Ref).decode
    wanted: set[str] = set()
    with events.open("rb") as fh:
        for line in fh:
            if b"ref_event_id" in line:
                ref = decode(line)
                if ref.type in FEEDBACK_TYPES and ref.ref_event_id is not None:
                    wanted.add(ref.ref_event_id)
    return wanted


def _events(path: Path, decoder: EventDecoder) -> Iterator[Event]:
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield decoder.decode(line)
            except EventError as exc:
                raise ValueError(f"{path}:{number}: {exc.field}: {exc.reason}") from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def build_rows(events: Path, fs: FeatureSet, token_key: bytes) -> Rows:
    """Every row of `events` under feature set `fs` (two passes over the file)."""
    decoded = _events(events, EventDecoder(Tokenizer(token_key)))
    return rows_from(decoded, fs, referenced_ids(events), file_sha256(events))


def rows_from(
    events: Iterable[Event],
    fs: FeatureSet,
    wanted: Container[str],
    source: str = "",
    dtype: type[np.floating[Any]] = np.float32,
) -> Rows:
    """Rows from validated events in arrival order; `wanted` are the ids feedback cites."""
    state = fs.state()
    plan = state.plan(fs.needs)
    row_of, types, width = fs.row, fs.types, len(fs.columns)
    tracker = fs.tracker() if fs.tracker is not None else None
    kept: dict[str, Event] = {}
    labelled: dict[str, int] = {}
    blocks: list[npt.NDArray[Any]] = []
    block = np.empty((_CHUNK, width), dtype)
    filled = 0
    ts: list[int] = []
    ids: list[str] = []
    cards: list[str] = []
    for seq, event in enumerate(events, start=1):
        if event.type in types:
            values = row_of(state.snapshot(event, plan), event)
            block[filled] = values + tracker.values(event) if tracker is not None else values
            filled += 1
            if filled == _CHUNK:
                blocks.append(block)
                block, filled = np.empty((_CHUNK, width), dtype), 0
            ts.append(event.ts)
            ids.append(event.event_id)
            cards.append(event.card.token if event.card is not None else event.user_id or "")
        referenced = None
        if event.type in FEEDBACK_TYPES and event.ref_event_id is not None:
            referenced = kept.get(event.ref_event_id)
            labelled.setdefault(event.ref_event_id, event.ts)
        if event.event_id in wanted:
            kept[event.event_id] = event
        state.update(event, referenced)
        if tracker is not None:
            tracker.update(event, referenced)
        if seq % SWEEP_EVERY == 0:
            state.sweep()
    blocks.append(block[:filled])
    return Rows(
        columns=fs.columns,
        x=np.concatenate(blocks),
        ts=np.asarray(ts, np.int64),
        event_id=np.asarray(ids, object),
        card=np.asarray(cards, object),
        label_ts=np.asarray([labelled.get(i, NO_LABEL) for i in ids], np.int64),
        source_sha256=source,
    )
