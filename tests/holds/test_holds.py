"""Delayed, revocable transfers: the hold book's rules (both books), the engine placing a
hold for a `hold` decision, an owner's loss or fraud report revoking it, and the state
surviving a restart."""

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from payguard.config import Settings
from payguard.engine import DuplicateEventError, Engine
from payguard.events import Event
from payguard.holds import Hold, HoldBook, HoldError, MemoryHoldBook, SQLiteHoldBook
from payguard.types import HOUR_MS

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def _hold(hold_id: str, user: str = "u1", placed: int = T0, hours: int = 24) -> Hold:
    return Hold(
        hold_id=hold_id,
        event_id=hold_id.removeprefix("hold-"),
        user_id=user,
        type="transfer",
        amount=500_000,
        currency="CNY",
        placed_ts=placed,
        release_ts=placed + hours * HOUR_MS,
        counterparty="payee-1",
    )


@pytest.fixture(params=["memory", "sqlite"])
def book(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HoldBook]:
    made: HoldBook = (
        MemoryHoldBook() if request.param == "memory" else SQLiteHoldBook(tmp_path / "holds.db")
    )
    yield made
    made.close()


def test_a_hold_reads_held_until_its_release_time_then_released(book: HoldBook) -> None:
    book.place(_hold("hold-a"))
    book.place(_hold("hold-a", placed=T0 + 5))  # a repeat of the same event is ignored
    [before] = book.find(now_ms=T0 + 24 * HOUR_MS - 1, limit=10)
    assert before.state == "held" and before.placed_ts == T0
    [after] = book.find(now_ms=T0 + 24 * HOUR_MS, limit=10)
    assert (after.state, after.resolved_by, after.resolved_ts) == (
        "released",
        "expiry",
        T0 + 24 * HOUR_MS,
    )


def test_revoke_and_release_only_while_held(book: HoldBook) -> None:
    book.place(_hold("hold-a"))
    book.place(_hold("hold-b", placed=T0 + 1))
    done = book.resolve("hold-a", "revoked", at_ms=T0 + HOUR_MS, by="customer", note="app")
    assert done.state == "revoked" and done.resolved_by == "customer"
    assert book.get("hold-a") == done
    with pytest.raises(HoldError) as again:
        book.resolve("hold-a", "released", at_ms=T0 + 2 * HOUR_MS, by="staff")
    assert again.value.status == 409 and "already revoked" in again.value.reason
    with pytest.raises(HoldError) as late:
        book.resolve("hold-b", "revoked", at_ms=T0 + 25 * HOUR_MS, by="customer")
    assert late.value.status == 409 and "already released (expiry)" in late.value.reason
    with pytest.raises(HoldError) as unknown:
        book.resolve("hold-x", "revoked", at_ms=T0, by="customer")
    assert unknown.value.status == 404


def test_find_filters_by_account_and_state_newest_first(book: HoldBook) -> None:
    for i, user in enumerate(["u1", "u2", "u1", "u1"]):
        book.place(_hold(f"hold-{i}", user=user, placed=T0 + i * HOUR_MS))
    book.resolve("hold-2", "revoked", at_ms=T0 + 3 * HOUR_MS, by="staff")
    now = T0 + 4 * HOUR_MS
    assert [h.hold_id for h in book.find(user_id="u1", now_ms=now, limit=10)] == [
        "hold-3",
        "hold-2",
        "hold-0",
    ]
    assert [h.hold_id for h in book.find(state="held", now_ms=now, limit=2)] == [
        "hold-3",
        "hold-1",
    ]
    assert [h.hold_id for h in book.find(state="revoked", now_ms=now, limit=10)] == ["hold-2"]


def test_an_owner_report_revokes_only_earlier_holds_still_held(book: HoldBook) -> None:
    book.place(_hold("hold-old", placed=T0 - 30 * HOUR_MS))  # released by expiry already
    book.place(_hold("hold-a", placed=T0))
    book.place(_hold("hold-later", placed=T0 + 2 * HOUR_MS))  # after the report
    book.place(_hold("hold-other", user="u2", placed=T0))
    revoked = book.revoke_pending("u1", at_ms=T0 + HOUR_MS, by="owner_report", note="lost")
    assert [h.hold_id for h in revoked] == ["hold-a"]
    states = {h.hold_id: h.state for h in book.find(now_ms=T0 + HOUR_MS, limit=10)}
    assert states == {"hold-old": "released", "hold-a": "revoked", "hold-later": "held"} | {
        "hold-other": "held"
    }


# -- the engine ---------------------------------------------------------------------------

