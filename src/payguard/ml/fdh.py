"""Import the Fraud Detection Handbook's simulated transactions as contract-v1 events.

The Handbook (Le Borgne et al., ULB/Worldline) publishes 1.75 M simulated card payments
and baseline results; `../shared/datasets/fdh_simulated/SOURCE.md` describes the file.
Each row becomes a `payment` (customer → `user_id`, terminal → `merchant.id`, one card
token per customer since the Handbook treats a customer as one card), and each fraud also
becomes a `fraud_report` exactly `delay_days` later: the Handbook's feedback delay, which
its terminal-risk features and its train/test gap assume. Reports are written before
payments of the same second, so a payment sees every report of a transaction made
`delay_days` or more before it (the Handbook's windows include that boundary).

Two things in the raw file are not contract-v1 as they stand, and are handled openly:
- 1,214 scenario-3 amounts carry binary-float noise (`85.64999999999999`, the Handbook's
  `amount * 5` unrounded): rounded half-even to the fen, which recovers the exact product.
- 42 transactions of 0.00: the contract requires amount > 0, so they are skipped and
  counted (`ImportSummary.skipped_zero`); `fdh_check` accounts for them exactly.
"""

import csv
import io
import lzma
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import IO, Any

import msgspec

from payguard.events import EventDecoder, EventError, Tokenizer

COLUMNS = (
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_TIME_SECONDS",
    "TX_TIME_DAYS",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
)
SCENARIOS = {
    "1": "fdh_amount_over_220",
    "2": "fdh_compromised_terminal",
    "3": "fdh_compromised_card",
}
"""The Handbook's three fraud scenarios (Chapter 3.2), as label scenario names."""

DELAY_DAYS = 7
UTC_OFFSET_HOURS = 8
_CENT = Decimal("0.01")
_CHECK_KEY = b"fdh-import-validation-key"


def payment_id(transaction_id: str) -> str:
    return f"fdh-tx-{transaction_id}"


def report_id(transaction_id: str) -> str:
    return f"fdh-fr-{transaction_id}"


def user_id(customer_id: str) -> str:
    return f"fdh-c{customer_id}"


def merchant_id(terminal_id: str) -> str:
    return f"fdh-t{terminal_id}"


def card_token(customer_id: str) -> str:
    return f"fdh-card-{customer_id}"


def to_fen(text: str) -> int:
    """A raw TX_AMOUNT to integer fen, exactly: plain decimals are read digit by digit;
    float noise beyond two places (`85.64999999999999`) is rounded half-even to the fen."""
    whole, _, frac = text.partition(".")
    if len(frac) <= 2 and whole.isdigit() and (not frac or frac.isdigit()):
        return int(whole) * 100 + int(frac.ljust(2, "0") or "0")
    value = Decimal(text).quantize(_CENT, rounding=ROUND_HALF_EVEN)
    if not value.is_finite() or value < 0:
        raise ValueError(f"bad TX_AMOUNT {text!r}")
    return int(value * 100)


def fen_text(fen: int) -> str:
    """Integer fen to the contract's decimal-string major units (`5716` → `"57.16"`)."""
    return f"{fen // 100}.{fen % 100:02d}"


@dataclass
class ImportSummary:
    rows: int = 0
    payments: int = 0
    reports: int = 0
    frauds_by_scenario: dict[str, int] = field(default_factory=dict)
    skipped_zero: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    """(TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, payments written before it)
    of the 0.00 rows, which the contract cannot carry."""
    rounded: int = 0
    first: str = ""
    last: str = ""


class _Clock:
    """`YYYY-MM-DD HH:MM:SS` wall-clock text → RFC 3339 at a fixed offset, and the same
    wall clock `days` later, with the date arithmetic cached per calendar day."""

    def __init__(self, offset_hours: int, days: int) -> None:
        sign = "+" if offset_hours >= 0 else "-"
        self.suffix = f"{sign}{abs(offset_hours):02d}:00"
        self.days = days
        self._later: dict[str, str] = {}

    def rfc3339(self, wall: str) -> str:
        return f"{wall[:10]}T{wall[11:19]}{self.suffix}"

    def later(self, wall: str) -> str:
        day = wall[:10]
        shifted = self._later.get(day)
        if shifted is None:
            shifted = (date.fromisoformat(day) + timedelta(days=self.days)).isoformat()
            self._later[day] = shifted
        return f"{shifted}{wall[10:]}"


