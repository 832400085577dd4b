"""The default ruleset's figures on a held-out simulator world, pinned (issue 11).

Rules are tuned on the simulator's tuning variants only (docs/detection.md); this test holds
what they achieve on one deterministic world of *held-out* variants, so a change to the
rules, the features or the simulator that moves a detection figure is seen and the docs are
refreshed with it. Detection figures only: nothing here depends on timing.

After a deliberate change, print the new figures and update PINNED and docs/detection.md:

    .venv/bin/python tests/backtest/test_heldout_figures.py
"""

from pathlib import Path

import pytest

from payguard.config import load_settings
from payguard.engine import compile_ruleset
from payguard.features import FeatureState, load_catalog
from payguard.ruleset import Ruleset
from payguard.scenarios import SCENARIOS
from payguard.sim.suite import SuiteResult, run_suite

ROOT = Path(__file__).resolve().parents[2]
WORLD = {"users": 1_000, "days": 30, "attack_rate": 0.05}
SEED = 101

PINNED: dict[str, float] = {
    "sms_forwarding": 0.994,
    "credential_stuffing": 0.869,
    "phone_theft_takeover": 0.937,
    "merchant_credential_leak": 1.0,
    "cash_out_collusion": 1.0,
    "fake_customer_service": 0.895,
    "challenged_share": 0.003,
    "held_share": 0.001,
    "reviewed_blocked_share": 0.002,
    "strong_friction_share": 0.05,
}
"""Rounded to 0.1 % (shares) — scenario → attack money stopped, then the legitimate
friction figures under their own names."""


def _load() -> tuple[Ruleset, FeatureState]:
    features = FeatureState(load_catalog())
    text = (ROOT / "rules" / "default.yaml").read_text(encoding="utf-8")
    return compile_ruleset(text, features), features


def _figures(result: SuiteResult) -> dict[str, float]:
    out = {s.scenario: round(s.money_stopped_share or 0.0, 3) for s in result.scenarios}
    legit = result.legit
    for name in (
        "challenged_share",
        "held_share",
        "reviewed_blocked_share",
        "strong_friction_share",
    ):
        out[name] = round(getattr(legit, name) or 0.0, 3)
    return out


@pytest.fixture(scope="module")
def heldout() -> SuiteResult:
    return run_suite("heldout", [SEED], load_rules=_load, settings=load_settings(None), **WORLD)


def test_heldout_figures_are_pinned(heldout: SuiteResult) -> None:
    assert _figures(heldout) == PINNED


def test_heldout_world_covers_every_scenario(heldout: SuiteResult) -> None:
    assert {s.scenario for s in heldout.scenarios} == set(SCENARIOS)


def test_legitimate_friction_stays_within_the_issue_targets(heldout: SuiteResult) -> None:
    legit = heldout.legit
    assert (legit.challenged_share or 0.0) <= 0.010
    assert (legit.held_share or 0.0) <= 0.002
    assert (legit.reviewed_blocked_share or 0.0) <= 0.002


if __name__ == "__main__":
    result = run_suite("heldout", [SEED], load_rules=_load, settings=load_settings(None), **WORLD)
    for key, value in _figures(result).items():
        print(f"    {key!r}: {value},")
