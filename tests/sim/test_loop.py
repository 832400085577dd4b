"""The closed loop: actors' behaviour, a small world end to end, determinism, the CLI."""

import dataclasses
import json
import random
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from payguard.backtest import run_backtest
from payguard.cli.main import app
from payguard.config import Settings
from payguard.engine import compile_ruleset
from payguard.events import EventDecoder, Tokenizer
from payguard.features import FeatureState, load_catalog
from payguard.scenarios import ATTACKER_CAN_PASS, default_can_pass, owner_acts
from payguard.sim import SimConfig
from payguard.sim.loop import Attacker, ClosedLoop, Customer, LoopConfig, LoopReport
from payguard.sim.loop.actors import Answer
from payguard.sim.loop.driver import _Money, _stop_ts
from payguard.sim.population import make_device, make_user

ROOT = Path(__file__).resolve().parents[2]
WORLD = SimConfig(users=300, days=8, seed=11, attack_rate=0.05)

# Every money-out operation refused, whoever asks: attackers must adapt and never win.
BLOCK_ALL = """
version: "block-all"
rules:
  - id: refuse_money
    events: [payment, transfer, withdrawal, investment_buy, loan_disburse]
    when: amount > 0
    action: block
    score: 50
    reason: No money leaves (test ruleset).
"""
# Every payment challenged, face or a hardware token only.
FACE_ONLY = """
version: "face-only"
rules:
  - id: face_for_payments
    events: [payment]
    when: amount > 0
    action: challenge
    score: 20
    challenge: [face, hardware_token]
    reason: Every payment needs face (test ruleset).
"""

Loop = Callable[[str | None, SimConfig], ClosedLoop]


@pytest.fixture(scope="module")
def run_loop() -> Loop:
    """Run a world through a fresh engine (ruleset text, or the default) and keep it."""
    settings = Settings()

    def run(rules: str | None, cfg: SimConfig) -> ClosedLoop:
        features = FeatureState(load_catalog(settings.features), settings.utc_offset)
        text = rules if rules is not None else (ROOT / "rules" / "default.yaml").read_text()
        ruleset = compile_ruleset(text, features)
        loop = ClosedLoop(LoopConfig(cfg), settings=settings, features=features, ruleset=ruleset)
        loop.run(keep_events=True)
        loop.close()
        return loop

    return run


@pytest.fixture(scope="module")
def default_loop(run_loop: Loop) -> ClosedLoop:
    return run_loop(None, WORLD)


@pytest.fixture(scope="module")
def blocked_loop(run_loop: Loop) -> ClosedLoop:
    return run_loop(BLOCK_ALL, WORLD)


# -- actors -------------------------------------------------------------------------------


def _owner(face: bool, token: bool = False) -> Customer:
    user = make_user(random.Random(1), "u100000001", 0, 1.0)
    return Customer(user, face=face, token=token, abandon=0.0)


def test_a_customer_challenged_with_face_passes() -> None:
    customer = _owner(face=True)
    answer = customer.answer(["face", "hardware_token"], None, random.Random(2))
    assert answer == ("face", "passed")


def test_a_customer_without_face_or_token_cannot_pass_a_face_only_challenge() -> None:
    customer = _owner(face=False)
    assert customer.answer(["face", "hardware_token"], None, random.Random(2)) == (
        None,
        "abandoned",
    )
    assert customer.answer(["face", "sms_otp"], None, random.Random(2)) == ("sms_otp", "passed")


def test_in_app_confirmation_only_on_the_customers_own_device() -> None:
    customer = _owner(face=False)
    own = customer.user.devices[0].id
    stranger = make_device(random.Random(3)).id
    assert customer.answer(["in_app_confirm"], own, random.Random(2)).outcome == "passed"
    assert customer.answer(["in_app_confirm"], stranger, random.Random(2)).outcome == "abandoned"


@pytest.mark.parametrize("seed", range(20))
def test_a_thief_without_photos_fails_face_but_passes_sms(seed: int) -> None:
    thief = Attacker.draw("c", "phone_theft_takeover", "phone_theft_takeover/x", random.Random(0))
    no_photos = frozenset({"sms_otp", "callback"})
    rng = random.Random(seed)
    assert thief.answer(["face", "hardware_token"], no_photos, rng).outcome in (
        "failed",
        "abandoned",
    )
    assert thief.answer(["face", "sms_otp"], no_photos, rng) == ("sms_otp", "passed")


