"""The Handbook importer: contract-v1 events, exact money, reports 7 days late, in order."""

import json
from pathlib import Path

import msgspec
from typer.testing import CliRunner

from payguard.cli.main import app
from payguard.events import EventDecoder, Tokenizer
from payguard.ml.fdh import to_fen

HEADER = (
    "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_TIME_SECONDS,"
    "TX_TIME_DAYS,TX_FRAUD,TX_FRAUD_SCENARIO\n"
)
RAW = [
    "0,2018-04-01 00:00:31,596,3156,57.16,31,0,0,0",
    "1,2018-04-01 00:02:10,4961,3412,85.64999999999999,130,0,1,3",
    "2,2018-04-01 00:07:56,2,1365,0.0,476,0,0,0",
    "3,2018-04-01 00:07:56,2,1366,146.0,476,0,1,1",
    "4,2018-04-08 00:02:09,7,3412,12.5,604929,7,0,0",
    "5,2018-04-08 00:02:10,7,3412,3,604930,7,0,0",
]


def _raw(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "raw.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def test_amounts_are_exact_fen() -> None:
    assert to_fen("57.16") == 5716
    assert to_fen("146.0") == 14600
    assert to_fen("3") == 300
    assert to_fen("85.64999999999999") == 8565  # 17.13 * 5 in binary floats
    assert to_fen("52.300000000000004") == 5230
    assert to_fen("0.0") == 0


def test_import_writes_valid_events_with_reports_seven_days_later(tmp_path: Path) -> None:
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    result = CliRunner().invoke(
        app, ["import-fdh", str(_raw(tmp_path, RAW)), "-o", str(events), "--labels", str(labels)]
    )
    assert result.exit_code == 0, result.output
    lines = events.read_bytes().splitlines()
    decoder = EventDecoder(Tokenizer(b"0123456789abcdef"))
    decoded = [decoder.decode(line) for line in lines]  # raises if any is not contract v1
    wire = [json.loads(line) for line in lines]
    assert [w["event_id"] for w in wire] == [
        "fdh-tx-0",
        "fdh-tx-1",
        "fdh-tx-3",
        "fdh-tx-4",
        "fdh-fr-1",
        "fdh-tx-5",
        "fdh-fr-3",
    ]  # the 0.00 row is skipped; fdh-fr-1 is due at 00:02:10, before the payment that second
    payment = wire[1]
    assert payment["user_id"] == "fdh-c4961" and payment["merchant"] == {"id": "fdh-t3412"}
    assert payment["card"] == {"token": "fdh-card-4961"}
    assert payment["ts"] == "2018-04-01T00:02:10+08:00"
    assert decoded[1].amount == 8565
    report = decoded[4]
    assert report.type == "fraud_report" and report.ref_event_id == "fdh-tx-1"
    assert report.ts - decoded[1].ts == 7 * 86_400_000
    assert report.user_id == "fdh-c4961"
    assert "skipped 1 zero-amount" in result.output
    got = [msgspec.json.decode(line) for line in labels.read_bytes().splitlines()]
    assert [(g["event_id"], g["scenario"]) for g in got] == [
        ("fdh-tx-1", "fdh_compromised_card"),
        ("fdh-tx-3", "fdh_amount_over_220"),
    ]


def test_rows_out_of_time_order_are_refused(tmp_path: Path) -> None:
    raw = _raw(tmp_path, [RAW[1], RAW[0]])
    result = CliRunner().invoke(app, ["import-fdh", str(raw), "-o", str(tmp_path / "e.jsonl")])
    assert result.exit_code == 2
    assert "not in time order" in result.output


def test_another_file_is_refused(tmp_path: Path) -> None:
    raw = tmp_path / "x.csv"
    raw.write_text("a,b,c\n1,2,3\n")
    result = CliRunner().invoke(app, ["import-fdh", str(raw), "-o", str(tmp_path / "e.jsonl")])
    assert result.exit_code == 2
    assert "not the Handbook's raw transactions" in result.output
