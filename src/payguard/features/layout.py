"""The shape of the feature state that its generated code and its clearings read: the
streams, entity kinds and features a catalog compiles to, and `StateLayout`, the part of
`FeatureState` they need. It sits below `state.py` so neither `compiled.py` nor
`cleared.py` imports the state back."""

from typing import Any, Protocol

import msgspec

from payguard.features.spec import EventFilter, Extractor
from payguard.features.timeline import Timeline
from payguard.features.watch import WatchedHistory
from payguard.types import EpochMs

NEVER = 10**9
"""Value of `minutes_since`/`seconds_since` when nothing matched: comparisons like
`minutes_since_sim_swap_by_phone_72h <= 4320` are then simply false."""

RAW_HOWS = frozenset({"count", "sum", "quantile", "hour_share", "top_share"})
"""Aggregates that need every entry of their window raw: a stream keeps its entries for
the longest window of these (`Stream.raw_ms`) and folds older ones."""
FOLDABLE_HOWS = frozenset({"is_new", "distinct", "minutes_since", "seconds_since"})
"""Aggregates answered exactly from the folded past (features.timeline)."""

Record = list[Timeline | None]
"""One entity's timelines, a slot per stream of its kind (None: nothing filed yet)."""
Table = dict[str, Record | msgspec.Raw | bytes]
"""One entity kind's records by key; a record restored from a snapshot stays a
`msgspec.Raw` until first used, one the sweep found idle is `bytes` (features.cold)."""


class Stream(msgspec.Struct, frozen=True):
    """Events of one filter grouped by one entity, with the value one aggregate needs."""

    index: int
    filter: EventFilter
    by: str
    of: str | None
    retention_ms: int
    """The longest window: older entries and folded values are forgotten."""
    raw_ms: int
    """How far back raw entries are kept (besides the lateness): the longest window of an
    aggregate that needs them (`RAW_HOWS`); older entries are folded (features.timeline)."""
    keeps_first_seen: bool
    age_only: bool
    """Only `age` reads this stream: it needs the first-seen time, never the entries."""
    key: Extractor
    value: Extractor | None
    conditional: bool
    """Whether the filter checks more than the event type (skipped on the hot path if not)."""
    keeps_past: bool
    """Whether `is_new` or `distinct` reads it past the raw head (`Timeline.past`)."""
    kind: int
    """Index of the entity kind (`by`) whose records hold this stream's timelines."""
    slot: int
    """Position of this stream's timeline in each record of its kind."""
    weighs: bool = False
    """Whether `top_share` reads this stream, so its timelines keep `weights` (fen)."""
    tallies: bool = False
    """Whether `top_share` or `hour_share` reads it, so its timelines keep `tally`."""
    ranks: bool = False
    """Whether `quantile` reads it, so its timelines keep `ranked`."""
    shape: int = 0
    """Which containers its timelines keep and how they pack values
    (`features.timeline.shape_of`)."""
    before_stop: tuple[int, int] | None = None
    """For a filter with `before_stop`: (slot of the `stopped` stream in the same record,
    how long before the event a stop there keeps it out, ms)."""


class Kind(msgspec.Struct, frozen=True):
    """One way to group by entity (`user`, `user+device`, …) and its streams, by slot."""

    by: str
    key: Extractor
    streams: tuple[int, ...]


class Feature(msgspec.Struct, frozen=True):
    name: str
    how: str
    stream: int
    window_ms: int
    longest: bool
    """Whether the window reaches back to the raw head's start (its lower bisect is then
    usually skipped)."""
    folded: bool = False
    """Whether it reads the folded past too (`is_new`, `distinct`, `minutes_since`,
    `seconds_since` over a window longer than the raw head)."""
    rank: tuple[int, int] = (1, 2)
    """The quantile `quantile` reads, as an exact fraction (numerator, denominator)."""

    @property
    def default(self) -> Any:
        """The value when the entity has nothing filed (`is_new` depends on the event)."""
        return NEVER if self.how in ("minutes_since", "seconds_since") else _DEFAULTS.get(self.how)


_DEFAULTS: dict[str, Any] = {
    "count": 0,
    "sum": 0,
    "distinct": 0,
    "age": 0,
    "is_new": None,
    "quantile": 0,
    "hour_share": 0,
    "top_share": 0,
    "watched": 0,
}
WATCHED_STREAM = -1
"""`Feature.stream` of a `watched` feature: it reads `FeatureState.watch`, not a stream."""


class StateLayout(Protocol):
    """What generated code and clearings read of a `FeatureState`."""

    @property
    def streams(self) -> list[Stream]: ...
    @property
    def kinds(self) -> list[Kind]: ...
    @property
    def watch(self) -> WatchedHistory: ...
    @property
    def entities(self) -> list[Table]: ...
    @property
    def utc_offset_hours(self) -> int: ...
    @property
    def lateness_ms(self) -> int: ...
    @property
    def watermark(self) -> EpochMs: ...
    def slots(self, kind: int) -> int:
        """How many timelines a record of entity kind `kind` holds."""
        ...
