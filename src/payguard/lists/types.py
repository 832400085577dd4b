"""What a list is: allow or deny, the kind of subject it holds, and its entries.

Card, phone and ID numbers arrive in clear (typed by an analyst) and are tokenized at once
with the events' tokenizer, so an entry holds exactly the token an event on that card,
phone or person carries; the clear value is never stored, logged or returned. Devices, IPs,
payees, merchants and accounts are ids the events carry as they are.
"""

from typing import Annotated, Final, Literal, get_args

import msgspec

from payguard.types import EpochMs

ListKind = Literal["allow", "deny"]
LIST_KINDS: Final[tuple[ListKind, ...]] = get_args(ListKind)
ListSubject = Literal["card", "device", "phone", "id_number", "ip", "payee", "merchant", "account"]
LIST_SUBJECTS: Final[tuple[ListSubject, ...]] = get_args(ListSubject)
TOKENIZED_SUBJECTS: Final[frozenset[ListSubject]] = frozenset({"card", "phone", "id_number"})
"""Subjects entered in clear and stored only as their token."""

ListName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
"""A list's name as rules write it (`deny_list('stolen_cards')`): lower-case identifier."""
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Owner = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class ListInfo(msgspec.Struct, frozen=True):
    """One list: `kind` and `name` identify it (an allow and a deny list may share a
    name); every entry is a `subject`. `entries` counts the live ones."""

    name: str
    kind: ListKind
    subject: ListSubject
    owner: str
    reason: str
    created_ms: EpochMs
    entries: int = 0


class ListEntry(msgspec.Struct, frozen=True):
    """One subject on a list: `value` is a token for cards, phones and ID numbers, the id
    as events carry it otherwise. Live while `expires_ms` is None or in the future and
    it is not removed."""

    entry_id: str
    list_name: str
    kind: ListKind
    subject: ListSubject
    value: str
    reason: str
    owner: str
    added_ms: EpochMs
    expires_ms: EpochMs | None = None
    case_id: str | None = None
    """The case whose action put it there, if any."""

    def live(self, at_ms: EpochMs) -> bool:
        return self.expires_ms is None or at_ms < self.expires_ms


class ListError(ValueError):
    """A list change that cannot be made: `field` names what is wrong, `status` is the
    HTTP answer (404 unknown list or entry, 409 exists already, 422 a bad value)."""

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.status = field, reason, status
