"""Check payguard's features against the Handbook's own `transactions_transformed` file.

The raw file is imported exactly as `payguard import-fdh` does, run through payguard's
feature state with `fdh_features.yaml` (point in time, as the engine computes it), and the
Handbook's 15 features derived from those snapshots are compared, transaction by
transaction, with the columns the Handbook computed with pandas.

Two planned differences are accounted for exactly before comparing, so every other value
must match:
- the 42 zero-amount transactions, which contract v1 cannot carry, are absent from
  payguard's windows: each is added back where the Handbook's definition counts it (its
  customer's windows after it, its terminal's delayed windows);
- ties: a customer's payments in the same second are windowed in arrival order by
  payguard, but in the order of the Handbook's unstable sort (which reverses some pairs,
  and which its file keeps): the customer windows of such a group are re-derived in the
  Handbook's order from payguard's values.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import permutations
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from payguard.events import Event, EventDecoder, Tokenizer
from payguard.ml.fdh import ImportSummary, fdh_lines, open_text, payment_id
from payguard.ml.feature_set import HANDBOOK_COLUMNS, fdh_feature_set
from payguard.ml.rows import Rows, rows_from

_KEY = b"fdh-feature-check-key"
_COUNTS = tuple(c for c in HANDBOOK_COLUMNS if "_NB_TX_" in c)
_WINDOW_DAYS = {"1DAY": 1, "7DAY": 7, "30DAY": 30}
DELAY_DAYS = 7
TOLERANCE = 1e-9
"""Relative tolerance for averages and ratios: the Handbook sums binary floats."""


@dataclass
class ColumnResult:
    column: str
    compared: int
    mismatches: int
    max_abs_diff: float
    examples: list[str] = field(default_factory=list)


@dataclass
class CheckResult:
    rows: int
    columns: list[ColumnResult]
    adjusted_for_zero_amounts: int
    """Rows whose windows held one of the skipped 0.00 transactions (added back)."""
    reordered_ties: int
    """Rows in a customer's same-second group, windowed in the Handbook's order."""

    @property
    def equal(self) -> bool:
        return all(c.mismatches == 0 for c in self.columns)


def _wall(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _payments(
    raw: Path, until: datetime | None, summary: ImportSummary, wanted: set[str]
) -> Iterator[Event]:
    decode = EventDecoder(Tokenizer(_KEY)).decode
    limit = until.isoformat(sep=" ") if until else None
    for line, label in fdh_lines(raw, summary):
        if limit is not None and summary.last >= limit:
            return
        if label is not None:  # a fraud: its report will cite it, keep it for then
            wanted.add(payment_id(line[len(b'{"event_id":"fdh-tx-') :].split(b'"')[0].decode()))
        yield decode(line)


def our_rows(raw: Path, until: datetime | None = None) -> tuple[Rows, ImportSummary]:
    """payguard's Handbook features (float64) for every payment before `until`."""
    summary = ImportSummary()
    wanted: set[str] = set()
    fs = fdh_feature_set(extras=False)
    rows = rows_from(_payments(raw, until, summary, wanted), fs, wanted, dtype=np.float64)
    return rows, summary


def handbook_table(transformed: Path, until: datetime | None) -> dict[str, npt.NDArray[Any]]:
    """The transformed file's ids, keys, times and 15 features, up to `until`."""
    limit = until.isoformat(sep=" ") if until else None
    stop = (until + timedelta(days=1)).isoformat(sep=" ") if until else None
    ids: list[str] = []
    walls: list[str] = []
    customers: list[str] = []
    terminals: list[str] = []
    values: list[list[float]] = []
    with open_text(transformed) as fh:
        header = fh.readline().rstrip("\r\n").split(",")
        at = [header.index(c) for c in HANDBOOK_COLUMNS]
        for line in fh:
            cells = line.rstrip("\r\n").split(",")
            if limit is not None and cells[1] >= limit:
                if stop is not None and cells[1] >= stop:
                    break  # the file is in daily blocks, in time order between days
                continue
            ids.append(cells[0])
            walls.append(cells[1])
            customers.append(cells[2])
            terminals.append(cells[3])
            values.append([float(cells[i]) for i in at])
    return {
        "id": np.asarray(ids, object),
        "wall": np.asarray(walls, "datetime64[s]"),
        "customer": np.asarray(customers, object),
        "terminal": np.asarray(terminals, object),
        "x": np.asarray(values, np.float64),
    }


def check_features(
    raw: Path, transformed: Path, until: datetime | None = None, examples: int = 5
) -> CheckResult:
    """Compare every Handbook feature of every payment before `until`."""
    rows, summary = our_rows(raw, until)
    book = handbook_table(transformed, until)
    index = {eid: i for i, eid in enumerate(rows.event_id)}
    ours = np.full(book["x"].shape, np.nan)
    present = np.array([payment_id(t) in index for t in book["id"]])
    book["position"] = np.array([index.get(payment_id(t), -1) for t in book["id"]])
    ours[present] = rows.x[book["position"][present]]
    touched = _add_back_zero_amounts(ours, book, summary, present)
    ties = _reorder_ties(ours, book, present)
    results = [
        _compare(col, ours[present, j], book["x"][present, j], book["id"][present], examples)
        for j, col in enumerate(HANDBOOK_COLUMNS)
    ]
    return CheckResult(int(present.sum()), results, touched, ties)


