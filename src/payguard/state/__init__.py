"""The state seam: everything an event reads before its decision and writes after it.

The engine asks a `StateBackend` two questions per event — "snapshot these features for
this event" (`snapshot`, point in time: the event never sees itself) and "apply this
event" (`apply`, after the record is queued) — and, when several workers share the state,
"has any worker claimed this event_id?" (`claim`, then `settle`). It never knows where the
state lives:

- `MemoryState` (`state.memory`): today's in-process `FeatureState`, its methods bound
  as they are, so the embedded engine pays nothing for the seam;
- `RedisState` (`state.redis`): the same `FeatureState` code run over each touched
  entity's state fetched from Redis (or Redis Cluster: every key is hash-tagged per entity,
  so one entity is one slot) in one pipelined round trip, and written back with a
  per-entity compare-and-set script (no lost update when workers race on an entity).

Both are held to one contract suite (tests/state/test_contract.py).
"""

from collections.abc import Callable
from typing import Any, Protocol

from payguard.decision import Decision
from payguard.events import Event
from payguard.features import FeatureState, QueryPlan
from payguard.state.memory import Claimed, MemoryState, StateUnavailable


class StateBackend(Protocol):
    """Where an event's feature state, phone links, watched history and idempotency
    claims live. `features` is the feature *code* (catalog, layout, plans): a backend may
    also keep the state in it (memory) or use it as a per-event scratch (Redis)."""

    features: FeatureState
    shared: bool
    """Whether other processes write the same state (idempotency must then be claimed)."""

    @property
    def snapshot(self) -> Callable[[Event, QueryPlan], dict[str, Any]]:
        """(event, plan) -> the plan's feature values as of `event.ts`, from events
        applied before it (never the event itself)."""
        ...

    @property
    def apply(self) -> Callable[[Event, Event | None, bool], None]:
        """(event, referenced, declined): file a decided event (and, for feedback, under
        its `referenced` event's entities); `declined`: sent to review or blocked."""
        ...

    @property
    def accounts_of(self) -> Callable[[Event], tuple[str, ...]]:
        """The accounts an event concerns (a carrier signal's: those linked to its phone)."""
        ...

    def watermark(self) -> int:
        """The newest event time applied (the lateness bound is measured back from it)."""
        ...

    @property
    def sweep(self) -> Callable[[], int]:
        """Forget what no window reaches any more (memory); Redis lets TTLs do it."""
        ...

    lost: list[tuple[str, str]]
    """(event_id, cause) of applied events whose deferred writes failed (the engine
    counts and logs them, then empties the list)."""

    def prefetch(self, events: list[Event]) -> None:
        """Read what a batch of events touches before they are decided one by one (Redis:
        one round trip for the batch; `flush` ends it). Memory: nothing to read."""
        ...

    def flush(self) -> None:
        """Send what `apply` deferred (Redis: to the next round trip); after it the store
        holds every event applied here. StateUnavailable if that failed (see `lost`)."""
        ...

    @property
    def begin_sweep(self) -> Callable[[int], None]:
        """(events): start a sweep round done in slices over about that many
        `sweep_step` calls (memory: features.sweep); Redis lets TTLs do it."""
        ...

    @property
    def sweep_step(self) -> Callable[[], bool]:
        """One bounded slice of the round in flight; whether there was one."""
        ...

    def claim(self, event: Event, payload_hash: bytes) -> Claimed | None:
        """Claim the event's id for this process: None if it is now ours to decide, else what
        the worker that claimed it first recorded (its payload hash and decision; waits a
        bounded time while that worker is still deciding)."""
        ...

    def settle(self, event_id: str, payload_hash: bytes, decision: Decision) -> None:
        """Publish the decision of a claimed event to other workers' repeats."""
        ...

    def release(self, event_id: str) -> None:
        """Give a claim back (the event was not recorded: a refused or failed commit)."""
        ...

    def close(self) -> None: ...


__all__ = ["Claimed", "MemoryState", "StateBackend", "StateUnavailable"]
