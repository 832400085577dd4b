"""The simulator: determinism, contract-v1 validity, labels, ordering and references."""

import hashlib
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.cn import ric

from payguard.events import EventDecoder, Tokenizer
from payguard.scenarios import ATTACKER_CAN_PASS, SCENARIOS, default_can_pass
from payguard.sim import SPLIT, VARIANTS, SimConfig, SimSummary, simulate, variant_names
from payguard.sim.attacks import _MIX, near_round
from payguard.sim.legit import LOOKALIKES
from payguard.sim.population import make_id_number, make_pan, make_phone
from payguard.types import CHALLENGE_METHODS

SMALL = SimConfig(users=300, days=8, seed=11, attack_rate=0.05)


def _run(cfg: SimConfig, where: Path) -> tuple[bytes, bytes, SimSummary]:
    where.mkdir(parents=True, exist_ok=True)
    events, labels = where / "events.jsonl", where / "labels.jsonl"
    summary = simulate(cfg, events, labels)
    return events.read_bytes(), labels.read_bytes(), summary


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, SimSummary]:
    return _run(SimConfig(), tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, SimSummary]:
    return _run(SMALL, tmp_path_factory.mktemp("small"))


def _check_stream(events: bytes, labels: bytes) -> Counter[str]:
    """Decode every line; check ordering, unique ids, references and labels."""
    decoder = EventDecoder(Tokenizer(b"x" * 32))
    seen: dict[str, int] = {}
    last_ts = 0
    types: Counter[str] = Counter()
    for line in events.splitlines():
        event = decoder.decode(line)
        assert event.event_id not in seen
        assert event.ts >= last_ts, "events must be sorted by ts"
        if event.ref_event_id is not None:
            assert seen.get(event.ref_event_id, event.ts + 1) <= event.ts, event.event_id
        assert "attack" not in event.attrs and "campaign" not in event.attrs
        seen[event.event_id] = last_ts = event.ts
        types[event.type] += 1
    scenarios: Counter[str] = Counter()
    for line in labels.splitlines():
        label = json.loads(line)
        keys = {"event_id", "campaign", "scenario", "variant", "attack"}
        assert set(label) - {"can_pass"} == keys
        assert label["attack"] is True and label["event_id"] in seen
        scenario, tactic = label["variant"].split("/")
        assert scenario == label["scenario"] and tactic in VARIANTS[scenario]
        if "can_pass" in label:
            can = label["can_pass"]
            assert can == sorted(set(can)) and set(can) <= set(CHALLENGE_METHODS)
            assert frozenset(can) != default_can_pass(scenario)
        scenarios[label["scenario"]] += 1
    return scenarios


def test_default_config_is_valid_and_has_every_scenario(
    default_run: tuple[bytes, bytes, SimSummary],
) -> None:
    events, labels, summary = default_run
    scenarios = _check_stream(events, labels)
    assert set(scenarios) == set(SCENARIOS)
    assert dict(scenarios) == summary.by_scenario
    assert 150_000 <= summary.events <= 400_000
    assert summary.events == events.count(b"\n")
    assert summary.labels == labels.count(b"\n")
    assert summary.by_type["fraud_report"] > 0 and summary.by_type["chargeback"] > 0


