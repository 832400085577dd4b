"""What an API key may do: a scope per kind of change or read, and the one rule for
whether the scopes a key holds grant the scope a route needs.

`admin` grants everything; a scope ending in `:*` grants every scope with its prefix
(`cases:*` grants `cases:read` and `cases:write`; not `lists:write`). Nothing else is implied:
`rules:admin` cannot write events, `events:write` cannot read the graph.
"""

from collections.abc import Iterable
from typing import Final, Literal, get_args

Scope = Literal[
    "events:write",
    "decisions:read",
    "labels:write",
    "holds:write",
    "rules:admin",
    "cases:read",
    "cases:write",
    "lists:write",
    "cases:*",
    "admin",
]
SCOPES: Final[tuple[Scope, ...]] = get_args(Scope)
SCOPE_PURPOSE: Final[dict[Scope, str]] = {
    "events:write": "send events and OTP requests (the payment front end)",
    "decisions:read": "read decisions, holds and the identity graph (analysts, the app)",
    "labels:write": "report fraud, chargebacks and other outcomes",
    "holds:write": "release or revoke held operations (trusted channels, staff)",
    "rules:admin": "read and publish the ruleset",
    "cases:read": "read cases, queues, case reports (STR) and lists",
    "cases:write": "work cases: claim, resolve, hold, block, snooze, note, bulk actions",
    "lists:write": "create allow/deny lists and add or remove their entries",
    "cases:*": "every cases scope (cases:read, cases:write)",
    "admin": "everything, including keys, the audit log and webhook deliveries",
}


def parse_scope(text: str) -> Scope:
    """`text` as a Scope, or ValueError listing the known ones."""
    for scope in SCOPES:
        if text == scope:
            return scope
    raise ValueError(f"unknown scope {text[:40]!r}; expected one of {', '.join(SCOPES)}")


def grants(held: Iterable[str], needed: str) -> bool:
    """Whether a key holding `held` may use a route that needs `needed`.

    >>> grants(["admin"], "rules:admin"), grants(["cases:*"], "cases:write")
    (True, True)
    >>> grants(["events:write"], "decisions:read")
    False
    """
    for scope in held:
        if scope in ("admin", needed):
            return True
        if scope.endswith(":*") and needed.startswith(scope[:-1]):
            return True
    return False
