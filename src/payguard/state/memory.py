"""The embedded backend: the process's own `FeatureState`, with no layer in between.

`snapshot`, `apply` and the sweeps are the feature state's own bound methods, set as
instance attributes, so a call through the seam is the very call the engine made before
the seam existed (measured side by side in docs/benchmarks.md, "State seam").
Idempotency needs no claim here: one process owns the event log, whose unique index and
the engine's recent ids (engine.idempotency) answer repeats. `claim` still keeps what it
is told, so the contract suite holds both backends to the same answers.
"""

from collections.abc import Callable
from typing import Any

import msgspec

from payguard.decision import Decision
from payguard.events import Event
from payguard.features import FeatureState
from payguard.features.state import QueryPlan


class StateUnavailable(Exception):
    """Redis did not answer in time, or an entity stayed contended: the event is not
    decided (the edge answers 503; the caller may retry with the same event_id)."""


class Claimed(msgspec.Struct, frozen=True):
    """What the first worker to claim an event_id recorded for it."""

    payload_hash: bytes
    decision: Decision


class MemoryState:
    """In-process state: the engine's `FeatureState` itself."""

    shared = False

    def __init__(self, features: FeatureState) -> None:
        self.features = features
        self.snapshot: Callable[[Event, QueryPlan], dict[str, Any]] = features.snapshot
        self.apply: Callable[[Event, Event | None, bool], None] = features.update
        self.sweep: Callable[[], int] = features.sweep
        self.begin_sweep: Callable[[int], None] = features.begin_sweep
        self.sweep_step: Callable[[], bool] = features.sweep_step
        self.accounts_of: Callable[[Event], tuple[str, ...]] = features.accounts_of
        self.lost: list[tuple[str, str]] = []
        """Never filled: nothing is deferred here (`flush`)."""
        self._claims: dict[str, Claimed | None] = {}
        """Claims made through the seam (only the contract tests make any: the engine
        never claims on an unshared backend)."""

    def watermark(self) -> int:
        return self.features.watermark

    def flush(self) -> None:
        """Nothing deferred: `apply` changed the state itself."""

    def prefetch(self, events: list[Event]) -> None:
        """Nothing to read ahead: the state is this process's."""

    def claim(self, event: Event, payload_hash: bytes) -> Claimed | None:
        event_id = event.event_id
        if event_id in self._claims:
            found = self._claims[event_id]
            if found is None:
                raise RuntimeError(f"event_id {event_id!r} is being decided in this process")
            return found
        self._claims[event_id] = None
        return None

    def settle(self, event_id: str, payload_hash: bytes, decision: Decision) -> None:
        self._claims[event_id] = Claimed(payload_hash, decision)

    def release(self, event_id: str) -> None:
        self._claims.pop(event_id, None)

    def close(self) -> None:
        """Nothing to close: the engine writes the feature state's snapshots."""