def test_same_seed_is_byte_identical_across_runs_and_processes(
    small_run: tuple[bytes, bytes, SimSummary], tmp_path: Path
) -> None:
    events, labels, _ = small_run
    again = _run(SMALL, tmp_path / "again")
    assert (again[0], again[1]) == (events, labels)
    code = (
        "import sys; from pathlib import Path; from payguard.sim import SimConfig, simulate; "
        "simulate(SimConfig(users=300, days=8, seed=11, attack_rate=0.05), "
        "Path(sys.argv[1]), Path(sys.argv[2]))"
    )
    out_events, out_labels = tmp_path / "p_events.jsonl", tmp_path / "p_labels.jsonl"
    subprocess.run(
        [sys.executable, "-c", code, str(out_events), str(out_labels)],
        check=True,
        env={"PYTHONHASHSEED": "12345", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    assert out_events.read_bytes() == events
    assert out_labels.read_bytes() == labels


def test_different_seed_gives_different_output(
    small_run: tuple[bytes, bytes, SimSummary], tmp_path: Path
) -> None:
    other = _run(SimConfig(users=300, days=8, seed=12, attack_rate=0.05), tmp_path)
    assert other[0] != small_run[0]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_scenario_alone_is_valid(scenario: str, tmp_path: Path) -> None:
    cfg = SimConfig(users=200, days=6, seed=3, attack_rate=0.05, scenarios=(scenario,))
    events, labels, summary = _run(cfg, tmp_path)
    assert set(_check_stream(events, labels)) == {scenario}
    assert summary.campaigns[scenario] >= 1


def test_stuffing_marks_the_chains_of_victims_who_read_codes_out(tmp_path: Path) -> None:
    """A stuffing transfer needs the victim to read the OTP out, so it always carries
    `can_pass: ["sms_otp"]`; the failed logins on other accounts never do."""
    cfg = SimConfig(users=400, days=6, seed=5, attack_rate=0.05, scenarios=("credential_stuffing",))
    events, labels, _ = _run(cfg, tmp_path)
    types = {e["event_id"]: e["type"] for e in map(json.loads, events.splitlines())}
    flags = [
        (types[lab["event_id"]], lab.get("can_pass") == ["sms_otp"])
        for lab in map(json.loads, labels.splitlines())
    ]
    transfers = [flag for kind, flag in flags if kind == "transfer"]
    logins = [flag for kind, flag in flags if kind == "login"]
    assert transfers and all(transfers)
    assert any(logins) and not all(logins)


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    users=st.integers(10, 60),
    days=st.integers(1, 4),
    rate=st.floats(0.0, 0.3),
)
def test_any_small_config_is_valid(
    seed: int, users: int, days: int, rate: float, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cfg = SimConfig(users=users, days=days, seed=seed, attack_rate=rate)
    events, labels, _ = _run(cfg, tmp_path_factory.mktemp("h"))
    _check_stream(events, labels)


@settings(max_examples=50)
@given(seed=st.integers(0, 2**32))
def test_generated_pii_passes_validation(seed: int) -> None:
    rng = random.Random(seed)
    card = make_pan(rng, credit=rng.random() < 0.5)
    assert luhn.is_valid(card["number"]) and 16 <= len(card["number"]) <= 19
    region = rng.choice(("440305", "510107", "110101", "330106"))
    assert ric.is_valid(make_id_number(rng, region, rng.randint(1950, 2006)))
    assert phonenumbers.is_valid_number(phonenumbers.parse(make_phone(rng)))


def test_attacker_capabilities_cover_every_scenario() -> None:
    allowed = {"face", "in_app_confirm", "callback", "hardware_token", "sms_otp"}
    assert set(ATTACKER_CAN_PASS) == set(SCENARIOS)
    assert all(methods <= allowed for methods in ATTACKER_CAN_PASS.values())
    assert ATTACKER_CAN_PASS["cash_out_collusion"] == allowed
    assert ATTACKER_CAN_PASS["merchant_credential_leak"] == frozenset()


def test_config_rejects_unknown_scenarios() -> None:
    with pytest.raises(ValueError, match="unknown scenarios"):
        SimConfig(scenarios=("bank_robbery",))


# --- variants, the generalisation split, capabilities, look-alikes ----------------------------


def test_split_is_disjoint_and_covers_every_scenario_with_two_a_side() -> None:
    assert set(SPLIT) == set(SCENARIOS)
    for scenario, (tune, held) in SPLIT.items():
        assert len(tune) >= 2 and len(held) >= 2, scenario
        assert not set(tune) & set(held), scenario
        assert len(VARIANTS[scenario]) >= 4 and len(set(VARIANTS[scenario])) == len(tune + held)
    tuning, heldout = set(variant_names("tuning")), set(variant_names("heldout"))
    assert not tuning & heldout
    assert tuning | heldout == set(variant_names("all"))
    assert {v.split("/")[0] for v in tuning} == {v.split("/")[0] for v in heldout} == set(SCENARIOS)


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, bytes, SimSummary]]:
    """One run per side of the split, big enough for >= 2 campaigns of every scenario."""
    where = tmp_path_factory.mktemp("sides")
    out = {}
    for side in ("tuning", "heldout"):
        cfg = SimConfig(users=2400, days=10, seed=4, attack_rate=0.2, variants=side)
        out[side] = _run(cfg, where / side)
    return out


