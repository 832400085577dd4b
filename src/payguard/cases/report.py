"""A case as a suspicious transaction report (STR, 可疑交易报告): the fields a compliance
officer files, as JSON or CSV.

The report names the reporting institution, the report and case ids, when it was made,
the subject (the case's entity) and every token the case's alerts carry (accounts, cards,
devices, merchants, payees: tokens, never clear numbers), one row per reported operation
(event id, type, UTC time, amount as a yuan string, currency, counterparty, reasons), the
total, the verdict and a narrative (the reasons in words and the analysts' notes).
CSV repeats the case's fields on each operation's row, so one file imports as one table.
"""

import csv
import io
from datetime import UTC, datetime
from typing import Final, Literal

import msgspec

from payguard.cases.types import CaseDetail
from payguard.events import to_major_units

StrFormat = Literal["json", "csv"]
STR_FORMATS: Final[tuple[StrFormat, ...]] = ("json", "csv")


class StrTransaction(msgspec.Struct, frozen=True):
    event_id: str
    type: str
    time_utc: str
    amount: str
    """Major units (yuan for CNY) as a decimal string, never a float."""
    currency: str
    counterparty: str | None
    alert: str
    reasons: list[str]


class StrReport(msgspec.Struct, frozen=True):
    reporting_institution: str
    report_id: str
    generated_utc: str
    case_id: str
    queue: str
    subject_kind: str
    subject_token: str
    accounts: list[str]
    cards: list[str]
    devices: list[str]
    merchants: list[str]
    payees: list[str]
    first_time_utc: str | None
    last_time_utc: str | None
    total_amount: str
    currency: str
    verdict: str | None
    status: str
    transactions: list[StrTransaction]
    narrative: str


def build(detail: CaseDetail, *, institution: str, now_ms: int) -> StrReport:
    case, alerts = detail.case, detail.alerts
    money = [a for a in alerts if a.amount]
    total = sum(a.amount for a in money)
    times = sorted(a.ts for a in alerts)
    reasons = sorted({code for a in alerts for code in a.reasons})
    notes = "\n".join(f"[{_iso(n.ts)}] {n.author}: {n.text}" for n in detail.notes)
    narrative = (
        f"{len(alerts)} alert(s) on {case.entity_kind} {case.entity_id} in queue "
        f"{case.queue}; total {to_major_units(total, case.currency)} {case.currency}; "
        f"reasons: {', '.join(reasons) or 'none'}; verdict: {case.verdict or 'open'}."
    )
    if notes:
        narrative += "\nAnalyst notes:\n" + notes
    return StrReport(
        reporting_institution=institution,
        report_id=f"str-{case.case_id}-{now_ms}",
        generated_utc=_iso(now_ms),
        case_id=case.case_id,
        queue=case.queue,
        subject_kind=case.entity_kind,
        subject_token=case.entity_id,
        accounts=_distinct(a.user_id for a in alerts),
        cards=_distinct(a.card for a in alerts),
        devices=_distinct(a.device_id for a in alerts),
        merchants=_distinct(a.merchant_id for a in alerts),
        payees=_distinct(a.payee_id for a in alerts),
        first_time_utc=_iso(times[0]) if times else None,
        last_time_utc=_iso(times[-1]) if times else None,
        total_amount=to_major_units(total, case.currency),
        currency=case.currency,
        verdict=case.verdict,
        status=case.status,
        transactions=[
            StrTransaction(
                event_id=a.event_id,
                type=a.type or "",
                time_utc=_iso(a.ts),
                amount=to_major_units(a.amount, a.currency),
                currency=a.currency,
                counterparty=a.payee_id or a.merchant_id,
                alert=a.kind,
                reasons=a.reasons,
            )
            for a in alerts
        ],
        narrative=narrative,
    )


def str_report(detail: CaseDetail, fmt: StrFormat, *, institution: str, now_ms: int) -> str:
    report = build(detail, institution=institution, now_ms=now_ms)
    if fmt == "json":
        return msgspec.json.encode(report).decode()
    head = msgspec.structs.asdict(report)
    transactions = head.pop("transactions")
    head_fields = [k for k in head]
    tx_fields = list(StrTransaction.__struct_fields__)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*head_fields, *(f"tx_{f}" for f in tx_fields)])
    head_row = [";".join(v) if isinstance(v, list) else v for v in head.values()]
    for tx in transactions or [None]:
        tx_row = (
            [";".join(v) if isinstance(v, list) else v for v in msgspec.structs.astuple(tx)]
            if tx is not None
            else [""] * len(tx_fields)
        )
        writer.writerow([*head_row, *tx_row])
    return out.getvalue()


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _distinct(values: object) -> list[str]:
    return sorted({v for v in values if v})  # type: ignore[attr-defined]
