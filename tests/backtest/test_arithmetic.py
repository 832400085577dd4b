"""Backtest arithmetic, checked against numbers computed by hand.

The ten-event file (data/ten_events.jsonl + ten_labels.jsonl) goes through the real engine
with data/ten_rules.yaml, whose rules key on event fields only, so every action is obvious:

    e01 login    u1  city Nowhere      allow (shadow nowhere_shadow)   fcs-1
    e02 payment  u1  game      100.00  challenge [sms_otp]             fcs-1   passable
    e03 payment  u1  gift_card 200.00  challenge [face,in_app_confirm] fcs-1   STOP
    e04 transfer u1            300.00  allow (after the stop)          fcs-1
    e05 payment  u2  gift_card 400.00  challenge [face,in_app_confirm] theft-1 passable
    e06 transfer u2           6000.00  review                          theft-1 STOP
    e07 payment  u3  game       50.00  challenge [sms_otp]             legit
    e08 login    u4                    allow                           legit
    e09 payment  u4  food       20.00  allow (shadow nowhere_shadow)   legit
    e10 login    u3  dev-evil          block                           legit

fake_customer_service passes sms_otp only; the phone thief passes face and in_app_confirm.
"""

from pathlib import Path

import msgspec
import pytest

from payguard.backtest import DecidedEvent, Label, RuleInfo, Summary, run_backtest, score
from payguard.backtest.fmt import cny, duration
from payguard.backtest.score import passable, stops
from payguard.config import Settings
from payguard.engine import compile_ruleset
from payguard.features import FeatureState, load_catalog
from payguard.types import LEAVING_TYPES

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def ten() -> Summary:
    settings = Settings()
    features = FeatureState(load_catalog(settings.features))
    ruleset = compile_ruleset((DATA / "ten_rules.yaml").read_text(), features)
    return run_backtest(
        DATA / "ten_events.jsonl",
        DATA / "ten_labels.jsonl",
        ruleset=ruleset,
        features=features,
        settings=settings,
    )


def test_counts(ten: Summary) -> None:
    assert (ten.events, ten.attack_events, ten.legit_events) == (10, 6, 4)
    assert ten.repeats == 0


def test_passable_challenge_does_not_stop_and_money_after_the_stop_is_stopped(
    ten: Summary,
) -> None:
    fcs = {c.campaign: c for c in ten.campaigns}["fcs-1"]
    assert fcs.stop_event_id == "e03" and fcs.stop_action == "challenge"
    assert fcs.events_to_stop == 3 and fcs.seconds_to_stop == 120
    assert fcs.money_events == 3
    assert fcs.money_fen == 100_00 + 200_00 + 300_00
    assert fcs.stopped_money_fen == 200_00 + 300_00  # e04 was allowed but came after e03
    assert fcs.own_decision_stopped_fen == 200_00
    assert fcs.loss_fen == 100_00
    assert not fcs.stopped_before_money
    assert fcs.stop_rules == ("gift_face",)


def test_thief_passes_face_so_only_the_review_stops(ten: Summary) -> None:
    theft = {c.campaign: c for c in ten.campaigns}["theft-1"]
    assert theft.stop_event_id == "e06" and theft.stop_action == "review"
    assert (theft.events_to_stop, theft.seconds_to_stop) == (2, 60)
    assert (theft.money_fen, theft.stopped_money_fen, theft.loss_fen) == (
        640_000,
        600_000,
        40_000,
    )


def test_per_scenario_and_total(ten: Summary) -> None:
    by = {r.scenario: r for r in ten.scenarios}
    assert list(by) == ["phone_theft_takeover", "fake_customer_service"]  # SCENARIOS order
    fcs = by["fake_customer_service"]
    assert (fcs.campaigns, fcs.campaigns_with_money, fcs.campaigns_stopped) == (1, 1, 1)
    assert fcs.stopped_before_money == 0 and fcs.stopped_before_money_share == 0.0
    assert fcs.money_stopped_share == pytest.approx(50_000 / 60_000)
    assert fcs.loss_fen == 10_000
    assert (fcs.median_seconds_to_stop, fcs.median_events_to_stop) == (120, 3)
    total = ten.total
    assert (total.money_fen, total.stopped_money_fen, total.loss_fen) == (700_000, 650_000, 50_000)
    assert total.median_seconds_to_stop == 90 and total.median_events_to_stop == 2.5