def _variants_of(labels: bytes) -> set[str]:
    return {json.loads(line)["variant"] for line in labels.splitlines()}


def test_every_variant_is_generated_on_its_own_side_only(
    sides: dict[str, tuple[bytes, bytes, SimSummary]],
) -> None:
    for side, (events, labels, summary) in sides.items():
        assert set(_check_stream(events, labels)) == set(SCENARIOS)
        expected = set(variant_names(side))  # type: ignore[arg-type]
        assert _variants_of(labels) == expected == set(summary.variants), side


HELDOUT_WORLD_SHA256 = (
    "6246d5108c77924ab9a7ea16544a8aefb32eb80653eb57091bc2663b49abf83c",
    "f3efb042135c68e6d21fa9b4a8737be2e7473dc1bea5c1f60a2eca0200bbf53a",
)
"""sha256 of the events and labels of a held-out world (300 customers × 30 days, seed 101),
as generated before tuning tactics were added in 2026.12.4 (main at 34eaf31)."""


def test_tuning_tactics_leave_the_heldout_worlds_unchanged(tmp_path: Path) -> None:
    """Rules are judged on the held-out side: adding a tactic to the tuning side (or any
    change to shared simulator code) must not move a held-out world by one byte, or the
    held-out figures before and after a change would be measured on different traffic."""
    cfg = SimConfig(users=300, days=30, seed=101, attack_rate=0.05, variants="heldout")
    events, labels, _ = _run(cfg, tmp_path)
    digests = (hashlib.sha256(events).hexdigest(), hashlib.sha256(labels).hexdigest())
    assert digests == HELDOUT_WORLD_SHA256


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_variant_appears_across_two_seeds(scenario: str, tmp_path: Path) -> None:
    """Campaigns of a scenario take its tactics round-robin from a random offset, so a few
    campaigns per seed (as many as the family has tactics) cover the whole family."""
    share, per = _MIX[scenario]
    rate = min(0.5, (len(VARIANTS[scenario]) + 0.5) * per / (share * 2000))
    seen: set[str] = set()
    for seed in (1, 2):
        cfg = SimConfig(users=2000, days=4, seed=seed, attack_rate=rate, scenarios=(scenario,))
        seen |= _variants_of(_run(cfg, tmp_path / str(seed))[1])
    assert seen == {f"{scenario}/{tactic}" for tactic in VARIANTS[scenario]}


def test_legitimate_traffic_is_the_same_on_both_sides(tmp_path: Path) -> None:
    """Only the attacks differ: with no attacks both sides write the same bytes."""
    runs = [
        _run(SimConfig(users=300, days=5, seed=9, attack_rate=0.0, variants=side), tmp_path / side)
        for side in ("tuning", "heldout", "all")
    ]
    assert runs[0][0] == runs[1][0] == runs[2][0]


def _capabilities(labels: bytes) -> dict[str, set[tuple[str, ...] | None]]:
    out: dict[str, set[tuple[str, ...] | None]] = {}
    for line in labels.splitlines():
        label = json.loads(line)
        can = label.get("can_pass")
        out.setdefault(label["variant"], set()).add(None if can is None else tuple(can))
    return out


def test_variant_capabilities_ride_on_the_labels(
    sides: dict[str, tuple[bytes, bytes, SimSummary]],
) -> None:
    caps = _capabilities(sides["tuning"][1]) | _capabilities(sides["heldout"][1])
    own = caps["fake_customer_service/victim_own_device"]
    assert own == {("face", "in_app_confirm", "sms_otp")}
    assert caps["fake_customer_service/codes_read_aloud"] == {None}
    for variant in ("swap_new_device_one_night", "late_signal_spread"):
        for can in caps[f"phone_theft_takeover/{variant}"]:
            assert can is not None and "in_app_confirm" not in can and "sms_otp" in can
    for can in caps["phone_theft_takeover/owner_handset_silent"]:
        assert can is None or "in_app_confirm" in can
    assert caps["merchant_credential_leak/no_api_burst"] == {None}
    assert caps["cash_out_collusion/young_merchant_weeks"] == {None}


