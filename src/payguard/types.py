"""Aliases shared by every stage.

Money is integer minor units (fen) everywhere inside payguard; time is integer epoch
milliseconds. Neither is ever a float.
"""

from typing import TypeAlias

EpochMs: TypeAlias = int
"""Event time in milliseconds since the Unix epoch (UTC)."""

Fen: TypeAlias = int
"""Money in minor units (1 CNY = 100 fen)."""

EntityKey: TypeAlias = str
"""The key of one entity instance: a user id, a device id, a token, or a pair joined by '|'."""

MINUTE_MS: int = 60_000
HOUR_MS: int = 60 * MINUTE_MS
DAY_MS: int = 24 * HOUR_MS