def test_legitimate_traffic(ten: Summary) -> None:
    legit = ten.legit
    assert (legit.events, legit.money_events) == (4, 2)
    assert legit.money_actions == {"allow": 1, "challenge": 1, "hold": 0, "review": 0, "block": 0}
    assert legit.actions == {"allow": 2, "challenge": 1, "hold": 0, "review": 0, "block": 1}
    assert legit.money_fen == 7_000
    assert legit.money_fen_by_action == {
        "allow": 2_000,
        "challenge": 5_000,
        "hold": 0,
        "review": 0,
        "block": 0,
    }
    assert (legit.customers, legit.customers_with_friction) == (2, 1)  # u3 yes, u4 no


def test_per_rule(ten: Summary) -> None:
    rules = {r.rule: r for r in ten.rules}
    assert list(rules) == ["game_sms", "gift_face", "big_transfer", "bad_device", "nowhere_shadow"]
    game, gift, big = rules["game_sms"], rules["gift_face"], rules["big_transfer"]
    assert (game.hits, game.attack_hits, game.legit_hits) == (2, 1, 1)
    assert game.precision == 0.5 and game.recall == pytest.approx(1 / 6)
    assert game.money_stopped_alone_fen == 0  # SMS is passable by the fake agent
    assert (gift.hits, gift.attack_hits, gift.campaigns_hit) == (2, 2, 2)
    assert gift.money_stopped_alone_fen == 50_000  # fcs-1 from e03; the thief passes face
    assert big.money_stopped_alone_fen == 600_000
    assert big.money_stopped_alone_share == pytest.approx(600_000 / 700_000)
    bad = rules["bad_device"]
    assert (bad.hits, bad.attack_hits, bad.precision, bad.recall) == (1, 0, 0.0, 0.0)


def test_shadow_rule_says_what_it_would_have_done(ten: Summary) -> None:
    shadow = {r.rule: r for r in ten.rules}["nowhere_shadow"]
    assert shadow.mode == "shadow" and shadow.action == "review"
    assert (shadow.hits, shadow.attack_hits, shadow.legit_hits) == (2, 1, 1)
    assert shadow.money_stopped_alone_fen == 60_000  # review at e01 stops all of fcs-1
    assert ten.legit.actions["review"] == 0  # and it changed no decision


def test_score_histogram(ten: Summary) -> None:
    h = ten.scores
    assert h.buckets[:4] == ["0", "1–9", "10–19", "20–29"] and h.buckets[-1] == "100"
    attack = dict(zip(h.buckets, h.attack, strict=True))
    legit = dict(zip(h.buckets, h.legit, strict=True))
    assert {k: v for k, v in attack.items() if v} == {"0": 2, "20–29": 1, "30–39": 2, "60–69": 1}
    assert {k: v for k, v in legit.items() if v} == {"0": 2, "20–29": 1, "50–59": 1}


# --- pure cases the file does not cover ---------------------------------------------------


def _o(
    eid: str,
    kind: str,
    action: str = "allow",
    *,
    fen: int = 0,
    ts: int = 0,
    challenge: tuple[str, ...] = (),
    rules: tuple[str, ...] = (),
) -> DecidedEvent:
    return DecidedEvent(eid, ts, kind, action, 0, fen, challenge=challenge, rules=rules)


def test_victim_reading_the_code_makes_sms_passable_for_stuffing() -> None:
    reads = Label("cs-1", "credential_stuffing", victim_reads_otp=True)
    silent = Label("cs-2", "credential_stuffing")
    assert "sms_otp" in passable(reads) and "sms_otp" not in passable(silent)
    outcomes = [
        _o("a", "transfer", "challenge", fen=1_000, challenge=("sms_otp",)),
        _o("b", "transfer", "challenge", fen=2_000, challenge=("sms_otp",)),
    ]
    summary = score(outcomes, {"a": reads, "b": silent}, [])
    by = {c.campaign: c for c in summary.campaigns}
    assert not by["cs-1"].stopped and by["cs-1"].loss_fen == 1_000
    assert by["cs-2"].stopped and by["cs-2"].loss_fen == 0


