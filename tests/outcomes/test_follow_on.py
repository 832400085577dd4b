"""Follow-on after a stop: once the engine reviews or blocks an operation, later money out
from the same account, device or card is challenged with what only the owner passes,
until an analyst's (or the bank's) `not_fraud` label on the stop releases it on every
device, or the window ends. Real SQLite data directory, restart included."""

import sqlite3
from pathlib import Path

import pytest
from support import HOUR, T0, label, open_engine, payment, send, wire

from payguard.engine import Engine
from payguard.outcomes.book import OutcomeBook

MINUTE = 60_000
RULESET = """
version: "follow-on-test"
rules:
  - id: big_transfer
    events: [transfer]
    when: amount >= 100000
    action: review
    score: 60
    reason: A big transfer.
  - id: blocked_withdrawal
    events: [withdrawal]
    when: amount >= 100000
    action: block
    score: 90
    reason: A big withdrawal.
  - id: after_stop_account
    events: [payment, transfer, withdrawal]
    when: minutes_since_stopped_by_user_7d <= follow_on_user_minutes
    action: challenge
    score: 10
    reason: Stopped recently.
    challenge: [face, hardware_token]
  - id: after_stop_device
    events: [payment]
    when: device_id != null && minutes_since_stopped_by_device_7d <= follow_on_device_minutes
    action: challenge
    score: 10
    reason: Stopped on this device recently.
    challenge: [face, hardware_token]
  - id: after_stop_card
    events: [payment]
    when: count_stopped_by_card_7d >= 1
    action: challenge
    score: 10
    reason: Stopped with this card recently.
    challenge: [face, hardware_token]
policy:
  follow_on: {user: 600, device: 600}
  outcomes:
    clear_hours: 24
    released_by_label: [after_stop_account, after_stop_device, after_stop_card]
"""
CARD = {"token": "tok-card-1"}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    opened = open_engine(tmp_path / "data", RULESET)
    yield opened
    opened.close()


def rules_of(engine: Engine, event_id: str) -> list[str]:
    stored = engine.recorder.lookup(event_id)
    assert stored is not None
    return [r.rule for r in stored.decision.reasons]


def stop(engine: Engine, event_id: str = "t1", ts: int = T0, **fields: object) -> None:
    fields.setdefault("device_id", "dev-1")
    assert send(engine, wire(event_id, "transfer", ts, amount="2000.00", **fields)) == "review"


def test_money_after_a_review_is_challenged_with_owner_only_methods(engine: Engine) -> None:
    assert send(engine, payment("p0", T0 - HOUR, "50.00")) == "allow"  # before: nothing
    stop(engine)
    assert send(engine, payment("p1", T0 + MINUTE, "50.00", device_id="dev-2")) == "challenge"
    stored = engine.recorder.lookup("p1")
    assert stored is not None and stored.decision.challenge == ["face", "hardware_token"]
    assert rules_of(engine, "p1") == ["after_stop_account"]


def test_a_block_is_a_stop_too(engine: Engine) -> None:
    body = wire("w1", "withdrawal", T0, amount="5000.00", device_id="dev-1")
    assert send(engine, body) == "block"
    assert send(engine, payment("p1", T0 + MINUTE, "50.00")) == "challenge"


def test_the_device_and_the_card_of_a_stop_follow_on_to_other_accounts(engine: Engine) -> None:
    stop(engine, card=CARD)
    other = payment("p1", T0 + MINUTE, "50.00", user="u2", device_id="dev-1")
    assert send(engine, other) == "challenge"
    assert rules_of(engine, "p1") == ["after_stop_device"]
    with_card = payment("p2", T0 + MINUTE, "50.00", user="u3", device_id="dev-3", card=CARD)
    assert send(engine, with_card) == "challenge"
    assert rules_of(engine, "p2") == ["after_stop_card"]
    elsewhere = payment("p3", T0 + MINUTE, "50.00", user="u4", device_id="dev-4")
    assert send(engine, elsewhere) == "allow"


def test_the_follow_on_ends_when_the_window_does(engine: Engine) -> None:
    stop(engine)
    assert send(engine, payment("p1", T0 + 600 * MINUTE, "50.00")) == "challenge"
    assert send(engine, payment("p2", T0 + 601 * MINUTE, "50.00")) == "allow"


def test_an_analysts_not_fraud_releases_the_account_on_every_device(engine: Engine) -> None:
    stop(engine)
    send(engine, label("l1", "t1", T0 + 10 * MINUTE, "not_fraud", source="analyst"))
    assert engine.outcomes.book.state("t1") == "review:resolved:not_fraud"
    for i, device in enumerate(["dev-1", "dev-9"]):
        body = payment(f"p{i}", T0 + 20 * MINUTE, "50.00", device_id=device)
        assert send(engine, body) == "allow"
    server_debit = payment("p9", T0 + 20 * MINUTE, "50.00")
    del server_debit["device_id"]
    assert send(engine, server_debit) == "allow"
    # released for clear_hours from the label, as long as nothing new is stopped
    assert send(engine, payment("p3", T0 + 9 * HOUR, "50.00")) == "allow"


