"""The board's contract, and `open_board` to pick a backend from a URL."""

from typing import Final, Protocol

import msgspec

RULESET: Final = "ruleset"
"""Topic of the active ruleset: the body is its YAML source."""
LISTS: Final = "lists"
"""Topic of the lists: the body is empty; a new version means "read your lists again"."""


class BoardError(Exception):
    """The board could not be read or written (its store is unreachable)."""


class Notice(msgspec.Struct, frozen=True):
    """One topic's newest notice: its version (1, 2, … per topic) and body."""

    topic: str
    version: int
    body: bytes


class Board(Protocol):
    """Numbered notices per topic, shared by every worker."""

    def post(self, topic: str, body: bytes) -> int:
        """Make `body` the topic's newest notice; returns its version (atomic: two
        workers posting at once get two versions, the later one wins)."""
        ...

    def versions(self) -> dict[str, int]:
        """Every topic's newest version: what a worker polls (one small read)."""
        ...

    def read(self, topic: str) -> Notice | None:
        """The topic's newest notice, None before the first."""
        ...

    def close(self) -> None: ...