def test_attackers_pass_what_the_open_loop_says_they_pass() -> None:
    """One table for both loops: a scenario's default (`ATTACKER_CAN_PASS`, as the backtest
    reads it) is what the loop's attacker passes, face for a thief with photos and the
    colluding cardholder alike."""
    for scenario, methods in ATTACKER_CAN_PASS.items():
        attacker = Attacker.draw("c", scenario, f"{scenario}/x", random.Random(0))
        can = default_can_pass(scenario)
        assert can <= methods
        for method in sorted(methods):
            answer = attacker.answer([method], can, random.Random(1))
            assert (answer.outcome == "passed") == (method in can)


def test_a_stuffing_attacker_passes_sms_only_where_the_victim_reads_the_code() -> None:
    attacker = Attacker.draw("c", "credential_stuffing", "credential_stuffing/x", random.Random(0))
    silent = default_can_pass("credential_stuffing")
    assert attacker.answer(["sms_otp"], silent, random.Random(1)).outcome != "passed"
    reads = frozenset({"sms_otp"})
    assert attacker.answer(["sms_otp"], reads, random.Random(1)) == ("sms_otp", "passed")


def test_owner_acts_for_collusion_and_coached_victims_only() -> None:
    assert owner_acts("cash_out_collusion/young_merchant_weeks")
    assert owner_acts("fake_customer_service/victim_own_device")
    assert owner_acts("fake_customer_service/coached_loan_then_transfer")
    assert owner_acts("fake_customer_service/screen_share_safe_account")
    assert owner_acts("fake_customer_service/remote_app_compensation_orders")
    assert not owner_acts("fake_customer_service/split_under_limits")
    assert not owner_acts("phone_theft_takeover/owner_handset_silent")


def test_an_attacker_gives_up_after_his_patience() -> None:
    attacker = Attacker("c", "sms_forwarding", "sms_forwarding/x", patience=2)
    assert attacker.refused() and attacker.refused()
    assert not attacker.refused() and attacker.gave_up


# -- the loop on a small world ------------------------------------------------------------


def test_a_refused_attacker_retries_another_way(blocked_loop: ClosedLoop) -> None:
    """Every money-out is blocked: attackers adapt (another card of the victim, a smaller
    amount, another device, a day later), and nothing is lost."""
    loop = blocked_loop
    events = loop.world.em.events
    assert loop.tactic_of, "no attacker retried after a decline"
    assert "another_card" in loop.tactic_of.values()
    for retry, tactic in loop.tactic_of.items():
        origin = loop.attempt[retry][0]
        before, after = events[origin], events[retry]
        old, new = before[2], after[2]
        if tactic == "another_card":
            victim = loop.users[new["user_id"]]
            assert new["card"] != old["card"] and new["card"] in victim.cards
        elif tactic == "smaller_amount":
            assert _fen(new["amount"]) < _fen(old["amount"])
        elif tactic == "another_channel":
            assert new["device_id"] != old["device_id"]
        else:
            assert after[0] >= before[0] + 86_400
    report = loop.report()
    assert report.total.lost_fen == 0
    assert report.total.retries_after_decline == len(loop.tactic_of)
    assert report.total.attempted_with_retries_fen > report.total.attempted_fen > 0


def test_refused_customers_retry_later_and_some_give_up(blocked_loop: ClosedLoop) -> None:
    legit = blocked_loop.report().legit
    assert legit.retries > 0 and legit.customers_gave_up > 0
    assert legit.money_refused == legit.money_events


@pytest.fixture(scope="module")
def face_loop(run_loop: Loop) -> ClosedLoop:
    return run_loop(FACE_ONLY, SimConfig(users=120, days=4, seed=5, attack_rate=0.05))


def test_face_challenges_are_passed_by_customers_with_face(face_loop: ClosedLoop) -> None:
    loop = face_loop
    results = loop.report().challenge_results
    assert results.get("customer/face/passed", 0) > 0
    assert results.get("customer/none/abandoned", 0) > 0  # customers without face
    assert not any(k.startswith("customer/sms_otp") for k in results)
    events, labels = loop.world.em.events, loop.world.em.labels
    payments = [
        (m, labels[m.seq]) for c in loop.campaigns.values() for m in c.money
        if events[m.seq][2]["type"] == "payment"
    ]  # fmt: skip
    assert payments
    for money, label in payments:  # first tries and retries alike, a day later too
        can = frozenset(label[3]) if label[3] is not None else default_can_pass(label[1])
        if not can & {"face", "hardware_token"}:
            assert not money.left, (label, money)
        elif money.via == "challenge passed":
            assert money.step in can  # (allowed: a face passed earlier cleared the rule)