def test_a_release_covers_what_was_reviewed_not_a_later_stop(engine: Engine) -> None:
    """The analyst looked at the stops up to the label: one after it, which nobody has
    looked at, sets the follow-on off again (the verdict used to open the account to
    every cause for clear_hours, and the loop's attacker went on under it)."""
    stop(engine)
    send(engine, label("l1", "t1", T0 + 10 * MINUTE, "not_fraud", source="analyst"))
    assert send(engine, payment("p1", T0 + 20 * MINUTE, "50.00")) == "allow"
    stop(engine, "t2", T0 + 2 * HOUR)
    assert send(engine, payment("p2", T0 + 2 * HOUR + MINUTE, "50.00")) == "challenge"
    assert rules_of(engine, "p2") == ["after_stop_account", "after_stop_device"]
    # the second stop reviewed and released too: the account is open again
    send(engine, label("l2", "t2", T0 + 3 * HOUR, "not_fraud", source="analyst"))
    assert send(engine, payment("p3", T0 + 3 * HOUR + MINUTE, "50.00")) == "allow"


def test_a_release_covers_amounts_up_to_the_reviewed_one(engine: Engine) -> None:
    """The analyst judged a 2,000 CNY transfer: the same amount or less goes on, a larger
    one is not what was judged and meets the follow-on."""
    stop(engine)
    send(engine, label("l1", "t1", T0 + 10 * MINUTE, "not_fraud", source="analyst"))
    assert send(engine, payment("p1", T0 + 20 * MINUTE, "2000.00")) == "allow"
    assert send(engine, payment("p2", T0 + 21 * MINUTE, "2000.01")) == "challenge"


@pytest.mark.parametrize(
    ("verdict", "source"), [("not_fraud", "customer"), ("fraud", "analyst"), ("fraud", "bank")]
)
def test_a_customers_word_or_a_fraud_verdict_keeps_the_stop(
    engine: Engine, verdict: str, source: str
) -> None:
    stop(engine)
    send(engine, label("l1", "t1", T0 + 10 * MINUTE, verdict, source=source))
    assert send(engine, payment("p1", T0 + 20 * MINUTE, "50.00")) == "challenge"


def test_not_fraud_on_an_allowed_payment_releases_nothing(engine: Engine) -> None:
    assert send(engine, payment("p0", T0 - MINUTE, "50.00")) == "allow"
    stop(engine)
    send(engine, label("l1", "p0", T0 + MINUTE, "not_fraud"))
    assert send(engine, payment("p1", T0 + 2 * MINUTE, "50.00")) == "challenge"


def test_a_release_lifts_only_the_listed_rules(tmp_path: Path) -> None:
    """A rule outside `released_by_label` still challenges after the release."""
    text = RULESET.replace(
        "released_by_label: [after_stop_account, after_stop_device, after_stop_card]",
        "released_by_label: [after_stop_device]",
    )
    engine = open_engine(tmp_path / "data", text)
    try:
        stop(engine)
        send(engine, label("l1", "t1", T0 + MINUTE, "not_fraud"))
        assert send(engine, payment("p1", T0 + 2 * MINUTE, "50.00")) == "challenge"
        assert rules_of(engine, "p1") == ["after_stop_account"]
    finally:
        engine.close()


def test_a_restart_keeps_the_stop_and_the_release(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = open_engine(data, RULESET)
    stop(first)
    stop(first, "t2", T0, user="u2")
    send(first, label("l1", "t1", T0 + MINUTE, "not_fraud"))
    first.close()
    second = open_engine(data, RULESET)
    try:
        assert send(second, payment("p1", T0 + 2 * MINUTE, "50.00", device_id="dev-5")) == "allow"
        body = payment("p2", T0 + 2 * MINUTE, "50.00", user="u2", device_id="dev-5")
        assert send(second, body) == "challenge"
        # the release's scope survives too: not above the reviewed amount
        assert send(second, payment("p3", T0 + 3 * MINUTE, "2500.00")) == "challenge"
    finally:
        second.close()


def test_a_book_written_before_releases_were_scoped_opens(tmp_path: Path) -> None:
    """A clearances table without the scope's columns gains them; its rows keep no scope."""
    path = tmp_path / "outcomes.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE clearances (user_id TEXT NOT NULL, device_id TEXT NOT NULL, "
        "rule TEXT NOT NULL, until_ts INTEGER NOT NULL, by_event_id TEXT NOT NULL, "
        "PRIMARY KEY (user_id, device_id, rule));"
        "INSERT INTO clearances VALUES ('u1', '', 'after_stop_account', 100, 'l1');"
    )
    db.close()
    book = OutcomeBook(path)
    try:
        assert book.cleared("u1", "dev-1", "after_stop_account", 99, 10**9, 98)
        assert not book.cleared("u1", "dev-1", "after_stop_account", 100)
    finally:
        book.close()
