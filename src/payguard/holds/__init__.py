"""Delayed, revocable transfers (`hold` decisions): the book of holds and their states."""

from payguard.holds.book import (
    HOLD_STATES,
    Hold,
    HoldBook,
    HoldError,
    HoldState,
    MemoryHoldBook,
    PostgresHoldBook,
    SQLiteHoldBook,
    expire_due,
)

__all__ = [
    "HOLD_STATES",
    "Hold",
    "HoldBook",
    "HoldError",
    "HoldState",
    "MemoryHoldBook",
    "PostgresHoldBook",
    "SQLiteHoldBook",
    "expire_due",
]
