"""`payguard backtest` end to end on a small simulated dataset, and its bad-input paths."""

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from payguard.cli.main import app
from payguard.sim import SimConfig, simulate

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    where = tmp_path_factory.mktemp("sim")
    events, labels = where / "events.jsonl", where / "labels.jsonl"
    simulate(SimConfig(users=60, days=5, seed=3), events, labels)
    return events, labels


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["backtest", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_end_to_end(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    events, labels = dataset
    html, summary = tmp_path / "report.html", tmp_path / "summary.json"
    code, stdout, _ = _run(
        str(events),
        "--labels",
        str(labels),
        "--ruleset",
        str(ROOT / "rules" / "default.yaml"),
        "--html",
        str(html),
        "--json",
        str(summary),
    )
    assert code == 0
    for section in ("Attack campaigns", "Legitimate traffic", "Rules", "Score distribution"):
        assert section in stdout
    data = json.loads(summary.read_text())
    label_lines = labels.read_text().splitlines()
    assert data["events"] == len(events.read_text().splitlines())
    assert data["attack_events"] == len(label_lines)
    assert data["total"]["campaigns"] == len({json.loads(x)["campaign"] for x in label_lines})
    assert {r["scenario"] for r in data["scenarios"]} == {
        json.loads(x)["scenario"] for x in label_lines
    }
    assert any(r["rule"] == "daily_limit" for r in data["rules"])
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<svg") >= 4 and "<rect" in page
    assert "<script" not in page and not re.search(r"(src|href)=", page)  # self-contained
    assert data["ruleset"] in page


def test_report_carries_no_clear_pii(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    events, labels = dataset
    html, summary = tmp_path / "r.html", tmp_path / "r.json"
    code, stdout, _ = _run(
        str(events), "--labels", str(labels), "--html", str(html), "--json", str(summary)
    )
    assert code == 0
    raw = events.read_text()
    secrets = set(re.findall(r'"number":"(\d{12,19})"', raw))
    secrets |= set(re.findall(r'"phone":"(\+86\d+)"', raw))
    secrets |= set(re.findall(r'"id_number":"(\w{18})"', raw))
    assert secrets
    for text in (stdout, html.read_text(), summary.read_text()):
        assert not [s for s in secrets if s in text]


def test_missing_labels_file(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    code, _, stderr = _run(str(dataset[0]), "--labels", str(tmp_path / "nope.jsonl"))
    assert code == 2
    assert "no such labels file" in stderr and "Traceback" not in stderr


def test_label_referencing_an_unknown_event(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    lines = dataset[1].read_text().splitlines()
    ghost = '{"event_id": "ghost-1", "campaign": "c", "scenario": "sms_forwarding", "attack": true}'
    labels.write_text("\n".join([*lines[:2], ghost, *lines[2:]]) + "\n")
    code, _, stderr = _run(str(dataset[0]), "--labels", str(labels))
    assert code == 2
    assert "labels.jsonl line 3: event 'ghost-1' is not in" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("not json", "labels.jsonl line 1: "),
        ('{"event_id": "e01", "scenario": "sms_forwarding"}', "missing required field `campaign`"),
        (
            '{"event_id": "e01", "campaign": "a", "scenario": "x", "can_pass": ["telepathy"]}',
            "Invalid enum value 'telepathy' - at `$.can_pass[0]`",
        ),
    ],
)
def test_malformed_label_line(line: str, expected: str, tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text(line + "\n")
    code, _, stderr = _run(str(DATA / "ten_events.jsonl"), "--labels", str(labels))
    assert code == 2 and expected in stderr and "Traceback" not in stderr


def test_label_lines_carry_variant_and_can_pass(tmp_path: Path) -> None:
    """`variant` is read past, `can_pass` becomes the label's own capability set, and the
    older `victim_reads_otp` still works."""
    from payguard.backtest.run import load_labels

    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        '{"event_id": "e01", "campaign": "a", "scenario": "fake_customer_service",'
        ' "variant": "fake_customer_service/victim_own_device", "attack": true,'
        ' "can_pass": ["face", "in_app_confirm", "sms_otp"]}\n'
        '{"event_id": "e02", "campaign": "b", "scenario": "credential_stuffing",'
        ' "victim_reads_otp": true}\n'
    )
    by = load_labels(labels).by_event
    assert by["e01"].can_pass == {"face", "in_app_confirm", "sms_otp"}
    assert by["e02"].can_pass is None and by["e02"].victim_reads_otp


def test_conflicting_labels(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        '{"event_id": "e01", "campaign": "a", "scenario": "sms_forwarding"}\n'
        '{"event_id": "e02", "campaign": "a", "scenario": "credential_stuffing"}\n'
    )
    code, _, stderr = _run(str(DATA / "ten_events.jsonl"), "--labels", str(labels))
    assert code == 2 and "line 2: campaign 'a' is in scenario 'sms_forwarding'" in stderr


def test_invalid_event_line(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    good = (DATA / "ten_events.jsonl").read_text().splitlines()
    good[3] = good[3].replace('"amount": "300.00", ', "")
    events.write_text("\n".join(good) + "\n")
    code, _, stderr = _run(str(events), "--labels", str(DATA / "ten_labels.jsonl"))
    assert code == 2
    assert "line 4: event e04: amount: required" in stderr and "Traceback" not in stderr


def test_missing_ruleset_file(tmp_path: Path) -> None:
    code, _, stderr = _run(
        str(DATA / "ten_events.jsonl"),
        "--labels",
        str(DATA / "ten_labels.jsonl"),
        "--ruleset",
        str(tmp_path / "none.yaml"),
    )
    assert code == 2 and "no such ruleset file" in stderr


def _suite(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["backtest-suite", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_suite_pools_worlds_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "suite.json"
    code, stdout, _ = _suite(
        "--variants", "tuning", "--seeds", "1-2", "--users", "60", "--days", "4",
        "--json", str(out),
    )  # fmt: skip
    assert code == 0, stdout
    assert "tuning variants, seeds 1, 2" in stdout and "cold start / steady state" in stdout
    pooled = json.loads(out.read_text())
    assert pooled["seeds"] == [1, 2] and len(pooled["worlds"]) == 2
    legit = pooled["legit"]
    assert legit["money_events"] == sum(w["legit"]["money_events"] for w in pooled["worlds"])
    for scenario in pooled["scenarios"]:
        worlds = [s for w in pooled["worlds"] for s in w["scenarios"]]
        money = sum(s["money_fen"] for s in worlds if s["scenario"] == scenario["scenario"])
        assert scenario["money_fen"] == money


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--variants", "held"), "--variants"),
        (("--seeds", "1,x"), "--seeds"),
        (("--seeds", ","), "--seeds"),
    ],
)
def test_suite_bad_input_exits_2_naming_the_option(args: tuple[str, ...], field: str) -> None:
    code, stdout, stderr = _suite(*args)
    assert code == 2
    assert field in stdout + stderr
