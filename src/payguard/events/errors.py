"""The one error the edge raises: which field is wrong and why.

The HTTP layer turns it into a 4xx JSON body, the CLI into exit code 2 and one line naming
the event; nothing deeper than the edge ever sees malformed input.
"""

from typing import Any


class EventError(ValueError):
    """An event failed contract v1: `field` is a dotted path (`card.number`), `reason` is prose."""

    def __init__(
        self, field: str, reason: str, event_id: str | None = None, *, malformed: bool = False
    ) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.event_id = event_id
        self.malformed = malformed
        """True when the body was not JSON at all (HTTP 400), not a contract violation (422)."""

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "error": "invalid_event",
            "field": self.field,
            "reason": self.reason,
        }
        if self.event_id is not None:
            body["event_id"] = self.event_id
        return body