def _add_back_zero_amounts(
    ours: npt.NDArray[np.float64],
    book: dict[str, npt.NDArray[Any]],
    summary: ImportSummary,
    present: npt.NDArray[np.bool_],
) -> int:
    """Count each skipped 0.00 transaction where the Handbook's windows count it: its
    customer's later payments within W (sum unchanged, average recomputed) and its
    terminal's payments 7 to 7 + W days later (risk recomputed)."""
    col = {c: j for j, c in enumerate(HANDBOOK_COLUMNS)}
    touched = np.zeros(len(ours), bool)
    day = np.timedelta64(1, "D")
    for _, wall, customer, terminal, before in summary.skipped_zero:
        at = np.datetime64(wall)
        mine = present & (book["customer"] == customer) & (book["position"] >= before)
        theirs = present & (book["terminal"] == terminal)
        for tag, days in _WINDOW_DAYS.items():
            hit = mine & (book["wall"] >= at) & (book["wall"] < at + days * day)
            n, avg = (
                col[f"CUSTOMER_ID_NB_TX_{tag}_WINDOW"],
                col[f"CUSTOMER_ID_AVG_AMOUNT_{tag}_WINDOW"],
            )
            ours[hit, avg] = ours[hit, avg] * ours[hit, n] / (ours[hit, n] + 1)
            ours[hit, n] += 1
            start = at + DELAY_DAYS * day
            hit_t = theirs & (book["wall"] >= start) & (book["wall"] < start + days * day)
            n, risk = col[f"TERMINAL_ID_NB_TX_{tag}_WINDOW"], col[f"TERMINAL_ID_RISK_{tag}_WINDOW"]
            ours[hit_t, risk] = ours[hit_t, risk] * ours[hit_t, n] / (ours[hit_t, n] + 1)
            ours[hit_t, n] += 1
            touched |= hit | hit_t
    return int(touched.sum())


def _reorder_ties(
    ours: npt.NDArray[np.float64], book: dict[str, npt.NDArray[Any]], present: npt.NDArray[np.bool_]
) -> int:
    """Customer windows of same-customer, same-second payments, re-derived in the order the
    Handbook's sort happened to give them (which its file does not reliably keep): every
    order of the group is tried and the one that reproduces the Handbook is adopted.
    Returns the rows whose order differed from payguard's arrival order."""
    groups: dict[tuple[str, Any], list[int]] = {}
    for i in np.flatnonzero(present):
        groups.setdefault((book["customer"][i], book["wall"][i]), []).append(int(i))
    reordered = 0
    for members in groups.values():
        if len(members) < 2:
            continue
        arrival = sorted(members, key=lambda i: int(book["position"][i]))
        derived = {order: _in_order(ours, order, arrival[0]) for order in permutations(arrival)}
        match = next((o for o, v in derived.items() if _close(v, book["x"][list(o)])), None)
        if match is not None and list(match) != arrival:
            ours[list(match)] = derived[match]
            reordered += len(members)
    return reordered


def _in_order(
    ours: npt.NDArray[np.float64], order: tuple[int, ...], first: int
) -> npt.NDArray[np.float64]:
    """The group's rows with customer windows recomputed as if they arrived in `order`
    (`first` arrived first: its windows hold everything before the group plus itself)."""
    col = {c: j for j, c in enumerate(HANDBOOK_COLUMNS)}
    amount = col["TX_AMOUNT"]
    out = ours[list(order)].copy()
    for tag in _WINDOW_DAYS:
        n, avg = col[f"CUSTOMER_ID_NB_TX_{tag}_WINDOW"], col[f"CUSTOMER_ID_AVG_AMOUNT_{tag}_WINDOW"]
        count = ours[first, n] - 1
        total = ours[first, avg] * ours[first, n] - ours[first, amount]
        for k, i in enumerate(order):
            count, total = count + 1, total + ours[i, amount]
            out[k, n], out[k, avg] = count, total / count
    return out


def _close(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> bool:
    return bool(np.all(np.abs(a - b) <= TOLERANCE * np.maximum(1.0, np.abs(b))))


def _compare(
    column: str,
    ours: npt.NDArray[np.float64],
    book: npt.NDArray[np.float64],
    ids: npt.NDArray[Any],
    examples: int,
) -> ColumnResult:
    diff = np.abs(ours - book)
    if column in _COUNTS or column.startswith("TX_DURING"):
        bad = diff != 0
    else:
        bad = diff > TOLERANCE * np.maximum(1.0, np.abs(book))
    bad |= np.isnan(ours)
    return ColumnResult(
        column,
        len(book),
        int(bad.sum()),
        float(np.nanmax(diff)) if len(diff) else 0.0,
        [str(i) for i in ids[bad][:examples]],
    )


def days_after(start: str, days: int) -> datetime:
    return _wall(start) + timedelta(days=days)
