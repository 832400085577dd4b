"""Allow and deny lists of cards, devices, phones, ID numbers, IPs, payees, merchants and
accounts, read by rules as `card in deny_list('stolen_cards')` (docs/rules.md, "Lists";
docs/cases.md).

    ListService.add(kind, name, value)   clear card/phone/ID numbers tokenized at once
      → lists.db (SQLite) + audit log    before it is answered
      → in-memory index                  the next event sees it (no restart)
    Engine.lists = service               rules.ListReader: `contains(kind, name, …, at)`

Interface for the console and the API (kept stable): `ListService.lists`, `get`,
`entries`, `create`, `add`, `remove`, `remove_value`, `token_of`, `contains`; the types
`ListInfo`, `ListEntry`, `ListKind`, `ListSubject`; errors are `ListError(field, reason,
status)`.
"""

from payguard.lists.service import LISTS_DB, ListService
from payguard.lists.types import (
    LIST_KINDS,
    LIST_SUBJECTS,
    TOKENIZED_SUBJECTS,
    ListEntry,
    ListError,
    ListInfo,
    ListKind,
    ListSubject,
)

__all__ = [
    "LISTS_DB",
    "LIST_KINDS",
    "LIST_SUBJECTS",
    "TOKENIZED_SUBJECTS",
    "ListEntry",
    "ListError",
    "ListInfo",
    "ListKind",
    "ListService",
    "ListSubject",
]