def test_label_can_pass_overrides_the_scenario_default() -> None:
    """A fake-customer-service victim paying on their own device passes face for the
    attacker; the scenario default (sms_otp only) does not."""
    own = Label("fcs-1", "fake_customer_service", can_pass=frozenset({"sms_otp", "face"}))
    plain = Label("fcs-2", "fake_customer_service")
    assert passable(own) == {"sms_otp", "face"} and passable(plain) == {"sms_otp"}
    outcomes = [
        _o("a", "payment", "challenge", fen=3_000, challenge=("face",)),
        _o("b", "payment", "challenge", fen=4_000, challenge=("face",)),
    ]
    by = {c.campaign: c for c in score(outcomes, {"a": own, "b": plain}, []).campaigns}
    assert not by["fcs-1"].stopped and by["fcs-1"].loss_fen == 3_000
    assert by["fcs-2"].stopped and by["fcs-2"].loss_fen == 0


def test_challenge_stops_only_when_no_offered_method_is_passable() -> None:
    theft = frozenset(passable(Label("c", "phone_theft_takeover")))
    assert stops("challenge", ("hardware_token",), theft)
    assert not stops("challenge", ("face", "hardware_token"), theft)
    assert stops("review", (), theft) and stops("block", (), theft)
    assert not stops("allow", (), theft)
    collusion = passable(Label("c", "cash_out_collusion"))
    assert not stops("challenge", ("hardware_token",), collusion)


def test_unknown_scenario_attacker_passes_every_challenge() -> None:
    label = Label("x-1", "brand_new_scheme")
    summary = score(
        [_o("a", "payment", "challenge", fen=500, challenge=("face",))], {"a": label}, []
    )
    assert summary.scenarios[0].scenario == "brand_new_scheme"
    assert summary.total.loss_fen == 500


def test_refunds_redeems_and_loan_applications_are_not_money() -> None:
    assert {"refund", "investment_redeem", "loan_apply"}.isdisjoint(LEAVING_TYPES)
    label = Label("c-1", "cash_out_collusion")
    outcomes = [
        _o("a", "loan_apply", fen=9_000),
        _o("b", "refund", fen=9_000),
        _o("c", "investment_redeem", fen=9_000),
        _o("d", "loan_disburse", fen=7_000),
    ]
    summary = score(outcomes, dict.fromkeys("abcd", label), [])
    assert summary.total.money_fen == 7_000 and summary.campaigns[0].money_events == 1


def test_stop_on_a_non_money_event_is_before_money() -> None:
    label = Label("s-1", "sms_forwarding")
    outcomes = [
        _o("a", "login", "review", ts=0),
        _o("b", "payment", fen=3_000, ts=5_000),
        _o("c", "otp_send", ts=9_000),
    ]
    result = score(outcomes, dict.fromkeys("abc", label), []).scenarios[0]
    assert result.stopped_before_money == 1 and result.stopped_before_money_share == 1.0
    assert result.money_stopped_share == 1.0 and result.median_events_to_stop == 1


def test_campaign_without_money_is_not_in_the_before_money_denominator() -> None:
    outcomes = [_o("a", "login", "block"), _o("b", "login")]
    labels = {"a": Label("p-1", "sms_forwarding"), "b": Label("p-2", "sms_forwarding")}
    result = score(outcomes, labels, []).scenarios[0]
    assert (result.campaigns, result.campaigns_stopped, result.campaigns_with_money) == (2, 1, 0)
    assert result.stopped_before_money_share is None and result.money_stopped_share is None


def test_policy_reasons_get_their_own_row() -> None:
    outcomes = [_o("a", "payment", "review", fen=1, rules=("r1", "policy:SCORE_THRESHOLD"))]
    rules = score(outcomes, {}, [RuleInfo("r1", "live", "challenge", ("face",))]).rules
    assert [(r.rule, r.mode, r.legit_hits) for r in rules] == [
        ("r1", "live", 1),
        ("policy:SCORE_THRESHOLD", "policy", 1),
    ]
    assert rules[1].money_stopped_alone_fen is None