def test_heldout_theft_has_no_prompt_carrier_signal(
    sides: dict[str, tuple[bytes, bytes, SimSummary]],
) -> None:
    """The split is a real one: phone theft without a prompt sim_swap or suspend cycles is
    only in the held-out side."""
    for side, suspends in (("tuning", True), ("heldout", False)):
        events, labels, _ = sides[side]
        theft = {
            json.loads(line)["event_id"]
            for line in labels.splitlines()
            if b"phone_theft_takeover" in line
        }
        kinds = {e["type"] for e in map(json.loads, events.splitlines()) if e["event_id"] in theft}
        assert ("line_suspend" in kinds) is suspends, side


def test_lookalikes_appear_at_a_few_percent(default_run: tuple[bytes, bytes, SimSummary]) -> None:
    summary = default_run[2]
    names = {name for name, _ in LOOKALIKES}
    assert names <= set(summary.lookalikes)
    assert summary.lookalikes["onboarding_cards"] > 0
    total = sum(n for name, n in summary.lookalikes.items() if name in names)
    assert 0.03 * summary.users <= total <= 0.10 * summary.users


def test_lookalike_rate_zero_turns_them_off(tmp_path: Path) -> None:
    cfg = SimConfig(users=500, days=5, seed=2, attack_rate=0.0, lookalike_rate=0.0)
    assert _run(cfg, tmp_path)[2].lookalikes == {}


def test_attack_amounts_are_fen_strings_and_not_all_round(
    sides: dict[str, tuple[bytes, bytes, SimSummary]],
) -> None:
    events, labels, _ = sides["heldout"]
    ids = {
        json.loads(line)["event_id"]: json.loads(line)["scenario"] for line in labels.splitlines()
    }
    by_scenario: dict[str, list[str]] = {}
    for event in map(json.loads, events.splitlines()):
        if "amount" in event:
            assert isinstance(event["amount"], str)
            whole, _, cents = event["amount"].partition(".")
            assert whole.isdigit() and len(cents) == 2 and cents.isdigit()
            if event["event_id"] in ids:
                by_scenario.setdefault(ids[event["event_id"]], []).append(event["amount"])
    for scenario, amounts in by_scenario.items():
        fen = [round(float(a) * 100) for a in amounts]
        assert any(f % 100_000 for f in fen), scenario  # never only exact thousands


def test_no_clear_pii_in_attrs_or_labels(sides: dict[str, tuple[bytes, bytes, SimSummary]]) -> None:
    """Numbers appear only in their typed fields (the edge tokenizes them), never in attrs
    or in the labels file."""
    events, labels, _ = sides["heldout"]
    for event in map(json.loads, events.splitlines()[:20_000]):
        for value in event.get("attrs", {}).values():
            assert not (isinstance(value, str) and value.isdigit() and len(value) >= 11)
    assert b"+86" not in labels and b'"number"' not in labels