RULES = """version: holds-test
rules:
  - id: big_transfer_held
    events: [transfer]
    when: amount >= 100000
    action: hold
    score: 30
    reason: large transfers wait for the owner
  - id: huge_payment_blocked
    events: [payment]
    when: amount >= 900000
    action: block
    reason: too much at once
  - id: daily_limit
    events: [payment]
    when: sum_amount_money_settled_by_user_24h + amount > 1000000
    action: review
    reason: over the daily limit
policy:
  hold_hours: 12
"""


def _engine(tmp_path: Path, log_dsn: str | None = None, data: str = "data") -> Engine:
    """An engine on the hold ruleset: SQLite log in `tmp_path/data`, or the Postgres log
    at `log_dsn` (workers share it; each has a data directory of its own)."""
    ruleset = tmp_path / "rules.yaml"
    ruleset.write_text(RULES)
    return Engine.open(Settings(data_dir=tmp_path / data, ruleset=ruleset, log_dsn=log_dsn))


@pytest.fixture(params=["sqlite", "postgres"])
def log_dsn(request: pytest.FixtureRequest) -> str | None:
    """The event log the engine's hold book commits with: SQLite, or Postgres."""
    if request.param == "sqlite":
        return None
    dsn, schema = request.getfixturevalue("pg_schema")
    return f"{dsn} options='-c search_path={schema}'"


def _event(engine: Engine, **fields: object) -> Event:
    return engine.decoder.decode(msgspec.json.encode(fields))


def _transfer(engine: Engine, event_id: str, minutes: int, amount: str) -> Event:
    return _event(
        engine,
        event_id=event_id,
        type="transfer",
        ts=T0 + minutes * 60_000,
        user_id="u1",
        device_id="d1",
        phone="+8613800138000",
        amount=amount,
        payee={"id": "payee-9"},
    )


def test_a_hold_decision_places_a_hold_that_the_owners_loss_report_revokes(
    tmp_path: Path, log_dsn: str | None
) -> None:
    engine = _engine(tmp_path, log_dsn)
    decision, _ = engine.process(_transfer(engine, "t1", 0, "3000.00"))
    assert decision.action == "hold" and decision.challenge is msgspec.UNSET
    assert not isinstance(decision.hold, msgspec.UnsetType)
    assert decision.hold.hold_id == "hold-t1" and decision.hold.release_ts == T0 + 12 * HOUR_MS
    [held] = engine.holds.find(user_id="u1", now_ms=T0, limit=10)
    assert (held.state, held.amount, held.counterparty) == ("held", 300_000, "payee-9")
    assert engine.process(_transfer(engine, "t1", 0, "3000.00"))[1]  # an idempotent repeat
    assert len(engine.holds.find(now_ms=T0, limit=10)) == 1
    engine.process(_transfer(engine, "small", 1, "10.00"))  # allowed: nothing held
    # the carrier's loss report names only the phone: it reaches the account through it
    suspend = _event(
        engine, event_id="lost", type="line_suspend", ts=T0 + HOUR_MS, phone="+8613800138000"
    )
    engine.process(suspend)
    [revoked] = engine.holds.find(user_id="u1", now_ms=T0 + HOUR_MS, limit=10)
    assert (revoked.state, revoked.resolved_by) == ("revoked", "owner_report")
    assert revoked.note == "line suspend lost"
    resume = _event(
        engine, event_id="back", type="line_resume", ts=T0 + 2 * HOUR_MS, phone="+8613800138000"
    )
    engine.process(resume)  # a thief undoing the report does not bring the transfer back
    engine.close()
    reopened = _engine(tmp_path, log_dsn)
    assert reopened.holds.get("hold-t1") == revoked
    reopened.close()


def test_workers_on_the_postgres_log_share_their_holds(
    tmp_path: Path, pg_schema: tuple[str, str]
) -> None:
    """A hold placed by one worker commits with its event, and any worker sees it and
    can resolve it; a batch whose commit fails leaves no hold."""
    dsn, schema = pg_schema
    shared = f"{dsn} options='-c search_path={schema}'"
    a, b = _engine(tmp_path, shared, "a"), _engine(tmp_path, shared, "b")
    assert a.process(_transfer(a, "t1", 0, "3000.00"), commit=True)[0].action == "hold"
    [seen] = b.holds.find(user_id="u1", now_ms=T0, limit=10)
    assert seen.hold_id == "hold-t1" and seen.state == "held"
    b.holds.resolve("hold-t1", "revoked", at_ms=T0 + 60_000, by="staff", note="called")
    revoked = a.holds.get("hold-t1")
    assert revoked is not None and revoked.state == "revoked"
    # the same event decided on b too (no shared state here): its commit is refused by
    # the log, and the hold it would have placed again is not written
    a.process(_transfer(a, "t2", 5, "3000.00"), commit=True)
    with pytest.raises(DuplicateEventError):
        b.process(_transfer(b, "t2", 5, "3000.00"), commit=True)
    [t2] = [h for h in b.holds.find(now_ms=T0, limit=10) if h.hold_id == "hold-t2"]
    assert t2.state == "held"
    for engine in (a, b):
        engine.close()