def open_text(path: Path) -> IO[str]:
    """The raw file as text: `.xz` is decompressed on the fly (streamed, never whole)."""
    if path.suffix == ".xz":
        return io.TextIOWrapper(lzma.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def read_rows(path: Path) -> Iterator[list[str]]:
    """Rows of the raw CSV after checking its header; in the file's (time) order."""
    with open_text(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(header[: len(COLUMNS)]) != COLUMNS:
            raise ValueError(f"{path}: not the Handbook's raw transactions (header {header})")
        yield from reader


def import_fdh(
    raw: Path,
    events_out: IO[bytes],
    labels_out: IO[bytes] | None = None,
    *,
    offset_hours: int = UTC_OFFSET_HOURS,
    delay_days: int = DELAY_DAYS,
    validate: bool = True,
) -> ImportSummary:
    """Stream the raw CSV into contract-v1 JSON Lines; returns what was written.

    With `validate`, every line is decoded by payguard's own `EventDecoder` before it is
    written, so the file is known to be accepted by `replay` and the API."""
    summary = ImportSummary()
    check = EventDecoder(Tokenizer(_CHECK_KEY)).decode if validate else None
    chunk: list[bytes] = []
    for line, label in fdh_lines(raw, summary, offset_hours=offset_hours, delay_days=delay_days):
        if check is not None:
            try:
                check(line)
            except EventError as exc:  # a bug in this importer, not in the data
                raise ValueError(f"event {exc.event_id}: {exc.field}: {exc.reason}") from None
        chunk.append(line)
        if label is not None and labels_out is not None:
            labels_out.write(label + b"\n")
        if len(chunk) >= 4096:
            events_out.write(b"\n".join(chunk) + b"\n")
            chunk.clear()
    if chunk:
        events_out.write(b"\n".join(chunk) + b"\n")
    return summary


def fdh_lines(
    raw: Path,
    summary: ImportSummary,
    *,
    offset_hours: int = UTC_OFFSET_HOURS,
    delay_days: int = DELAY_DAYS,
) -> Iterator[tuple[bytes, bytes | None]]:
    """(event line, label line or None) in time order, reports before payments of the
    same second; fills `summary` as it goes."""
    clock = _Clock(offset_hours, delay_days)
    pending: deque[tuple[str, bytes]] = deque()
    """Fraud reports not yet due: (wall-clock due time, line), due times ascending."""
    encode = msgspec.json.Encoder().encode
    previous = ""
    for row in read_rows(raw):
        tid, wall, customer, terminal, amount = row[0], row[1], row[2], row[3], row[4]
        if wall < previous:
            raise ValueError(f"TRANSACTION_ID {tid}: rows are not in time order")
        previous = wall
        summary.rows += 1
        summary.first = summary.first or wall
        summary.last = wall
        while pending and pending[0][0] <= wall:
            summary.reports += 1
            yield pending.popleft()[1], None
        fen = to_fen(amount)
        if fen == 0:
            summary.skipped_zero.append((tid, wall, customer, terminal, summary.payments))
            continue
        summary.rounded += len(amount.partition(".")[2]) > 2
        summary.payments += 1
        payment = encode(_payment(tid, clock.rfc3339(wall), customer, terminal, fen))
        if row[7] != "1":
            yield payment, None
            continue
        scenario = SCENARIOS.get(row[8], "fdh_unknown")
        summary.frauds_by_scenario[scenario] = summary.frauds_by_scenario.get(scenario, 0) + 1
        due = clock.later(wall)
        pending.append((due, encode(_report(tid, clock.rfc3339(due), customer, row[8]))))
        yield payment, encode(_label(tid, customer, terminal, row[8]))
    for _, line in pending:
        summary.reports += 1
        yield line, None


def _payment(tid: str, ts: str, customer: str, terminal: str, fen: int) -> dict[str, Any]:
    return {
        "event_id": payment_id(tid),
        "type": "payment",
        "ts": ts,
        "user_id": user_id(customer),
        "card": {"token": card_token(customer)},
        "amount": fen_text(fen),
        "merchant": {"id": merchant_id(terminal)},
    }


def _report(tid: str, ts: str, customer: str, scenario: str) -> dict[str, Any]:
    return {
        "event_id": report_id(tid),
        "type": "fraud_report",
        "ts": ts,
        "user_id": user_id(customer),
        "ref_event_id": payment_id(tid),
        "attrs": {"source": "fdh", "scenario": SCENARIOS.get(scenario, "fdh_unknown")},
    }


def _label(tid: str, customer: str, terminal: str, scenario: str) -> dict[str, Any]:
    """A label line in the simulator's format; the campaign is what was compromised."""
    campaign = {"2": f"fdh-terminal-{terminal}", "3": f"fdh-card-{customer}"}.get(
        scenario, "fdh-amount-over-220"
    )
    name = SCENARIOS.get(scenario, "fdh_unknown")
    return {"event_id": payment_id(tid), "campaign": campaign, "scenario": name, "attack": True}
