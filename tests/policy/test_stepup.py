"""The step-up choice for each risk signal: never an SMS code or a call to the number while
the line may be in other hands, in-app confirmation only on a long-known device nobody
reported, review when nothing trustworthy is left, and a reason for every method left out."""

from typing import Any

import pytest

from payguard.policy import decide
from payguard.policy.config import PolicyConfig, StepUpConfig
from payguard.policy.stepup import PHONE_SIGNALS, choose
from payguard.rules import RuleHit

from .test_decide import CALM

EVERY_METHOD = {"face", "in_app_confirm", "callback", "hardware_token", "sms_otp"}
LINE_SIGNALS = [name for name, _ in PHONE_SIGNALS]


def _challenge(*methods: str) -> RuleHit:
    return RuleHit(
        rule="r",
        status="hit",
        mode="live",
        action="challenge",
        score=10,
        code="R",
        reason="r reason",
        challenge=tuple(methods),  # type: ignore[arg-type]
    )


def _with(**changes: Any) -> dict[str, Any]:
    return {**CALM, **changes}


def test_calm_line_and_known_device_offer_everything_in_preference_order() -> None:
    chosen = choose(set(EVERY_METHOD), CALM, StepUpConfig())  # type: ignore[arg-type]
    assert chosen.methods == ["in_app_confirm", "face", "hardware_token", "sms_otp", "callback"]
    assert chosen.excluded == []


@pytest.mark.parametrize(
    ("signal", "words"),
    [
        ("minutes_since_sim_swap_by_user_72h", "SIM was swapped"),
        ("minutes_since_line_suspend_by_user_72h", "reported lost"),
        ("minutes_since_line_resume_by_user_72h", "loss report on the line was undone"),
        ("minutes_since_forwarding_by_user_72h", "forwarding"),
        ("minutes_since_phone_change_by_user_72h", "phone number was changed"),
    ],
)
def test_each_phone_signal_rules_out_sms_and_callback(signal: str, words: str) -> None:
    chosen = choose(set(EVERY_METHOD), _with(**{signal: 125}), StepUpConfig())  # type: ignore[arg-type]
    assert "sms_otp" not in chosen.methods and "callback" not in chosen.methods
    assert {"face", "hardware_token"} <= set(chosen.methods)
    left_out = {e.method: e.why for e in chosen.excluded}
    assert set(left_out) >= {"sms_otp", "callback"}
    assert words in left_out["sms_otp"] and "2 h ago" in left_out["sms_otp"]


@pytest.mark.parametrize("signal", LINE_SIGNALS)
def test_a_signal_older_than_the_window_no_longer_counts(signal: str) -> None:
    config = StepUpConfig(phone_risk_minutes=60)
    chosen = choose({"sms_otp"}, _with(**{signal: 61}), config)
    assert chosen.methods == ["sms_otp"]
    assert choose({"sms_otp"}, _with(**{signal: 59}), config).methods == []


def test_in_app_confirm_needs_a_long_known_unreported_device() -> None:
    config = StepUpConfig(known_device_days=30)
    young = choose({"in_app_confirm"}, _with(age_any_by_user_device=29 * 1440), config)
    assert young.methods == [] and "29 days, under 30 days" in young.excluded[0].why
    old = choose({"in_app_confirm"}, _with(age_any_by_user_device=30 * 1440), config)
    assert old.methods == ["in_app_confirm"]
    reported = choose({"in_app_confirm"}, _with(count_fraud_label_by_device_90d=1), config)
    assert reported.methods == [] and "fraud report" in reported.excluded[0].why
    lost = choose({"in_app_confirm"}, _with(minutes_since_line_suspend_by_user_72h=30), config)
    assert lost.methods == [] and "reported lost" in lost.excluded[0].why


def test_face_and_hardware_token_survive_every_signal() -> None:
    worst = _with(
        **{name: 1 for name in LINE_SIGNALS},
        age_any_by_user_device=0,
        count_fraud_label_by_device_90d=3,
    )
    chosen = choose(set(EVERY_METHOD), worst, StepUpConfig())  # type: ignore[arg-type]
    assert chosen.methods == ["face", "hardware_token"]
    assert {e.method for e in chosen.excluded} == {"sms_otp", "callback", "in_app_confirm"}


def test_unknown_history_counts_against_the_method_it_would_vouch_for() -> None:
    chosen = choose(set(EVERY_METHOD), {}, StepUpConfig())  # type: ignore[arg-type]
    assert chosen.methods == ["face", "hardware_token"]
    assert all("unknown" in e.why for e in chosen.excluded)


def test_methods_missing_from_prefer_are_never_offered() -> None:
    config = StepUpConfig(prefer=["face"])
    chosen = choose({"face", "sms_otp"}, CALM, config)
    assert chosen.methods == ["face"]
    assert [e.method for e in chosen.excluded] == ["sms_otp"]


def test_only_untrustworthy_methods_accepted_goes_to_review_saying_why() -> None:
    signals = _with(minutes_since_sim_swap_by_user_72h=10)
    outcome = decide([_challenge("sms_otp", "callback")], PolicyConfig(), lambda: signals)
    assert outcome.action == "review" and outcome.challenge is None
    codes = [r.code for r in outcome.reasons]
    assert codes == ["R", "STEP_UP_EXCLUDED", "STEP_UP_EXCLUDED", "NO_TRUSTED_CHALLENGE"]
    assert "sms_otp not offered: the SIM was swapped 10 min ago" in outcome.reasons[1].text


def test_a_challenge_that_keeps_a_method_still_says_what_it_left_out() -> None:
    signals = _with(minutes_since_forwarding_by_user_72h=5)
    outcome = decide([_challenge("sms_otp", "face")], PolicyConfig(), lambda: signals)
    assert outcome.action == "challenge" and outcome.challenge == ["face"]
    assert [r.code for r in outcome.reasons] == ["R", "STEP_UP_EXCLUDED"]


def test_signals_are_read_only_for_a_challenge() -> None:
    def never() -> dict[str, Any]:
        raise AssertionError("step-up features read for an event nobody challenges")

    block = RuleHit(
        rule="b", status="hit", mode="live", action="block", score=1, code="B", reason="b"
    )
    assert decide([block], PolicyConfig(), never).action == "block"
    assert decide([], PolicyConfig(), never).action == "allow"
