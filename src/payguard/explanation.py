"""How `?explain=1` shows the feature values: as the rules read them, with units said
and "never" as null.

The rules compare `minutes_since_*` and friends against a sentinel, `features.NEVER`
(1000000000), when nothing happened in the window: `minutes_since_sim_swap_by_user_72h
<= 4320` is then simply false. Shown to a person that sentinel reads as a time (1.9
millennia), and through some JSON tools as a float `1e9`; so the explanation shows null
for it. Money stays what the rules read — integer fen, hundredths of the event's
currency — and `units` says so next to the values, so nobody reads 12500 as yuan.
"""

from typing import Any, Final

from payguard.features import NEVER

NEVER_SHOWN_AS_NULL: Final = ("minutes_since_", "seconds_since_")
"""Name prefixes of features whose NEVER means "no such earlier event"."""
NEVER_NAMES: Final = frozenset({"graph_reported_distance"})
"""Whole names whose NEVER means "none" (no reported account within reach)."""
NEVER_SUFFIXES: Final = ("_started_minutes_ago",)
"""Name suffixes of chain features whose NEVER means "no match started"."""

UNITS: Final[dict[str, str]] = {
    "money": "fen",
    "money_note": (
        "amounts (sum_amount_*, p90_amount_*, amount) are integer fen, hundredths of the "
        "event's currency (CNY unless the event names another): 12500 is 125.00"
    ),
    "never": "null: nothing in the window (the rules compare against 1000000000)",
}
"""The `units` an explained decision carries beside its `features`."""


def is_never(name: str, value: Any) -> bool:
    """Whether `value` of feature `name` is the rules' "never" sentinel."""
    if type(value) is not int or value < NEVER:
        return False
    named = name.startswith(NEVER_SHOWN_AS_NULL) or name.endswith(NEVER_SUFFIXES)
    return named or name in NEVER_NAMES


def shown_features(features: dict[str, Any]) -> dict[str, Any]:
    """The features as an explanation shows them: every value as the rules read it, but
    null for a "never" sentinel. Order and names are kept."""
    return {name: None if is_never(name, value) else value for name, value in features.items()}
