"""Reason codes: per-feature contributions add up to the score, the feature that drives
fraud is the top reason, and features read as words."""

from pathlib import Path

import numpy as np
import pytest

from payguard.config import load_settings
from payguard.events import EventDecoder, Tokenizer
from payguard.features import DEFAULT_CATALOG_PATH, FeatureState, load_catalog
from payguard.ml.explain import Explainer, describe, duration, specs_by_name
from payguard.ml.feature_set import FDH_CATALOG_PATH
from payguard.ml.model import Manifest, Scorer, margin_of, save_artifact, train_booster
from payguard.ml.serve import load_model

from .test_serve import _trained


def _artifact(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """Fraud is driven by column 0 alone (columns 1–3 are noise)."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(6000, 4)).astype(np.float32)
    y = (x[:, 0] + rng.normal(scale=0.3, size=6000) > 2.0).astype(int)
    booster = train_booster(x, y, {"num_leaves": 7}, rounds=60)
    manifest = Manifest(
        version="", feature_set="fdh@+8h", columns=["a", "b", "c", "d"],
        catalog_sha256="0" * 64, train_window=["2018-07-25", "2018-08-01"],
        valid_window=["2018-08-01", "2018-08-08"], label_source="feedback events",
        labels_as_of="2018-08-15", data_sha256="1" * 64, params={}, rounds=60,
        platt={"a": 0.7, "b": -0.4},
    )  # fmt: skip
    save_artifact(tmp_path, booster, manifest)
    return tmp_path, x


def test_contributions_add_up_to_the_served_score(tmp_path: Path) -> None:
    directory, x = _artifact(tmp_path)
    contributions = Explainer(directory).contributions(x[:300])
    assert contributions.shape == (300, 5)
    served_logit = margin_of(Scorer(directory).score(x[:300]))
    assert np.abs(contributions.sum(axis=1) - served_logit).max() < 1e-4


def test_the_driving_feature_is_the_top_reason(tmp_path: Path) -> None:
    directory, x = _artifact(tmp_path)
    explainer = Explainer(directory)
    score = Scorer(directory).score(x)
    for i in np.argsort(-score)[:20]:  # the highest scores: column 0 is large
        reasons = explainer.reasons(x[i], k=2)
        assert reasons[0].feature == "a"
        assert reasons[0].value == pytest.approx(float(x[i, 0]))
        assert all(r.contribution > 0 for r in reasons)
        assert [r.contribution for r in reasons] == sorted(
            (r.contribution for r in reasons), reverse=True
        )
    low = int(np.argmin(x[:, 0]))  # column 0 far below the fraud region lowers the score
    assert "a" not in [r.feature for r in explainer.reasons(x[low], k=4)]


def test_features_in_words() -> None:
    specs = specs_by_name(load_catalog(DEFAULT_CATALOG_PATH))
    assert describe("count_login_fail_by_ip_1h", 3, specs) == (
        "3 login fail events by this ip in the last 1h"
    )
    assert describe("minutes_since_phone_risk_by_user_72h", 1_000_000_000, specs) == (
        "no phone risk event by this user in the last 72h"
    )
    assert describe("minutes_since_phone_risk_by_user_72h", 90, specs) == (
        "last phone risk event by this user 1.5 h ago"
    )
    assert describe("is_new_device_any_by_user_90d", 1, specs) == (
        "a device new to this user over 90d of any events"
    )
    assert describe("age_any_by_user_device", 2, specs) == (
        "first any event by this user and device 2 min ago"
    )
    assert describe("amount", 1234.5, specs) == "amount 1,234.50 CNY"
    assert describe("local_weekday", 6, specs) == "on a Sunday"
    assert describe("TX_AMOUNT", 12.5, specs) == "TX_AMOUNT = 12.5"
    assert [duration(m) for m in (0.5, 45, 150, 1440 * 3, 1440 * 40)] == [
        "under a minute", "45 min", "2.5 h", "3 d", "40 d",
    ]  # fmt: skip


def test_the_server_explains_a_live_event(tmp_path: Path) -> None:
    """Through the engine's own feature state: the reasons are those of the training row."""
    events, model = _trained(tmp_path, "fdh@+8h")
    key = load_settings().token_key.encode()
    server, message = load_model(
        model, FeatureState(load_catalog(FDH_CATALOG_PATH)), FDH_CATALOG_PATH
    )
    assert server is not None, message
    decoder = EventDecoder(Tokenizer(key))
    explainer = Explainer(model)
    explained = 0
    referenced = {}
    with events.open("rb") as fh:
        for line in fh:
            event = decoder.decode(line)
            score = server.score(event)
            if score is not None and score >= 0.5:
                reasons = server.explain(event, k=3)
                row = server.row(event)
                assert row is not None and reasons
                assert [r.feature for r in reasons] == [
                    r.feature for r in explainer.reasons(row, k=3)
                ]
                assert all(r.text for r in reasons)
                explained += 1
            if event.type == "payment":
                referenced[event.event_id] = event
            server.state.update(event, referenced.get(event.ref_event_id or ""))
    assert explained > 0
    assert server.explain(decoder.decode(_not_scored()), k=3) == []


def _not_scored() -> bytes:
    return (
        b'{"event_id":"x-1","type":"login","ts":"2018-05-01T00:00:00+08:00",'
        b'"user_id":"fdh-c1","success":true}'
    )
