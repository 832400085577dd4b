"""Training across simulated worlds: worlds stay apart, rows stay point-in-time, the
thresholds respect the budget on the calibration worlds, and the artifact is one the
engine serves."""

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from payguard.cli.main import app
from payguard.config import Settings
from payguard.engine import Engine
from payguard.events import EventDecoder, Tokenizer
from payguard.features import DEFAULT_CATALOG_PATH, FeatureState, load_catalog
from payguard.ml.feature_set import default_feature_set
from payguard.ml.model import Scorer, read_manifest
from payguard.ml.rows import NO_LABEL, Rows, referenced_ids, rows_from
from payguard.ml.serve import load_model
from payguard.ml.thresholds import allowed_rows
from payguard.sim import simulate
from payguard.sim.config import parse_seeds
from payguard.sim.training import (
    WorldRows,
    WorldSpec,
    stack,
    tagged,
    train_worlds,
    world_rows,
)

KEY = b"0123456789abcdef"
TINY = WorldSpec("tuning", users=120, days=8, attack_rate=0.1)
FS = default_feature_set()


@cache
def _worlds(seeds: tuple[int, ...]) -> WorldRows:
    return world_rows(TINY, seeds, FS, KEY)


def _world(data: WorldRows, seed: int) -> Rows:
    return data.rows.take(data.of([seed]))


def test_each_world_is_built_on_its_own_fresh_state() -> None:
    """A world's rows are the same whether it is built alone or after other worlds, in
    any order: nothing of one world's history reaches another's."""
    alone = _worlds((2,))
    together = _worlds((1, 2, 3))
    reversed_ = _worlds((3, 2, 1))
    for other in (together, reversed_):
        assert np.array_equal(_world(other, 2).x, alone.rows.x)
        assert list(_world(other, 2).event_id) == list(alone.rows.event_id)
    assert np.array_equal(_world(together, 1).x, _world(reversed_, 1).x)


def test_row_identity_never_collides_across_worlds() -> None:
    data = _worlds((1, 2, 3))
    assert len(set(data.rows.event_id)) == len(data)
    assert all(
        str(e).startswith(f"tuning-{s}/")
        for e, s in zip(data.rows.event_id, data.seed, strict=True)
    )
    # Even worlds whose own ids coincide (same seed, other variant set) stay apart.
    rows = _world(data, 1)
    twice = stack([(1, tagged(rows, "tuning-1")), (1, tagged(rows, "heldout-1"))])
    assert len(set(twice.rows.event_id)) == 2 * len(rows)
    assert len(set(twice.rows.card)) == 2 * len(set(rows.card))


def test_labels_are_each_worlds_own_ground_truth(tmp_path: Path) -> None:
    data = _worlds((1, 2, 3))
    for seed in (1, 2, 3):
        events, labels = tmp_path / f"e{seed}", tmp_path / f"l{seed}"
        simulate(TINY.config(seed), events, labels)
        attacks = {
            f"tuning-{seed}/{line['event_id']}"
            for line in map(json.loads, labels.read_text().splitlines())
            if line.get("attack", True)
        }
        rows = _world(data, seed)
        labelled = {
            str(e) for e, t in zip(rows.event_id, rows.label_ts, strict=True) if t != NO_LABEL
        }
        assert labelled == attacks & set(map(str, rows.event_id))
        assert labelled  # every tiny world has attack money