def test_a_passed_face_clears_the_cause_until_the_next_payment(face_loop: ClosedLoop) -> None:
    """Every payment needs face; a customer who passed it is not asked again on that
    device while the clearance lasts (the engine drops the cleared rule), and the loop
    holds the customer's next payment until the answer is in."""
    legit = face_loop.report().legit
    passed = face_loop.report().challenge_results["customer/face/passed"]
    assert passed > 0 and legit.repeat_challenges_cleared == 0
    assert face_loop.postponed > 0


def test_the_loop_sends_outcomes_the_engine_accepts(default_loop: ClosedLoop) -> None:
    """Every event the loop sent decodes again; challenge results name a challenged event."""
    assert default_loop.lines is not None
    decoder = EventDecoder(Tokenizer(b"x" * 32))
    decoded = [decoder.decode(line) for line in default_loop.lines]
    report = default_loop.report()
    assert len(decoded) == report.events
    results = [e for e in decoded if e.type == "challenge_result"]
    assert len(results) == report.outcome_events.get("challenge_result", 0) > 0
    ids = {e.event_id for e in decoded}
    assert all(e.ref_event_id in ids for e in results)
    assert report.refused_outcomes == {}


def test_the_loop_counts_as_cleared_what_the_engine_clears(default_loop: ClosedLoop) -> None:
    """A strong pass clears every rule of the challenge; an SMS code or a callback only the
    ruleset's `line_cleared` limits (as `lifecycle.clearances` does)."""
    rules = ["daily_limit", "phone_risk_money_out"]
    assert "daily_limit" in default_loop.line_cleared
    assert default_loop._clears(Answer("face", "passed"), rules) == rules
    for method in ("sms_otp", "callback"):
        assert default_loop._clears(Answer(method, "passed"), rules) == ["daily_limit"]
    assert default_loop._clears(Answer("sms_otp", "failed"), rules) == []


def test_report_arithmetic(default_loop: ClosedLoop) -> None:
    report = default_loop.report()
    total = report.total
    assert 0 <= total.lost_fen <= total.attempted_with_retries_fen
    assert total.attempted_fen <= total.attempted_with_retries_fen
    assert total.attempted_fen <= total.planned_fen  # a campaign that gives up tries less
    assert total.lost_fen == sum(s.lost_fen for s in report.scenarios)
    assert total.lost_fen == sum(total.lost_via.values())
    assert total.attempted_fen == sum(s.attempted_fen for s in report.scenarios)
    assert total.campaigns_stopped <= total.campaigns_with_money <= total.campaigns
    legit = report.legit
    assert legit.customers_challenged <= legit.customers_with_friction <= legit.customers
    planned = report.planned_events - report.skipped_events
    assert report.events >= planned  # reactions add events


def test_lost_paths_split_the_loss_and_say_why(default_loop: ClosedLoop) -> None:
    """Every lost fen sits on one path; a path's step is the method passed exactly when the
    money went through a challenge; a first try is attempt 1; the stage is before the
    campaign's first stop exactly when the engine had stopped none of its events."""
    report = default_loop.report()
    paths = report.lost_paths
    assert paths and sum(p.lost_fen for p in paths) == report.total.lost_fen
    assert [p.lost_fen for p in paths] == sorted((p.lost_fen for p in paths), reverse=True)
    for row in report.scenarios:
        assert sum(p.lost_fen for p in paths if p.scenario == row.scenario) == row.lost_fen
    for p in paths:
        assert (p.step != "-") == (p.via == "challenge passed")
        assert (p.tactic == "first try") == (p.attempt == 1)
        assert p.operations >= 1 and all(fen <= p.lost_fen for fen in p.rules.values())
    for camp in default_loop.campaigns.values():
        for m in camp.money:
            stopped_before = camp.first_stop_ts is not None and camp.first_stop_ts < m.ts
            assert not m.after_stop or stopped_before
    largest = report.largest_losses
    assert largest and largest[0].lost_fen == max(c.lost_fen for c in largest)
    assert sum(c.lost_fen for c in largest) <= report.total.lost_fen
    assert all(c.lost_after_stop_fen <= c.lost_fen == sum(c.lost_via.values()) for c in largest)


def test_a_loop_that_loses_nothing_has_no_lost_paths(blocked_loop: ClosedLoop) -> None:
    report = blocked_loop.report()
    assert report.lost_paths == [] and report.largest_losses == []


