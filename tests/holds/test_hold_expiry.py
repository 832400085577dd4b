"""Hold expiry in the books: `due` finds the holds stored as held whose release time has
passed (earliest first, not the resolved ones, also after reopening a SQLite book), and
`expire` stores each as released by expiry exactly once (holds.expire_due)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from payguard.holds import Hold, HoldBook, MemoryHoldBook, SQLiteHoldBook, expire_due
from payguard.types import HOUR_MS

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
DAY = 24 * HOUR_MS


def _hold(hold_id: str, placed: int = T0) -> Hold:
    return Hold(
        hold_id=hold_id,
        event_id=hold_id.removeprefix("hold-"),
        user_id="u1",
        type="transfer",
        amount=500_000,
        currency="CNY",
        placed_ts=placed,
        release_ts=placed + DAY,
        counterparty="payee-1",
    )


@pytest.fixture(params=["memory", "sqlite"])
def book(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HoldBook]:
    made: HoldBook = (
        MemoryHoldBook() if request.param == "memory" else SQLiteHoldBook(tmp_path / "holds.db")
    )
    yield made
    made.close()


def test_due_finds_only_held_holds_past_their_release(book: HoldBook) -> None:
    book.place(_hold("hold-late", placed=T0 + 2 * HOUR_MS))
    book.place(_hold("hold-early", placed=T0))
    book.place(_hold("hold-revoked", placed=T0 + HOUR_MS))
    book.place(_hold("hold-future", placed=T0 + 5 * DAY))
    book.flush()
    book.resolve("hold-revoked", "revoked", at_ms=T0 + 2 * HOUR_MS, by="customer")
    assert book.due(T0 + DAY - 1, limit=10) == []
    now = T0 + DAY + 3 * HOUR_MS
    assert [h.hold_id for h in book.due(now, limit=10)] == ["hold-early", "hold-late"]
    assert [h.hold_id for h in book.due(now, limit=1)] == ["hold-early"]


def test_expire_stores_each_due_hold_once(book: HoldBook) -> None:
    book.place(_hold("hold-a"))
    book.flush()
    assert book.expire("hold-a", T0 + DAY - 1) is None  # not due yet
    done = book.expire("hold-a", T0 + DAY + 5)
    assert done is not None
    assert (done.state, done.resolved_by, done.resolved_ts) == ("released", "expiry", T0 + DAY)
    assert book.expire("hold-a", T0 + DAY + 6) is None
    assert book.due(T0 + 2 * DAY, limit=10) == []
    stored = book.get("hold-a")
    assert stored is not None and stored.state == "released"


def test_expire_due_announces_first_and_records_once(book: HoldBook) -> None:
    book.place(_hold("hold-a"))
    book.place(_hold("hold-b", placed=T0 + 1))
    book.flush()
    announced: list[str] = []
    recorded: list[Hold] = []
    now = T0 + 2 * DAY
    first = expire_due(book, now, lambda h: announced.append(h.hold_id), recorded.append)
    again = expire_due(book, now, lambda h: announced.append(h.hold_id), recorded.append)
    assert [h.hold_id for h in first] == ["hold-a", "hold-b"] and again == []
    assert announced == ["hold-a", "hold-b"]
    assert [(h.state, h.resolved_by) for h in recorded] == [("released", "expiry")] * 2


def test_a_reopened_book_still_finds_due_holds(tmp_path: Path) -> None:
    path = tmp_path / "holds.db"
    first = SQLiteHoldBook(path)
    first.place(_hold("hold-a"))
    first.place(_hold("hold-b", placed=T0 + 1))
    first.flush()
    assert first.expire("hold-a", T0 + DAY) is not None
    first.close()
    second = SQLiteHoldBook(path)
    try:
        assert [h.hold_id for h in second.due(T0 + 2 * DAY, limit=10)] == ["hold-b"]
    finally:
        second.close()
