"""Collect events in memory, then sort, assign ids and write JSON Lines in large chunks.

Generators never see final event ids: they get an internal sequence number, and ids are
assigned after sorting by time, so an id reveals nothing about which generator (legit or
attack) produced an event. References (`ref_event_id`) hold sequence numbers until written.
"""

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import msgspec

Body = dict[str, Any]
LabelInfo = tuple[str, str, str, tuple[str, ...] | None]
"""(campaign id, scenario, variant, challenge methods the attacker passes when they differ
from the scenario default, else None)."""
_LOCAL_OFFSET_S = 8 * 3600
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_CHUNK = 65_536


class Emitter:
    """Append-only event buffer with labels and the set of events others refer to."""

    __slots__ = ("_seq", "events", "labels", "referenced")

    def __init__(self) -> None:
        self.events: list[tuple[int, int, Body]] = []
        self.labels: dict[int, LabelInfo] = {}
        self.referenced: set[int] = set()
        self._seq = 0

    @property
    def next_seq(self) -> int:
        """The sequence number the next emitted event will get."""
        return self._seq

    def emit(self, ts: int, body: Body) -> int:
        """Buffer one event at epoch second `ts`; returns its sequence number."""
        seq = self._seq
        self._seq = seq + 1
        self.events.append((ts, seq, body))
        return seq

    def ref(self, body: Body, target: int) -> Body:
        """Make `body` reference the event with sequence number `target`."""
        body["ref_event_id"] = target
        self.referenced.add(target)
        return body


class TsFormatter:
    """Epoch seconds to RFC 3339 in +08:00 without datetime objects in the hot loop."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}
        self._clock = [
            f"{h:02d}:{m:02d}:{s:02d}+08:00"
            for h in range(24)
            for m in range(60)
            for s in range(60)
        ]

    def __call__(self, ts: int) -> str:
        day, sec = divmod(ts + _LOCAL_OFFSET_S, 86_400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = date.fromordinal(_EPOCH_ORDINAL + day).isoformat() + "T"
            self._days[day] = prefix
        return prefix + self._clock[sec]


def write(
    em: Emitter, events_path: Path, labels_path: Path, id_prefix: str
) -> tuple[Counter[str], Counter[str], int]:
    """Write events sorted by (ts, sequence) and their labels; returns type/scenario counts."""
    em.events.sort()
    fmt = TsFormatter()
    enc = msgspec.json.Encoder()
    ids: dict[int, str] = {}
    referenced = em.referenced
    labels = em.labels
    by_type: Counter[str] = Counter()
    by_scenario: Counter[str] = Counter()
    n_labels = 0
    chunk: list[Body] = []
    label_chunk: list[Body] = []
    with events_path.open("wb") as ev_out, labels_path.open("wb") as lab_out:
        for rank, (ts, seq, body) in enumerate(em.events):
            eid = f"{id_prefix}{rank:08d}"
            if seq in referenced:
                ids[seq] = eid
            out: Body = {"event_id": eid, "type": None, "ts": fmt(ts)}
            out.update(body)
            ref = body.get("ref_event_id")
            if ref is not None:
                out["ref_event_id"] = ids[ref]
            chunk.append(out)
            by_type[body["type"]] += 1
            label = labels.get(seq)
            if label is not None:
                line = {
                    "event_id": eid,
                    "campaign": label[0],
                    "scenario": label[1],
                    "variant": label[2],
                    "attack": True,
                }
                if label[3] is not None:
                    line["can_pass"] = label[3]
                label_chunk.append(line)
                by_scenario[label[1]] += 1
                n_labels += 1
            if len(chunk) >= _CHUNK:
                ev_out.write(enc.encode_lines(chunk))
                chunk.clear()
                lab_out.write(enc.encode_lines(label_chunk))
                label_chunk.clear()
        ev_out.write(enc.encode_lines(chunk))
        lab_out.write(enc.encode_lines(label_chunk))
    return by_type, by_scenario, n_labels