def test_the_loops_events_replay_as_an_open_loop_backtest(
    default_loop: ClosedLoop, tmp_path: Path
) -> None:
    """What the loop sent, with its labels, is a valid backtest input of the same size."""
    assert default_loop.lines is not None
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in default_loop.lines))
    labels.write_bytes(b"".join(line + b"\n" for line in default_loop.label_lines))
    settings = Settings()
    features = FeatureState(load_catalog(settings.features), settings.utc_offset)
    ruleset = compile_ruleset((ROOT / "rules" / "default.yaml").read_text(), features)
    summary = run_backtest(events, labels, ruleset=ruleset, features=features, settings=settings)
    assert summary.events == default_loop.report().events
    assert summary.attack_events == len(default_loop.label_lines)


def test_same_seed_same_report(default_loop: ClosedLoop, run_loop: Loop) -> None:
    again = run_loop(None, WORLD)
    first, second = default_loop.report(), again.report()
    assert _without_time(first) == _without_time(second)
    assert default_loop.lines == again.lines
    other = run_loop(None, dataclasses.replace(WORLD, seed=12))
    assert _without_time(other.report()) != _without_time(first)


def _without_time(report: LoopReport) -> LoopReport:
    return msgspec.structs.replace(report, elapsed_s=0.0)


def _fen(amount: str) -> int:
    whole, cents = amount.split(".")
    return int(whole) * 100 + int(cents)


# -- time to stop against its definition ---------------------------------------------------


@given(st.lists(st.tuples(st.integers(0, 50), st.booleans()), min_size=1, max_size=12))
def test_stop_is_the_first_refusal_after_the_last_loss(attempts: list[tuple[int, bool]]) -> None:
    money = [_Money(seq, ts, 100, seq, left) for seq, (ts, left) in enumerate(attempts)]
    order = sorted(money, key=lambda m: (m.ts, m.seq))
    expected = None
    for i, m in enumerate(order):  # brute force: a refusal with no loss at or after it
        if not m.left and not any(n.left for n in order[i:]):
            expected = m.ts
            break
    assert _stop_ts(money) == expected


# -- the CLI ------------------------------------------------------------------------------


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["simulate", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_closed_loop_writes_its_report(tmp_path: Path) -> None:
    out, events, labels = tmp_path / "loop.json", tmp_path / "ev.jsonl", tmp_path / "lab.jsonl"
    html = tmp_path / "loop.html"
    code, stdout, _ = _cli(
        "--closed-loop", "--users", "60", "--days", "4", "--seed", "3", "--html", str(html),
        "--json", str(out), "-o", str(events), "--labels", str(labels),
    )  # fmt: skip
    assert code == 0, stdout
    assert "attack money lost" in stdout and "challenges per customer" in stdout
    data = json.loads(out.read_text())
    assert data["seed"] == 3 and data["events"] == len(events.read_text().splitlines())
    assert {"lost_fen", "attempted_fen", "retries_after_decline"} <= data["total"].keys()
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "attack money lost" in page
    if data["lost_paths"]:
        assert "Why the lost money got through" in page
    assert "<script" not in page and "http" not in page  # self-contained


def test_cli_closed_loop_beside_an_open_loop_report(tmp_path: Path) -> None:
    events, labels, report = (tmp_path / n for n in ("ev.jsonl", "lab.jsonl", "open.json"))
    world = ("--users", "60", "--days", "3", "--seed", "4")
    assert _cli(*world, "-o", str(events), "--labels", str(labels))[0] == 0
    result = CliRunner().invoke(
        app, ["backtest", str(events), "--labels", str(labels), "--json", str(report)]
    )
    assert result.exit_code == 0, result.stdout
    code, stdout, _ = _cli("--closed-loop", *world, "--compare", str(report))
    assert code == 0 and "open loop" in stdout and "closed loop" in stdout


def test_cli_compare_must_be_a_backtest_report(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    code, _, stderr = _cli("--closed-loop", "--users", "60", "--days", "2", "--compare", str(bad))
    assert code == 2 and "--compare" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--users", "60"), "--output"),
        (("--users", "60", "--json", "x.json"), "--closed-loop"),
        (("--closed-loop", "--users", "60", "--labels", "x.jsonl"), "--labels needs"),
        (("--closed-loop", "--users", "3"), "users"),
    ],
)
def test_cli_bad_input_exits_2(args: tuple[str, ...], message: str) -> None:
    code, _, stderr = _cli(*args)
    assert code == 2 and message in stderr