def test_a_hold_nobody_revokes_is_released_at_its_time(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    engine.process(_transfer(engine, "t1", 0, "3000.00"))
    [still] = engine.holds.find(now_ms=T0 + 12 * HOUR_MS - 1, limit=10)
    [done] = engine.holds.find(now_ms=T0 + 12 * HOUR_MS, limit=10)
    assert still.state == "held" and done.state == "released"
    engine.close()


def test_declined_money_does_not_use_up_a_limit(tmp_path: Path) -> None:
    """A blocked 9,500 CNY payment never left: the next 900 CNY is within the 10,000
    daily limit. Recovery after a restart files the blocked payment the same way."""
    engine = _engine(tmp_path)

    def pay(event_id: str, minutes: int, amount: str) -> Event:
        return _event(
            engine,
            event_id=event_id,
            type="payment",
            ts=T0 + minutes * 60_000,
            user_id="u1",
            amount=amount,
            merchant={"id": "m1"},
        )

    assert engine.process(pay("p1", 0, "9500.00"))[0].action == "block"
    assert engine.process(pay("p2", 1, "900.00"))[0].action == "allow"
    assert engine.process(pay("p3", 2, "8000.00"))[0].action == "allow"
    engine.close()
    (tmp_path / "data" / "state.snapshot").unlink()  # recover by replaying the log
    reopened = _engine(tmp_path)
    decision = reopened.decide(pay("p4", 3, "1200.00"))
    assert decision.action == "review"  # 900 + 8,000 + 1,200 > 10,000; the 9,500 is not in it
    assert reopened.decide(pay("p5", 3, "1000.00")).action == "allow"
    reopened.close()


def test_a_hold_rule_must_name_money_events(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    bad = "version: x\nrules:\n  - {id: h, when: 'true', action: hold, reason: r}\n"
    with pytest.raises(ValueError, match="action hold applies only to money"):
        engine.parse_ruleset(bad)
    engine.close()


def test_the_backtest_counts_a_revoked_hold_as_stopped(tmp_path: Path) -> None:
    """Through the real engine: u1's held transfer is revoked by the owner's loss report,
    u2's runs out and is released, so only u1's campaign is stopped (by its hold)."""
    from payguard.backtest import run_backtest
    from payguard.engine import compile_ruleset
    from payguard.features import FeatureState, load_catalog

    def line(event_id: str, minutes: int, **fields: object) -> bytes:
        return msgspec.json.encode({"event_id": event_id, "ts": T0 + minutes * 60_000, **fields})

    phone1, phone2 = "+8613800138000", "+8613900139000"
    money = {"type": "transfer", "amount": "3000.00", "payee": {"id": "p"}}
    events = [
        line("a1", 0, user_id="u1", device_id="d1", phone=phone1, **money),
        line("b1", 1, user_id="u2", device_id="d2", phone=phone2, **money),
        line("lost", 60, type="line_suspend", phone=phone1),
        line("later", 13 * 60, type="line_suspend", phone=phone2),  # after the release
    ]
    labels = [
        {"event_id": "a1", "campaign": "theft-1", "scenario": "phone_theft_takeover"},
        {"event_id": "b1", "campaign": "theft-2", "scenario": "phone_theft_takeover"},
    ]
    (tmp_path / "ev.jsonl").write_bytes(b"\n".join(events) + b"\n")
    (tmp_path / "lab.jsonl").write_bytes(b"\n".join(msgspec.json.encode(x) for x in labels))
    settings = Settings(data_dir=tmp_path / "data")
    features = FeatureState(load_catalog(settings.features))
    summary = run_backtest(
        tmp_path / "ev.jsonl",
        tmp_path / "lab.jsonl",
        ruleset=compile_ruleset(RULES, features),
        features=features,
        settings=settings,
    )
    by = {c.campaign: c for c in summary.campaigns}
    assert by["theft-1"].stopped and by["theft-1"].stop_action == "hold"
    assert not by["theft-2"].stopped and by["theft-2"].loss_fen == 300_000
    assert summary.scenarios[0].stopped_by["revoked hold"] == 1