def test_a_worlds_rows_ignore_its_own_later_events(tmp_path: Path) -> None:
    """Point in time within a world: cutting the world's events file at any time leaves
    every earlier row as it was."""
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    simulate(TINY.config(4), events, labels)
    decode = EventDecoder(Tokenizer(KEY)).decode
    decoded = [decode(line) for line in events.read_bytes().splitlines() if line.strip()]
    wanted = referenced_ids(events)
    full = rows_from(decoded, FS, wanted)
    money = [i for i, e in enumerate(decoded) if e.type in FS.types]
    for cut in (money[len(money) // 3], money[2 * len(money) // 3]):  # mid-history cuts
        part = rows_from(decoded[:cut], FS, wanted)
        assert len(part) > 0
        assert np.array_equal(full.x[: len(part)], part.x)
        assert list(full.event_id[: len(part)]) == list(part.event_id)


def test_thresholds_respect_the_budget_on_the_calibration_worlds(tmp_path: Path) -> None:
    data = _worlds((1, 2, 3))
    budgets = {"challenge": 0.02, "review": 0.005}
    manifest = train_worlds(data, FS, tmp_path / "m", TINY, [3], budgets=budgets, rounds=30)
    assert manifest.worlds["fit_seeds"] == [1, 2]
    assert manifest.worlds["calibration_seeds"] == [3]
    fit = ~data.of([3])
    assert manifest.rows == int(fit.sum())  # the calibration world fitted nothing
    assert manifest.positives == int((data.rows.label_ts[fit] != NO_LABEL).sum())
    calibration = _world(data, 3)
    score = Scorer(tmp_path / "m").score(calibration.x)  # as served, through ONNX Runtime
    legit = calibration.label_ts == NO_LABEL
    for action, budget in budgets.items():
        t = manifest.thresholds[action]["threshold"]
        flagged = int((score[legit] >= t).sum())
        assert flagged <= allowed_rows(budget, int(legit.sum()))
        assert flagged == manifest.thresholds[action]["legit_flagged"]
        # No lower cut-off at an actual legitimate score would still fit the budget.
        lower = score[legit][score[legit] < t]
        if len(lower):
            assert int((score[legit] >= lower.max()).sum()) > allowed_rows(budget, int(legit.sum()))
    assert (
        manifest.thresholds["review"]["threshold"] >= manifest.thresholds["challenge"]["threshold"]
    )


def test_train_worlds_refuses_a_split_without_fit_or_calibration(tmp_path: Path) -> None:
    data = _worlds((1, 2, 3))
    with pytest.raises(ValueError, match="among the worlds"):
        train_worlds(data, FS, tmp_path / "m", TINY, [9])
    with pytest.raises(ValueError, match="leave at least one"):
        train_worlds(data, FS, tmp_path / "m", TINY, [1, 2, 3])


def test_cli_trains_across_worlds_an_artifact_the_engine_serves(tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = CliRunner().invoke(
        app,
        [
            "model", "train", "--worlds", "tuning", "--seeds", "1-3", "--users", "120",
            "--days", "8", "--attack-rate", "0.1", "--rounds", "30", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    assert manifest.feature_set == "default@+8h"
    assert manifest.worlds["calibration_seeds"] == [3]
    assert set(manifest.thresholds) == {"challenge", "review"}
    assert manifest.thresholds["challenge"]["budget"] == 0.005
    state = FeatureState(load_catalog(DEFAULT_CATALOG_PATH))
    server, why = load_model(out, state, DEFAULT_CATALOG_PATH)
    assert server is not None, why
    # The engine, pointed at it as PAYGUARD_MODEL would, scores money events with it.
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    simulate(TINY.config(101), events, labels)
    ruleset = tmp_path / "rules.yaml"
    ruleset.write_text(
        'version: t\nrules:\n  - id: m\n    events: [payment]\n    when: "model.score >= 2.0"\n'
        "    action: review\n    reason: never fires\n"
    )
    engine = Engine.open(Settings(data_dir=tmp_path / "data", ruleset=ruleset, model=out))
    scored: list[tuple[str, object]] = []
    for line in events.read_bytes().splitlines()[:3000]:
        decision, _ = engine.process(engine.decoder.decode(line))
        if decision.model is not None:
            scored.append((decision.model, decision.model_score))
    engine.close()
    assert scored
    assert {version for version, _ in scored} == {manifest.version}
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for _, s in scored)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--worlds", "heldout"], "held-out variants judge"),
        (["--worlds", "tuning", "--events", "x.jsonl"], "not both"),
        ([], "either --events"),
        (["--worlds", "tuning", "--seeds", "one"], "--seeds"),
        (["--worlds", "tuning", "--seeds", "1,2", "--calibration-seeds", "1,2"], "some, not all"),
    ],
)
def test_cli_names_the_bad_option(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["model", "train", "--out", str(tmp_path / "m"), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_parse_seeds() -> None:
    assert parse_seeds("1-4,9") == [1, 2, 3, 4, 9]
    assert parse_seeds("3, 1,3") == [3, 1]
    for bad in ("", "a", "1-b"):
        with pytest.raises(ValueError):
            parse_seeds(bad)
