"""Policy: ordered outcomes, capped score, common challenge methods filtered by the
step-up choice, holds, shadow never acts."""

from collections.abc import Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from payguard.features import NEVER
from payguard.policy import decide
from payguard.policy.config import PolicyConfig
from payguard.policy.stepup import FEATURES, PHONE_SIGNALS
from payguard.rules import RuleHit
from payguard.types import ACTION_RANK, CHALLENGE_METHODS

CALM: dict[str, Any] = {name: NEVER for name, _ in PHONE_SIGNALS} | {
    "age_any_by_user_device": 400 * 1440,
    "count_fraud_label_by_device_90d": 0,
}
"""Step-up features of a long-known device on a line with no recent signal."""
assert set(CALM) == FEATURES


def calm() -> Mapping[str, Any]:
    return CALM


def _hit(
    rule: str,
    action: str,
    score: int = 10,
    challenge: tuple[str, ...] = (),
    mode: str = "live",
    status: str = "hit",
) -> RuleHit:
    return RuleHit(
        rule=rule,
        status=status,
        mode=mode,
        action=action,
        score=score,  # type: ignore[arg-type]
        code=rule,
        reason=f"{rule} reason",
        challenge=challenge,
    )  # type: ignore[arg-type]


hits_strategy = st.lists(
    st.builds(
        _hit,
        rule=st.sampled_from(["a", "b", "c", "d"]),
        action=st.sampled_from(["allow", "challenge", "hold", "review", "block"]),
        score=st.integers(0, 100),
        challenge=st.lists(st.sampled_from(CHALLENGE_METHODS), min_size=1, unique=True).map(tuple),
        mode=st.sampled_from(["live", "live", "shadow"]),
        status=st.sampled_from(["hit", "hit", "error"]),
    ),
    max_size=6,
)


@given(hits_strategy, st.booleans(), st.booleans())
def test_outcome_matches_brute_force_policy(
    hits: list[RuleHit], line_at_risk: bool, new_device: bool
) -> None:
    signals = dict(CALM)
    if line_at_risk:
        signals["minutes_since_sim_swap_by_user_72h"] = 90
    if new_device:
        signals["age_any_by_user_device"] = 5
    outcome = decide(list(hits), PolicyConfig(), lambda: signals)
    live = [h for h in hits if h.status == "hit" and h.mode == "live"]
    assert outcome.score == min(100, sum(h.score for h in live))
    expected = max((ACTION_RANK[h.action] for h in live), default=0)
    asking = [set(h.challenge) for h in live if h.action == "challenge"]
    trusted = set(CHALLENGE_METHODS)
    if line_at_risk:
        trusted -= {"sms_otp", "callback"}
    if new_device:
        trusted -= {"in_app_confirm"}
    offered = set.intersection(*asking) & trusted if asking else set()
    if expected == ACTION_RANK["challenge"] and not offered:
        expected = ACTION_RANK["review"]
    assert ACTION_RANK[outcome.action] == expected
    if outcome.action == "challenge":
        assert outcome.challenge and set(outcome.challenge) == offered
        order = PolicyConfig().step_up.prefer
        assert outcome.challenge == sorted(outcome.challenge, key=order.index)
    else:
        assert outcome.challenge is None
    assert (outcome.hold_hours is not None) == (outcome.action == "hold")
    assert {s.rule for s in outcome.shadow} == {
        h.rule for h in hits if h.status == "hit" and h.mode == "shadow"
    }


def test_shadow_hit_never_changes_the_action() -> None:
    outcome = decide([_hit("s", "block", 90, mode="shadow")], PolicyConfig(), calm)
    assert outcome.action == "allow" and outcome.score == 0
    assert [s.rule for s in outcome.shadow] == ["s"]


def test_no_common_method_escalates_to_review_with_reason() -> None:
    outcome = decide(
        [
            _hit("a", "challenge", challenge=("sms_otp",)),
            _hit("b", "challenge", challenge=("face",)),
        ],
        PolicyConfig(),
        calm,
    )
    assert outcome.action == "review"
    assert outcome.reasons[-1].code == "NO_TRUSTED_CHALLENGE"


def test_score_threshold_escalates_and_says_so() -> None:
    outcome = decide(
        [_hit("a", "challenge", 60, ("face",)), _hit("b", "allow", 40)],
        PolicyConfig(review_at=90),
        calm,
    )
    assert outcome.action == "review" and outcome.score == 100
    assert outcome.reasons[-1].code == "SCORE_THRESHOLD"


def test_reasons_are_ordered_block_first() -> None:
    outcome = decide(
        [_hit("low", "challenge", 5, ("face",)), _hit("top", "block", 1)], PolicyConfig(), calm
    )
    assert [r.rule for r in outcome.reasons] == ["top", "low"]
