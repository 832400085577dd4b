"""Declarative feature definitions: named event filters and aggregates over entities.

A feature is `how` (count, sum, distinct, is_new, minutes_since, seconds_since, age) of `of`
(a field) over the events matching filter `over`, grouped `by` an entity (or a pair such as
`user+device`), within a window. Its name is built from those parts, as river's `Agg` does,
so a rule author can predict it and grep for it:

    count_login_fail_by_ip_1h
    distinct_user_login_fail_by_device_24h
    sum_amount_money_out_by_user_channel_24h
    is_new_device_any_by_user_90d

The catalog lives in a YAML file (`features/default.yaml`); adding a feature is a data
change, not code. Extractors below are the only code that knows event field names.
"""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from payguard.events import Event

How = Literal[
    "count", "sum", "distinct", "is_new", "minutes_since", "seconds_since", "age", "watched"
]
Extractor = Callable[[Event], Any]

_DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>s|m|h|d)$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}

ENTITY_EXTRACTORS: dict[str, Extractor] = {
    "user": lambda e: e.user_id,
    "device": lambda e: e.device_id,
    "ip": lambda e: e.ip,
    "phone": lambda e: e.phone,
    "identity": lambda e: e.id_number,
    "card": lambda e: e.card.token if e.card is not None else None,
    "merchant": lambda e: e.merchant.id if e.merchant is not None else None,
    "payee": lambda e: e.payee.id if e.payee is not None else None,
    "channel": lambda e: e.channel,
    "city": lambda e: e.city,
    "category": lambda e: e.merchant.category if e.merchant is not None else None,
}
"""Entity kinds a feature can be grouped by or count distinct values of."""

VALUE_EXTRACTORS: dict[str, Extractor] = {**ENTITY_EXTRACTORS, "amount": lambda e: e.amount}


def parse_duration(text: str) -> int:
    """`10m`, `24h`, `90d`, `30s` → milliseconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"bad duration {text!r}: use a number and s, m, h or d (e.g. 24h)")
    return int(match.group("n")) * _UNIT_MS[match.group("unit")]


class EventFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which events feed a stream. `source: referenced` takes entities from the event a
    feedback event (`fraud_report`, `chargeback`) points at, at the feedback's own time."""

    types: list[str]
    success: bool | None = None
    categories: list[str] | None = None
    channels: list[str] | None = None
    source: Literal["event", "referenced"] = "event"
    settled: bool = False
    """Only events the engine let through (allowed, challenged or held): money it sent to
    review or blocked never left, so it must not count against a limit."""

    def matches(self, event: Event) -> bool:
        """Type is checked by the caller's index; this checks the rest."""
        if self.success is not None and event.success is not self.success:
            return False
        if self.categories is not None and (
            event.merchant is None or event.merchant.category not in self.categories
        ):
            return False
        return self.channels is None or event.channel in self.channels


class FeatureSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One aggregate over one filter and entity, expanded to one feature per window."""

    how: How
    over: str
    by: str
    of: str | None = None
    windows: list[str] = msgspec.field(default_factory=lambda: ["90d"])
    description: str = ""

    def names(self) -> list[str]:
        return [self.name(window) for window in self.windows]

    def name(self, window: str) -> str:
        of = f"_{self.of}" if self.of else ""
        by = self.by.replace("+", "_")
        if self.how == "watched":  # how long payguard has watched the entity: no filter
            return f"watched_minutes_by_{by}"
        suffix = "" if self.how == "age" else f"_{window}"
        return f"{self.how}{of}_{self.over}_by_{by}{suffix}"


class Catalog(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The whole feature catalog: named filters and the specs that use them."""

    filters: dict[str, EventFilter]
    features: list[FeatureSpec]
    lateness: str = "10m"
    learning: str = "1d"
    """How long payguard must watch an entity before `is_new` / `age` about it are trusted
    (features.watch; docs/features.md, "Watched history")."""

    def validate(self) -> "Catalog":
        """Reject unknown filters, entities, fields and durations before anything runs."""
        seen: set[str] = set()
        for spec in self.features:
            if spec.over not in self.filters:
                raise ValueError(f"feature on unknown filter {spec.over!r}")
            for part in spec.by.split("+"):
                if part not in ENTITY_EXTRACTORS:
                    raise ValueError(f"feature by unknown entity {part!r}")
            _check_of(spec)
            for window in spec.windows:
                parse_duration(window)
            for name in spec.names():
                if name in seen:
                    raise ValueError(f"feature {name} defined twice")
                seen.add(name)
        parse_duration(self.lateness)
        parse_duration(self.learning)
        return self


def _check_of(spec: FeatureSpec) -> None:
    if spec.how == "watched" and (spec.of is not None or "+" in spec.by):
        raise ValueError(f"watched by {spec.by} takes no `of` and one entity, not a pair")
    needs_of = spec.how in ("sum", "distinct", "is_new")
    if needs_of and spec.of is None:
        raise ValueError(f"{spec.how} over {spec.over} by {spec.by} needs `of`")
    if spec.of is not None and spec.of not in VALUE_EXTRACTORS:
        raise ValueError(f"unknown field of={spec.of!r}")
    if spec.how == "sum" and spec.of != "amount":
        raise ValueError("sum is defined only of amount")


DEFAULT_CATALOG_PATH = Path(__file__).with_name("default.yaml")


def load_catalog(path: Path = DEFAULT_CATALOG_PATH) -> Catalog:
    """Read and validate a YAML feature catalog."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return msgspec.convert(raw, Catalog).validate()
