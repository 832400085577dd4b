"""`payguard model train` and `model evaluate` end to end on a small Handbook-shaped file."""

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from payguard.cli.main import app
from payguard.ml.model import Scorer, read_manifest
from payguard.ml.rows import Rows
from payguard.ml.train import Window

HEADER = (
    "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_TIME_SECONDS,"
    "TX_TIME_DAYS,TX_FRAUD,TX_FRAUD_SCENARIO\n"
)
START = datetime(2018, 4, 1)
DAYS = 49


def _raw(path: Path) -> Path:
    """300 customers, 60 terminals, 7 weeks; frauds: amounts over 220 and a terminal
    compromised for days 10–40 (the Handbook's scenarios 1 and 2)."""
    rng = np.random.default_rng(11)
    rows = []
    for customer in range(300):
        mean = rng.uniform(5, 100)
        for _ in range(rng.poisson(2 * DAYS)):
            second = int(rng.integers(0, DAYS * 86_400))
            amount = round(max(abs(rng.normal(mean, mean / 2)), 0.01), 2)
            if rng.random() < 0.003:
                amount = round(float(rng.uniform(221, 600)), 2)
            rows.append((second, customer, int(rng.integers(0, 60)), amount))
    rows.sort()
    lines = []
    for tid, (second, customer, terminal, amount) in enumerate(rows):
        day = second // 86_400
        scenario = 1 if amount > 220 else 2 if terminal == 7 and 10 <= day < 40 else 0
        wall = (START + timedelta(seconds=second)).isoformat(sep=" ")
        lines.append(
            f"{tid},{wall},{customer},{terminal},{amount},{second},{day},"
            f"{int(scenario > 0)},{scenario}"
        )
    path.write_text(HEADER + "\n".join(lines) + "\n")
    return path


def _imported(tmp_path: Path) -> tuple[Path, Path]:
    """The small raw file imported by the CLI: (events, labels) in `tmp_path`."""
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    raw = _raw(tmp_path / "raw.csv")
    result = CliRunner().invoke(
        app, ["import-fdh", str(raw), "-o", str(events), "--labels", str(labels)]
    )
    assert result.exit_code == 0, result.output
    return events, labels


def test_train_then_evaluate(tmp_path: Path) -> None:
    runner = CliRunner()
    events, _ = _imported(tmp_path)
    model = tmp_path / "model"
    train = [
        "model", "train", "--events", str(events), "--out", str(model),
        "--feature-set", "fdh+extras@+8h", "--train-from", "2018-04-01",
        "--train-to", "2018-04-29", "--rounds", "50", "--cache", str(tmp_path / "cache"),
    ]  # fmt: skip
    result = runner.invoke(app, train)
    assert result.exit_code == 0, result.output
    manifest = read_manifest(model)
    assert manifest.train_window == ["2018-04-01", "2018-04-22"]
    assert manifest.valid_window == ["2018-04-22", "2018-04-29"]
    assert manifest.labels_as_of == "2018-05-06"  # labels known 7 days after the window
    assert manifest.label_source == "feedback events"
    assert manifest.positives > 0 and manifest.rows > 0
    assert len(manifest.data_sha256) == 64
    assert list(tmp_path.joinpath("cache").glob("rows-*.parquet"))
    _check_thresholds(model, tmp_path / "cache", result.output)
    result = runner.invoke(
        app,
        ["model", "evaluate", "--model", str(model), "--events", str(events),
         "--cache", str(tmp_path / "cache")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "test 2018-05-06 … 2018-05-20" in result.output
    for metric in ("auc", "ap", "p@100", "cp@100"):
        assert metric in result.output
    assert "the manifest's thresholds on 2018-05-06 … 2018-05-20" in result.output
    auc = float(result.output.split("auc")[1].split()[1])
    assert auc > 0.8  # scenario 1 (amount > 220) alone is easy to rank
    half = runner.invoke(
        app,
        ["model", "evaluate", "--model", str(model), "--events", str(events),
         "--from", "2018-05-06"],
    )  # fmt: skip
    assert half.exit_code == 2  # not silently the default period (issue 14)
    assert "--from and --to together" in half.output


def _check_thresholds(model: Path, cache: Path, output: str) -> None:
    """The recorded cut-offs hold their budgets on the validation rows as the artifact
    itself (ONNX Runtime) scores them, and the report prints them."""
    manifest = read_manifest(model)
    assert set(manifest.thresholds) == {"challenge", "review"}
    (cached,) = cache.glob("rows-*.parquet")
    rows = Rows.load(cached)
    valid = Window(*manifest.valid_window).mask(rows, 8)
    score = Scorer(model).score(rows.x[valid])
    legit = rows.label_ts[valid] == -1  # every validation fraud is reported by labels_as_of
    for action, budget in (("challenge", 0.01), ("review", 0.002)):
        t = manifest.thresholds[action]
        assert t["budget"] == budget and t["legit"] == legit.sum()
        flagged = int((legit & (score >= t["threshold"])).sum())
        assert flagged == t["legit_flagged"] <= int(budget * legit.sum())
        assert f"{t['threshold']!r}" in output
    assert (
        manifest.thresholds["review"]["threshold"] >= manifest.thresholds["challenge"]["threshold"]
    )
    assert "thresholds for a budget (validation 2018-04-22 … 2018-04-29)" in output


def test_labels_file_and_missing_model(tmp_path: Path) -> None:
    runner = CliRunner()
    events, labels = _imported(tmp_path)
    model = tmp_path / "m"
    result = runner.invoke(
        app,
        ["model", "train", "--events", str(events), "--labels", str(labels), "--out", str(model),
         "--feature-set", "fdh@+8h", "--rounds", "20"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert read_manifest(model).label_source == "labels file labels.jsonl"
    assert len(read_manifest(model).columns) == 15
    result = runner.invoke(
        app, ["model", "evaluate", "--model", str(tmp_path / "nope"), "--events", str(events)]
    )
    assert result.exit_code == 2
    assert "no model artifact" in result.output
