"""How long payguard has watched each entity, so that "is this new?" can say "unknown".

A bank turns payguard on with millions of existing customers and no history in it. Until
it has watched a customer for a while, that customer's usual phone, IP, city and payee
look new, and rules on `is_new_*` / `age_*` would challenge honest people for weeks. This
module keeps what the feature state needs to tell "new" from "not watched long enough":

- the watch start `W`: the time of the first *activity* event filed (arrival order).
  Account records and their one-time codes (`CONTEXT_TYPES`) are context, not watched
  activity: a bank's back-fill of accounts, or the simulator's history mode, emits them at
  their real, earlier dates before any activity;
- per entity of a tracked kind (`user`, `device`, `merchant`, …) `S`, the time of its
  first event at or after `W` (of any type, in the event's own fields);
- per account the latest `register` time: an account registered at or after `W` is *born
  under watch*, and one with any register record has a known birth date.

The rules the feature state applies (docs/features.md, "Watched history"), for an entity
key `k` whose first component is `c` (`user` for `user+device`), at time `t`:

- `is_new` over window `w` is known iff `c` was born under watch, or `t - W >= w` (payguard
  saw the whole window), or `t - S(c) >= min(w, learning)`; unknown reads `false`.
- `age` is known iff `c` is an account with a register record, or (not an account key) the
  entity first appeared at `f` with `f - R >= learning`, where `R` is `S(c)` for a pair
  and `W` for a single entity: payguard had watched long enough for it to show up earlier
  had it existed. Unknown reads at least the learning period: `max(age, learning)`.
- `watched_minutes` is `(t - S(c)) // 1 min`, 0 when `c` was not seen since `W`;
  `watched_minutes_by_all` is `(t - W) // 1 min`, 0 before the watch started.

Everything here is a function of the events filed, in arrival order; the brute-force twin
in `features.reference` recomputes it from the raw log. Memory: two ints per tracked
entity (`S` and its latest event) and one per registered account. `forget` drops an
entity the catalog's `memory` after its latest event (and an account's registration with
it): it is then unknown again if it comes back, which is safe (`is_new` reads false) but
costs it its history; without forgetting, a stream of ever-new entities grows without
bound.
"""

from collections.abc import Iterable
from typing import Any

from payguard.events import Event
from payguard.features.spec import ENTITY_EXTRACTORS
from payguard.types import MINUTE_MS, EpochMs

CONTEXT_TYPES: frozenset[str] = frozenset(
    {"register", "kyc_verify", "card_bind", "otp_send", "otp_verify"}
)
"""Account records (and the one-time codes that confirm them): filed like any event, but
they never start the watch, because a back-fill emits them at their real, earlier dates."""

ACCOUNT = "user"
"""The entity kind with a birth record (`register`)."""