def test_display_formats_money_from_integer_fen() -> None:
    assert cny(123_456_789) == "1,234,567.89" and cny(5) == "0.05" and cny(-250) == "-2.50"
    assert duration(45) == "45 s" and duration(90) == "1.5 min" and duration(None) == "—"


def test_a_hold_stops_only_when_revoked_before_release() -> None:
    theft = Label("t-1", "phone_theft_takeover")
    kept = Label("t-2", "phone_theft_takeover")
    outcomes = [
        msgspec.structs.replace(_o("a", "transfer", "hold", fen=5_000), revoked=True),
        _o("b", "transfer", fen=1_000, ts=1),
        _o("c", "transfer", "hold", fen=7_000),
    ]
    summary = score(outcomes, {"a": theft, "b": theft, "c": kept}, [])
    by = {c.campaign: c for c in summary.campaigns}
    assert by["t-1"].stopped and by["t-1"].stop_action == "hold" and by["t-1"].loss_fen == 0
    assert by["t-1"].own_decision_stopped_fen == 5_000
    assert not by["t-2"].stopped and by["t-2"].loss_fen == 7_000
    assert summary.scenarios[0].stopped_by == {
        "block": 0,
        "review": 0,
        "revoked hold": 1,
        "challenge": 0,
    }


def test_methods_offered_and_how_campaigns_were_stopped_per_scenario() -> None:
    fcs = Label("f-1", "fake_customer_service")
    stuffing = Label("s-1", "credential_stuffing")
    outcomes = [
        _o("a", "payment", "challenge", fen=100, challenge=("sms_otp",)),  # passed: read out
        _o("b", "payment", "challenge", fen=100, challenge=("face", "hardware_token")),
        _o("c", "transfer", "challenge", fen=100, challenge=("face", "sms_otp")),
    ]
    summary = score(outcomes, {"a": fcs, "b": fcs, "c": stuffing}, [])
    fake, stuffed = summary.scenarios[1], summary.scenarios[0]
    assert (stuffed.scenario, fake.scenario) == ("credential_stuffing", "fake_customer_service")
    assert fake.challenged_events == 2
    assert fake.offered == {"face": 1, "hardware_token": 1, "sms_otp": 1}
    assert fake.stopped_by["challenge"] == 1 and fake.stopped_by_sms_otp == 0
    # the stuffing attacker does not read the code out: a challenge with SMS stops them
    assert stuffed.stopped_by_sms_otp == 1 and summary.total.stopped_by_sms_otp == 1
    assert summary.total.offered == {"face": 2, "hardware_token": 1, "sms_otp": 2}


def test_friction_beyond_sms_and_cold_start_days() -> None:
    """A challenge offering sms_otp is routine; one without it, a hold or a review is not.
    Days count from the first legitimate money event; pooled shares are exact fractions."""
    day = 86_400_000
    outcomes = [
        DecidedEvent("a", 0, "payment", "challenge", 0, 100, "u1", challenge=("sms_otp", "face")),
        DecidedEvent("b", day // 2, "payment", "allow", 0, 100, "u2"),
        DecidedEvent("c", day + 1, "payment", "challenge", 0, 100, "u2", challenge=("face",)),
        DecidedEvent("d", 3 * day, "login", "review", 0, 0, "u3"),
        DecidedEvent("e", 7 * day, "payment", "allow", 0, 100, "u4"),
        DecidedEvent("f", 8 * day, "transfer", "hold", 0, 100, "u4"),
        DecidedEvent("g", 9 * day, "payment", "allow", 0, 100, "u4"),
        DecidedEvent("h", 9 * day, "payment", "allow", 0, 100, "u4"),
    ]
    legit = score(outcomes, {}, []).legit
    assert legit.customers_with_friction == 4
    assert legit.customers_with_strong_friction == 3  # u1's challenge offered sms_otp
    assert legit.daily_friction[:2] == [(1, 2), (1, 1)]
    assert legit.cold_start_friction == 2 / 3
    assert legit.steady_friction == 1 / 4
    assert len(legit.daily_friction) == 10 and legit.daily_friction[3] == (0, 0)