@settings(max_examples=200)
@given(fen=st.integers(1_00, 10_000_000))
def test_near_round_amounts_stay_close_to_a_round_number(fen: int) -> None:
    out = near_round(random.Random(fen), fen)
    unit = 1_000_00 if fen >= 5_000_00 else 100_00 if fen >= 500_00 else 10_00
    top = max(unit, round(fen / unit) * unit)
    assert 1_00 <= out <= top and top - out <= max(top // 50, 10_00)


def test_cli_simulate_variants_flag(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from payguard.cli.main import app

    ev, lab = tmp_path / "e.jsonl", tmp_path / "l.jsonl"
    args = ["simulate", "-o", str(ev), "--labels", str(lab), "--users", "200", "--days", "3"]
    ok = CliRunner().invoke(app, [*args, "--variants", "heldout"])
    assert ok.exit_code == 0, ok.output
    assert _variants_of(lab.read_bytes()) <= set(variant_names("heldout"))
    bad = CliRunner().invoke(app, [*args, "--variants", "secret"])
    assert bad.exit_code == 2 and "--variants" in bad.output
    small = CliRunner().invoke(app, [*args[:-4], "--users", "3"])
    assert small.exit_code == 2 and "users" in small.output


def _campaign_events(
    events: bytes, labels: bytes, variant: str
) -> dict[str, list[dict[str, object]]]:
    """A variant's labelled events by campaign, in file order."""
    campaign_of = {
        label["event_id"]: label["campaign"]
        for label in map(json.loads, labels.splitlines())
        if label["variant"] == variant
    }
    out: dict[str, list[dict[str, object]]] = {}
    for event in map(json.loads, events.splitlines()):
        cid = campaign_of.get(event["event_id"])
        if cid is not None:
            out.setdefault(cid, []).append(event)
    return out


@pytest.fixture(scope="module")
def coached_and_ring(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[bytes, bytes, SimSummary]:
    """Tuning campaigns of the two scenarios that gained tactics in 2026.12.6, enough of
    them to cover every tactic."""
    cfg = SimConfig(
        users=2000,
        days=30,
        seed=5,
        attack_rate=0.3,
        variants="tuning",
        scenarios=("cash_out_collusion", "fake_customer_service"),
    )
    return _run(cfg, tmp_path_factory.mktemp("coached"))


@pytest.mark.parametrize("tactic", ["screen_share_safe_account", "remote_app_compensation_orders"])
def test_coached_tactics_run_on_the_victims_own_device(
    tactic: str, coached_and_ring: tuple[bytes, bytes, SimSummary]
) -> None:
    """The caller works through the victim's own phone (screen sharing, a remote-control
    app): one device and one network per campaign, no login from elsewhere, and what the
    attacker passes is what the coached owner passes."""
    events, labels, _ = coached_and_ring
    campaigns = _campaign_events(events, labels, f"fake_customer_service/{tactic}")
    assert len(campaigns) >= 3
    for chain in campaigns.values():
        assert len({e["device_id"] for e in chain}) == 1
        assert "login" not in {e["type"] for e in chain}
        money = [e for e in chain if e["type"] in ("payment", "transfer")]
        assert money, "every campaign moves money"
    caps = _capabilities(labels)[f"fake_customer_service/{tactic}"]
    assert caps == {("face", "in_app_confirm", "sms_otp")}


def test_safe_account_transfers_stay_under_a_per_campaign_cap(
    coached_and_ring: tuple[bytes, bytes, SimSummary],
) -> None:
    """Each safe-account campaign splits the savings into transfers under one cap (2,000 to
    6,000 CNY), to one or two payees: no transfer is over 6,000 CNY."""
    events, labels, _ = coached_and_ring
    campaigns = _campaign_events(events, labels, "fake_customer_service/screen_share_safe_account")
    for chain in campaigns.values():
        transfers = [e for e in chain if e["type"] == "transfer"]
        assert 1 <= len({str(e["payee"]) for e in transfers}) <= 2
        assert all(float(str(e["amount"])) < 6_000 for e in transfers)


def test_shop_ring_spreads_tickets_over_several_shops(
    coached_and_ring: tuple[bytes, bytes, SimSummary],
) -> None:
    """A ring's cash-out goes to more than one shop across its campaigns, on credit cards,
    each ticket under 10,000 CNY (the largest per-campaign cap)."""
    events, labels, _ = coached_and_ring
    campaigns = _campaign_events(events, labels, "cash_out_collusion/shop_ring_split_tickets")
    assert campaigns
    shops = 0
    for chain in campaigns.values():
        payments = [e for e in chain if e["type"] == "payment"]
        assert all(float(str(e["amount"])) < 10_000 for e in payments)
        assert all(e["card"]["kind"] == "credit" for e in payments)  # type: ignore[index]
        shops = max(shops, len({e["merchant"]["id"] for e in payments}))  # type: ignore[index]
    assert shops >= 2