class WatchedHistory:
    """The watch start, first-watched time per tracked entity and account birth dates."""

    def __init__(self, kinds: Iterable[str], learning_ms: int) -> None:
        self.kinds: tuple[str, ...] = tuple(kinds)
        self.learning_ms = learning_ms
        self._extract = [ENTITY_EXTRACTORS[kind] for kind in self.kinds]
        self._account = self.kinds.index(ACCOUNT) if ACCOUNT in self.kinds else -1
        self.start: EpochMs | None = None
        """W: the first activity event's time, None until one is filed."""
        self.since: list[dict[str, EpochMs]] = [{} for _ in self.kinds]
        """S per tracked kind: entity → its earliest event time at or after W."""
        self.last: list[dict[str, EpochMs]] = [{} for _ in self.kinds]
        """Per tracked kind: entity → its latest event time at or after W (for `forget`)."""
        self.registered: dict[str, EpochMs] = {}
        """Account → its latest `register` time (any date: back-filled records count)."""

    @property
    def account(self) -> int:
        """Position of the account kind among the tracked ones (-1: not tracked)."""
        return self._account

    def index(self, kind: str) -> int:
        """Position of a tracked kind (what the generated snapshot code passes back)."""
        return self.kinds.index(kind)

    def observe(self, event: Event) -> None:
        """File one event (after the feature snapshot of it was taken)."""
        t = event.ts
        start = self.start
        if start is None and event.type not in CONTEXT_TYPES:
            start = self.start = t
        if event.type == "register" and event.user_id is not None:
            born = self.registered.get(event.user_id)
            if born is None or t > born:
                self.registered[event.user_id] = t
        if start is None or t < start:
            return
        for extract, since in zip(self._extract, self.since, strict=True):
            key = extract(event)
            if key is not None:
                first = since.get(key)
                if first is None or t < first:
                    since[key] = t
        for extract, last in zip(self._extract, self.last, strict=True):
            key = extract(event)
            if key is not None and last.get(key, t) <= t:
                last[key] = t

    def forget(self, before: EpochMs) -> None:
        """Forget entities last seen at or before `before`, and accounts registered under
        watch at or before it that are no longer tracked (a back-filled registration, dated
        before the watch, stays: those are the bank's customers, not newcomers)."""
        for since, last in zip(self.since, self.last, strict=True):
            for key in [k for k, ts in last.items() if ts <= before]:
                del last[key]
                since.pop(key, None)
        if self._account >= 0:
            active = self.last[self._account]
            registered = self.registered
            for user in [u for u, ts in registered.items() if ts <= before and u not in active]:
                del registered[user]

    def _born(self, kind: int, key: str | None) -> bool:
        start = self.start
        return (
            kind == self._account
            and key is not None
            and start is not None
            and self.registered.get(key, -1) >= start
        )

    def knows_new(self, kind: int, key: str | None, t: EpochMs, window_ms: int) -> bool:
        """Whether `is_new` over `window_ms` for an entity whose first component is `key`
        (of tracked kind `kind`) can be trusted at `t`."""
        start = self.start
        if start is None:
            return False
        if t - start >= window_ms or self._born(kind, key):
            return True
        first = self.since[kind].get(key) if key is not None else None
        return first is not None and t - first >= min(window_ms, self.learning_ms)

    def age(self, kind: int, key: str | None, pair: bool, first: EpochMs | None, t: EpochMs) -> int:
        """`age` in minutes of an entity first seen at `first` (None: not yet), whose first
        component is `key`: exact when known, else at least the learning period."""
        observed = 0 if first is None or first > t else (t - first) // MINUTE_MS
        if self._knows_age(kind, key, pair, t if first is None or first > t else first):
            return observed
        return max(observed, self.learning_ms // MINUTE_MS)

    def _knows_age(self, kind: int, key: str | None, pair: bool, appeared: EpochMs) -> bool:
        start = self.start
        if start is None or key is None:
            return False
        if kind == self._account:
            if self._born(kind, key):
                return True
            if not pair:
                return key in self.registered
        since = self.since[kind].get(key) if pair else start
        return since is not None and appeared - since >= self.learning_ms

    def watching_minutes(self, t: EpochMs) -> int:
        """Minutes since the watch start (0 before it)."""
        start = self.start
        return 0 if start is None or start > t else (t - start) // MINUTE_MS

    def watched_minutes(self, kind: int, key: str | None, t: EpochMs) -> int:
        """Minutes since payguard first saw `key` at or after the watch start (0: never)."""
        first = self.since[kind].get(key) if key is not None else None
        return 0 if first is None or first > t else (t - first) // MINUTE_MS

    def export(self) -> dict[str, Any]:
        return {
            "kinds": list(self.kinds),
            "learning_ms": self.learning_ms,
            "start": self.start,
            "since": self.since,
            "last": self.last,
            "registered": self.registered,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Adopt a snapshot's watch (raises ValueError if tracked for other kinds)."""
        if list(state["kinds"]) != list(self.kinds) or state["learning_ms"] != self.learning_ms:
            raise ValueError("snapshot was taken with a different feature catalog")
        self.start = state["start"]
        self.since = state["since"]
        self.last = state["last"]
        self.registered = state["registered"]
