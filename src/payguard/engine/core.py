"""The only place the stages are wired together.

    Event → features + identity graph (point-in-time snapshots) → chain patterns
          → rules → policy → Decision → recorded → features, graph and chains updated

Per event the engine (1) answers a repeated `event_id` from the record, (2) snapshots the
features and graph features the applicable rules and chain conditions need, as of the
event's time, (3) matches the chain patterns the rules read, (4) evaluates those rules,
(5) combines hits into a decision, (6) queues event + decision in one record, and only
then (7) files the event into the feature state, the graph and the chain matcher. A
snapshot of that state is written only right after a flush, so after a crash `recover()`
replays exactly the recorded events that the snapshot does not yet hold: nothing lost,
nothing counted twice. Chain steps are CEL conditions over the same point-in-time values,
so recovery recomputes those values for each replayed event before filing it.

Outcomes (`challenge_result`, `label`) are checked against the decision they reference
before anything is recorded, acknowledged with an allow no rule decided, and filed in the
outcome book (payguard.outcomes) when applied, live or in recovery; a strong step-up they
report passed drops the rules it cleared from later decisions of that account and device.
"""

import contextlib
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from payguard.chains import ChainMatch, ChainMatcher, Variables, chain_variables
from payguard.chains import recomputed_variables as recomputed_chain_variables
from payguard.config import Settings
from payguard.decision import ChainEvidence, Decision, HoldTerms, Reason
from payguard.engine.compile import (
    EVENT_TYPES,
    GRAPH_CONFIG,
    chain_matcher,
    chain_types,
    compile_ruleset,
    load_model,
    specs,
)
from payguard.engine.durability import (
    OUTCOMES_FILE,
    RESTORE_ERRORS,
    SNAPSHOT_FILE,
    SnapshotWriter,
    StorageError,
    fault_point,
    gc_paused,
    graph_and_chains,
    open_log,
    read_snapshot,
    snapshot_header,
    write_snapshot_file,
)
from payguard.engine.heap import HUGE_PAGES, STALLS, HeapPolicy
from payguard.engine.idempotency import RecentIds
from payguard.engine.plan import PlanContext, TypePlan, build_plan, rule_errors
from payguard.events import (
    OUTCOME_TYPES,
    Event,
    EventDecoder,
    EventError,
)
from payguard.features import SWEEP_EVERY, FeatureState, load_catalog
from payguard.graph import GraphFeatures
from payguard.holds import (
    Hold,
    HoldBook,
    HoldState,
    MemoryHoldBook,
    expire_due,
)
from payguard.metrics import Metrics, RuleErrorLog
from payguard.outcomes import FILED_TYPES, OutcomeBook, Outcomes
from payguard.policy import PolicyResult, decide, stepup
from payguard.policy.degraded import degraded_decision
from payguard.rules import EntityControls, ListReader, RuleHit, event_variables, list_values
from payguard.ruleset import Ruleset
from payguard.snapshots import SnapshotBody
from payguard.state import Claimed, MemoryState, StateBackend, StateUnavailable
from payguard.store import MemoryRecorder, Recorder, StoredDecision
from payguard.store.base import DuplicateRecordError, RecordError
from payguard.types import DECLINED, HOUR_MS

if TYPE_CHECKING:
    from payguard.ml.serve import ModelServer

log = logging.getLogger("payguard")

OWNER_REPORTS: frozenset[str] = frozenset({"line_suspend", "fraud_report"})
"""The owner says the phone is lost or an operation was fraud: their pending holds are
revoked (a thief undoing the loss report later does not bring them back)."""


def _fraud_label(event: Event) -> bool:
    """A `label` saying fraud (an analyst's, the bank's, the customer's) revokes the
    account's pending holds as an owner's report does: the follow-on hold after a stop
    waits for the analyst's verdict (rules/default.yaml, "follow-on after a stop")."""
    return event.type == "label" and event.label == "fraud"


WARM_UP = "warm-up"
"""The `ruleset` of the decision recorded for a warm-up event: an allow nothing decided.
A repeat of its event_id returns it, as any recorded event's decision."""


def warm_up_decision(event_id: str) -> Decision:
    """What the event log records for a warm-up event (`WARM_UP`)."""
    return Decision(
        event_id=event_id,
        action="allow",
        score=0,
        reasons=[],
        ruleset=WARM_UP,
        model=None,
        latency_us=0,
    )


_NO_VARIABLES: dict[str, Any] = {}
REPEAT = 0
"""The sequence number `_record` gives an idempotent repeat (recorded ones start at 1)."""
ADOPTED = -1
"""The sequence number `_record` gives another worker's decision it recorded in the log
for that worker (its state writes already landed): queued, never filed again."""
ADOPT_AFTER_S = 2.0
"""How long a settled claim may stay out of the log before another worker records its
decision: the worker that decided commits within milliseconds, unless it died after its
state writes and before its commit (docs/scale.md, "A worker killed mid-decision")."""


class DuplicateEventError(Exception):
    """The event_id was already recorded with a different payload (HTTP 409)."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event_id {event_id!r} was already recorded with a different payload")
        self.event_id = event_id


class DecisionListener(Protocol):
    """Told of what the engine records, to write what follows from it right after the
    event log's commit (webhooks.WebhookNotifier is one). `recorded` runs on the decision
    path for every decided event (not warm-ups, not recovery): queue, do not write there."""

    def recorded(self, event: Event, decision: Decision) -> None: ...

    def hold_resolved(self, hold: Hold) -> None:
        """A hold was revoked or released (by `resolve_hold` or an owner's report)."""
        ...

    def flush(self) -> None:
        """Called by `Engine.flush` after the event log and the hold book are flushed."""
        ...

    def discard_pending(self) -> None:
        """What was queued since the last flush belongs to a request that failed."""
        ...


class Engine:
    """Decides and records events against one feature state and one (swappable) ruleset."""

    def __init__(
        self,
        *,
        features: FeatureState,
        ruleset: Ruleset,
        recorder: Recorder,
        settings: Settings,
        snapshot_path: Path | None = None,
        model: "ModelServer | None" = None,
        holds: HoldBook | None = None,
        outcomes: OutcomeBook | None = None,
        state: StateBackend | None = None,
        serving: bool = False,
    ) -> None:
        self.features = features
        features.idle_ms = settings.idle_ms(serving=serving)  # features.cold, idle records
        self.state: StateBackend = state if state is not None else MemoryState(features)
        """Where the features, phone links and watched history live (payguard.state):
        this process's `features` by default, or Redis shared by stateless workers, in
        which case `features` is only the code and a per-event scratch."""
        self._claims: list[str] = []
        """Event ids claimed on a shared state since the last flush (given back if the
        flush fails: the event was not recorded)."""
        self.model = model
        self.holds: HoldBook = holds if holds is not None else MemoryHoldBook()
        self.recorder = recorder
        self.outcomes = Outcomes(outcomes if outcomes is not None else OutcomeBook(), recorder)
        """Decision lifecycles: challenge results and labels (payguard.outcomes)."""
        self.settings = settings
        self.metrics = Metrics()
        self.rule_error_log = RuleErrorLog(self.metrics, log)
        self.listeners: list[DecisionListener] = []
        self.lists: ListReader | None = None
        """The allow/deny lists rules read (`card in deny_list('stolen_cards')`); set by
        the room that keeps them (payguard.lists). Without one, every list is empty."""
        self.controls: EntityControls | None = None
        """Analysts' controls on entities (block, step-up next, snoozed rule), applied to
        every decided event's rule hits; set by payguard.cases."""
        self.decoder = EventDecoder(settings.tokenizer(features.knows))
        self._snapshot_path = snapshot_path
        self._snapshot_seq = -1
        self._snapshots = SnapshotWriter(snapshot_path) if snapshot_path is not None else None
        """Writes the periodic snapshots in a forked child (durability.SnapshotWriter)."""
        self.heap = HeapPolicy()
        """Collects and freezes so that no collection traverses the state (engine.heap)."""
        self.recent = RecentIds()
        """The ids of recent events, for idempotency without a query (engine.idempotency)."""
        self.recovered = snapshot_path is None
        """Whether the state holds the whole event log (set by `recover`; an engine
        without a snapshot file has nothing to recover)."""
        self._event_vars = event_variables(settings.utc_offset)
        self._encode = msgspec.json.Encoder(order="sorted").encode
        self._plans: dict[str, TypePlan] = {}
        self._ruleset = ruleset
        self._catalog_digest = hashlib.sha256(msgspec.json.encode(features.catalog)).hexdigest()
        self.graph = GraphFeatures(GRAPH_CONFIG) if settings.graph_chains else None
        self.chains = self._matcher(ruleset) if settings.graph_chains else None
        self._chain_types = chain_types(ruleset)
        known = stepup.FEATURES & features.layout.keys()
        if known != stepup.FEATURES:
            log.warning(
                "feature catalog lacks step-up features (%s): the methods they vouch for "
                "are never offered",
                ", ".join(sorted(stepup.FEATURES - known)),
            )
        self._step_up_plan = features.plan(known, "step-up")
        self.settle: Callable[[], None] = _nothing
        """Finish every commit a group committer has queued or under way (set by
        payguard.api.commits); called before anything commits on the calling thread."""
        self.ruleset_published: Callable[[Ruleset], None] = _published_nowhere
        """Tells the other workers of a ruleset published here (`publish_ruleset`)."""
        self.snapshot_wanted = False
        """`process_queued` passed a multiple of `snapshot_every`: the group committer
        writes the snapshot once the log holds everything the state does."""

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings, *, serving: bool = False) -> "Engine":
        """The embedded default: SQLite in `settings.data_dir`, state recovered from it.
        `serving`: for `serve`, whose feature sweep encodes idle records by default
        (`Settings.encode_idle_after`)."""
        features = FeatureState(load_catalog(settings.features), settings.utc_offset)
        text = settings.ruleset.read_text(encoding="utf-8")
        ruleset = compile_ruleset(text, features, graph_chains=settings.graph_chains)
        data_dir = settings.data_dir
        recorder, holds = open_log(settings)
        engine = cls(
            features=features,
            ruleset=ruleset,
            recorder=recorder,
            settings=settings,
            snapshot_path=data_dir / SNAPSHOT_FILE,
            model=load_model(settings, features),
            holds=holds,
            outcomes=OutcomeBook(data_dir / OUTCOMES_FILE),
            serving=serving,
        )
        engine.recover()
        return engine

    @classmethod
    def in_memory(cls, settings: Settings, features: FeatureState, ruleset: Ruleset) -> "Engine":
        """A fresh engine on an in-memory record, with the configured model loaded as
        `open` loads it (for backtests: rules reading `model.score` must see the model)."""
        return cls(
            features=features,
            ruleset=ruleset,
            recorder=MemoryRecorder(),
            settings=settings,
            model=load_model(settings, features),
        )

    @property
    def ruleset(self) -> Ruleset:
        return self._ruleset

    def set_ruleset(self, ruleset: Ruleset) -> None:
        """Hot reload: later decisions use the new ruleset. Feature and graph state are
        untouched; when the chain patterns change, unchanged patterns keep their partial
        matches and new or changed ones start with none (docs/chains.md, "Hot reload")."""
        chains = self.chains
        if chains is not None and specs(ruleset.chains) != specs(chains.patterns):
            self.chains = self._matcher(ruleset)
            fresh = self.chains.adopt(chains)
            if fresh:
                log.warning("chain patterns start with no partial matches: %s", ", ".join(fresh))
        self._ruleset = ruleset
        self._chain_types = chain_types(ruleset)
        self._plans = {}

    def publish_ruleset(self, ruleset: Ruleset) -> None:
        """`set_ruleset` for a person's publish (API, console): then `ruleset_published`
        tells the other workers (payguard.api.publication), which only `set_ruleset`."""
        self.set_ruleset(ruleset)
        self.ruleset_published(ruleset)

    def parse_ruleset(self, text: str) -> Ruleset:
        """Validate ruleset text against this engine's features (raises RuleError)."""
        return compile_ruleset(text, self.features, graph_chains=self.graph is not None)

    def _matcher(self, ruleset: Ruleset) -> ChainMatcher:
        """A matcher for the ruleset's patterns, swept with the feature state."""
        return chain_matcher(ruleset, self.features, SWEEP_EVERY)

    def neighbourhood(self, kind: str, entity_id: str, depth: int) -> dict[str, Any] | None:
        """The identity graph around one node as JSON (None when the graph is off); raises
        ValueError for an unknown kind."""
        graph = self.graph
        return None if graph is None else graph.neighbourhood(kind, entity_id, depth)

    # -- the decision path ----------------------------------------------------------------

    def process(self, event: Event, *, commit: bool = False) -> tuple[Decision, bool]:
        """Decide and record one validated event; returns (decision, was_repeat), once a
        shared state holds it (`send_state`: another worker's next event sees this one).

        With `commit`, the event, its decision and its hold are committed before any state
        changes; a failed commit raises StorageError and leaves every state as it was (the
        HTTP path of the OTP routes). A group commit under way is settled first
        (`settle`), so this event's commit follows it. Without, the record is queued for
        the caller's `flush` and the state updated at once, so that later events of a
        batch see this one; if that flush fails, `rebuild_state` puts the state back to
        what the log holds.

        A repeat of a recorded event_id with the same payload returns the stored decision
        and changes nothing; with another payload it raises DuplicateEventError. An
        outcome (`challenge_result`, `label`) that fits no recorded decision raises
        OutcomeError (an EventError naming the field) and records nothing; one that fits
        is recorded with an `allow` no rule decided (it is not an operation to weigh)."""
        try:
            return self._process(event, commit)
        finally:
            if self.state.shared:
                self.send_state()

    def _process(self, event: Event, commit: bool) -> tuple[Decision, bool]:
        if commit:
            self.settle()
        try:
            seq, decision, variables = self._record(event)
        except StateUnavailable as exc:
            decision, repeat = self._degraded(event, exc)
            if commit and not repeat:
                self._commit(event.event_id)
            return decision, repeat
        if seq == REPEAT:
            return decision, True
        if commit:
            self._commit(event.event_id)
        if seq == ADOPTED:  # its state writes landed with the worker that decided it
            self._announce(event, decision)
            return decision, False
        self._file_recorded_or_lost(seq, event, decision, variables)
        if seq % self.settings.snapshot_every == 0:
            self.flush()
            self.write_snapshot(background=True)
        return decision, False

    def process_queued(self, event: Event) -> tuple[Decision, bool]:
        """`process` for a group commit (payguard.api.commits): the record is queued and
        the state updated at once, so the next request's decision sees this event; the
        committer makes the queue durable before any of it is answered, and on a failed
        commit discards it and rebuilds the state. A due snapshot is left to the
        committer (`snapshot_wanted`): it needs the state and the log to agree.

        Every id is asked of a local log here, not of the recent ids alone: an id reused
        with another time outside their window would otherwise reach the unique index at
        the commit and fail the whole batch with it (an indexed query costs a few µs of
        the request's few hundred). A log a round trip away (Postgres: ~100 µs of CPU and
        the loop blocked for the round trip, docs/benchmarks.md) is asked only what the
        recent ids cannot answer, as `process` asks; the rare reused id fails its batch."""
        try:
            seq, decision, variables = self._record(event, exact=not self.recorder.remote)
        except StateUnavailable as exc:
            return self._degraded(event, exc)
        if seq == REPEAT:
            return decision, True
        if seq == ADOPTED:  # queued for the committer; its state writes already landed
            self._announce(event, decision)
            return decision, False
        self._file_recorded_or_lost(seq, event, decision, variables)
        if seq % self.settings.snapshot_every == 0:
            self.snapshot_wanted = True
        return decision, False

    def _degraded(self, event: Event, exc: StateUnavailable) -> tuple[Decision, bool]:
        """The declared answer when a shared state cannot be read (both decision paths,
        `process` and `process_queued`): the degraded decision, recorded; a state of this
        process's own never raises StateUnavailable, and would be a bug if it did."""
        if not self.state.shared:
            raise exc
        self._count_lost()  # the round trip that failed carried an earlier event's writes
        log.warning("state store unreachable, deciding in degraded mode: %s", exc)
        return self.decide_degraded(event, f"state store unreachable: {exc}")

    def _announce(self, event: Event, decision: Decision) -> None:
        """What a dead worker's decision recorded here (ADOPTED) still owes: its
        listeners (webhooks) and metrics never heard of it; the state holds it already."""
        for listener in self.listeners:
            listener.recorded(event, decision)
        self._count(event, decision)

    def _count(self, event: Event, decision: Decision) -> None:
        """A recorded decision in the metrics: its action and latency, and every rule that
        fired, once per decision."""
        self.metrics.observe(event.type, decision.action, decision.latency_us)
        if decision.reasons:
            self.metrics.hits({reason.rule for reason in decision.reasons})

    def _file_recorded_or_lost(
        self, seq: int, event: Event, decision: Decision, variables: Variables | None
    ) -> None:
        """`_file_recorded`; a state write that fails after the decision was queued is
        answered as decided and counted (`state_writes_lost`, for rebuild-state). Its claim
        is no longer given back on a failed commit either way: its writes (and the settled
        claim with them) may have landed, and a retry must find that claim, not decide the
        event again (`_decided_elsewhere`)."""
        if self.state.shared and self._claims and self._claims[-1] == event.event_id:
            self._claims.pop()
        try:
            self._file_recorded(seq, event, decision, variables)
        except StateUnavailable as exc:  # decided and queued: answered as decided
            self._count_lost()
            self._write_lost(event.event_id, str(exc))

    def prefetch(self, events: list[Event]) -> None:
        """Read the shared state of a batch about to be decided (`process_queued` on each,
        then `send_state`) in one round trip instead of one per event (`RedisState.prefetch`);
        nothing on an unshared state. If the store cannot be reached the events are decided
        one by one as before (each then reads for itself, or is decided degraded)."""
        if not self.state.shared or not events:
            return
        try:
            self.state.prefetch(events)
        except StateUnavailable:
            self._count_lost()

    def send_state(self) -> None:
        """Send the state writes a shared state defers (RedisState carries an event's
        writes with the next event's fetch) and settle their races: done before a batch
        is committed and answered (payguard.api.commits), so that every worker's next
        read sees what was answered. A write that fails is counted lost (as in
        `_file_recorded_or_lost`): the event stays decided and recorded."""
        with contextlib.suppress(StateUnavailable):
            self.state.flush()
        self._count_lost()

    def _count_lost(self) -> None:
        """Count and log the events whose deferred state writes failed (`state.lost`)."""
        lost = self.state.lost
        while lost:
            self._write_lost(*lost.pop(0))

    def _write_lost(self, event_id: str, cause: str) -> None:
        self.metrics.state_writes_lost += 1
        log.error(
            "event %s decided but its state write failed (rebuild-state): %s", event_id, cause
        )

    def _record(
        self, event: Event, *, exact: bool = False
    ) -> tuple[int, Decision, Variables | None]:
        """Decide the event and queue it with its decision and hold: (seq, decision, the
        chain variables); (REPEAT, the stored decision, None) for an idempotent repeat,
        which changes nothing. `exact`: ask the log about the id whatever the recent ids
        say."""
        payload = self._encode(event)
        payload_hash = hashlib.sha256(payload).digest()
        stored = self.recorder.lookup(event.event_id) if exact else self._recorded(event)
        if stored is not None:
            return REPEAT, self._repeat_of(event, stored, payload_hash), None
        if self.state.shared:
            claimed = self.state.claim(event, payload_hash)
            if claimed is not None:  # another worker decided it first
                return self._decided_elsewhere(event, payload, payload_hash, claimed)
            self._claims.append(event.event_id)
        try:
            decision, variables = self._decision(event)
        except BaseException:
            if self.state.shared:  # not recorded: the next attempt may claim it at once
                with contextlib.suppress(StateUnavailable):  # else its lease runs out
                    self.state.release(self._claims.pop())
            raise
        seq = self._queue(event, payload, payload_hash, decision)
        if self.state.shared:
            self.state.settle(event.event_id, payload_hash, decision)
        return seq, decision, variables

    def _queue(self, event: Event, payload: bytes, payload_hash: bytes, decision: Decision) -> int:
        """Queue the event and its decision in the log, and its hold if it is held: the
        log's sequence number."""
        seq = self.recorder.append(event, payload, payload_hash, decision)
        if decision.action == "hold":
            self.holds.place(_hold(event, decision))
        return seq

    def _repeat_of(
        self, event: Event, recorded: StoredDecision | Claimed, payload_hash: bytes
    ) -> Decision:
        """The decision recorded for an id decided before, counted as a duplicate; a
        conflict (counted, DuplicateEventError) when this payload is not the one recorded."""
        if recorded.payload_hash != payload_hash:
            self.metrics.conflicts += 1
            raise DuplicateEventError(event.event_id)
        self.metrics.duplicates += 1
        return recorded.decision

    def _decided_elsewhere(
        self, event: Event, payload: bytes, payload_hash: bytes, claimed: Claimed
    ) -> tuple[int, Decision, Variables | None]:
        """Another worker's settled decision, answered only once the log holds it: a repeat
        (REPEAT, the logged decision) as soon as that worker's commit lands. A worker killed
        between its state writes (which carry the settled claim) and its commit never
        commits: after ADOPT_AFTER_S this worker queues that decision in the log for it
        (ADOPTED), without filing the event again, so the answer is durable and the event
        counted once. Should the first worker commit after all, the log's unique index
        refuses one of the two commits, and a retry answers the logged decision.

        Only a log the workers share (Postgres: `recorder.remote`) can answer for another
        worker; with a log per worker the claim's decision is answered as it stands."""
        if not self.recorder.remote or claimed.payload_hash != payload_hash:
            return REPEAT, self._repeat_of(event, claimed, payload_hash), None  # or conflict
        decision = claimed.decision
        deadline = time.monotonic() + ADOPT_AFTER_S
        pause = 0.001
        while (stored := self.recorder.lookup(event.event_id)) is None:
            if time.monotonic() > deadline:
                log.warning(
                    "event %s: decided by a worker that never committed it; recording its decision",
                    event.event_id,
                )
                self._queue(event, payload, payload_hash, decision)
                return ADOPTED, decision, None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        return REPEAT, self._repeat_of(event, stored, payload_hash), None

    def _decision(self, event: Event) -> tuple[Decision, Variables | None]:
        """An outcome's acknowledgement (after checking it fits a decision: OutcomeError
        if not), or the decision on any other event."""
        if event.type in OUTCOME_TYPES:
            self.outcomes.check(event)
            return self._acknowledge(event), None
        return self._decide(event)

    def decide_degraded(self, event: Event, cause: str) -> tuple[Decision, bool]:
        """Decide and queue an event without its state (degraded mode: the state store is
        unreachable; docs/scale.md): fail closed or open by its type (`policy.degraded`),
        the reason naming `cause`. The record is queued like any (the caller commits it),
        so the log that rebuilds the state holds it; the state is not touched, nor asked.
        A repeat the log already holds is answered as recorded: the log is the
        idempotency of last resort while the state's claims cannot be made."""
        payload = self._encode(event)
        payload_hash = hashlib.sha256(payload).digest()
        stored = self.recorder.lookup(event.event_id)
        if stored is not None:
            return self._repeat_of(event, stored, payload_hash), True
        config = self._ruleset.policy.degraded
        decision = degraded_decision(event, config, self._ruleset.version, cause)
        self.recorder.append(event, payload, payload_hash, decision)
        self.metrics.degraded += 1
        self.metrics.observe(event.type, decision.action, decision.latency_us)
        return decision, False

    def _file_recorded(
        self, seq: int, event: Event, decision: Decision, variables: Variables | None
    ) -> None:
        """After recording: the listeners hear of it, the state takes it, metrics count it."""
        for listener in self.listeners:
            listener.recorded(event, decision)
        self._apply(seq, event, decision.action, variables)
        self._count(event, decision)
        if decision.rule_errors:  # counted and logged only for recorded decisions
            errors = decision.rule_errors
            self.rule_error_log.report((e["rule"], e["error"], e["on_error"]) for e in errors)
        self.heap.tick()
        if self._snapshots is not None and self._snapshots.busy:
            self._snapshot_written(self._snapshots.poll())

    def warm(
        self, event: Event, payload: bytes | None = None, payload_hash: bytes | None = None
    ) -> bool:
        """File one past event into features, graph, chains and the idempotency memory
        without deciding it: no rules, no holds, no metrics, nothing sent. It is recorded
        in the event log (so recovery replays it like any event and a repeat of its id is
        answered) with an `allow` of ruleset `warm-up`: history that happened, so the
        money counts as settled. Returns False for a repeat already recorded; raises
        DuplicateEventError for a recorded id with another payload. The caller flushes;
        `close` writes the snapshot (none is written per `snapshot_every`: a crash replays
        the flushed log instead). A caller that already encoded and hashed the event (as
        `process` would) passes both, so a load does not do it twice."""
        if payload is None:
            payload = self._encode(event)
        if payload_hash is None:
            payload_hash = hashlib.sha256(payload).digest()
        stored = self._recorded(event)
        if stored is not None:
            if stored.payload_hash != payload_hash:
                raise DuplicateEventError(event.event_id)
            return False
        decision = warm_up_decision(event.event_id)
        self._apply(self.recorder.append(event, payload, payload_hash, decision), event, "allow")
        return True

    @contextmanager
    def loading(self) -> Iterator[None]:
        """A bulk load (warm-up) as one transaction of the event log: what `warm` records
        inside becomes durable together when the block ends. If it raises, the log is
        rolled back, and this engine's state, which then holds events the log does not,
        is never snapshotted: close it and open the data directory again."""
        self.recorder.begin_load()
        try:
            yield
        except BaseException:
            self.recorder.end_load(commit=False)
            self._forbid_snapshots()
            raise
        self.recorder.end_load(commit=True)
        self.heap.settle()

    def _acknowledge(self, event: Event) -> Decision:
        """The decision recorded for an outcome event: an allow, decided by nothing."""
        return Decision(
            event_id=event.event_id,
            action="allow",
            score=0,
            reasons=[],
            ruleset=self._ruleset.version,
            model=None,
            latency_us=0,
        )

    def check_outcome(self, event: Event) -> None:
        """Raise OutcomeError if `process(event)` would refuse it as an outcome that fits
        no recorded decision; changes nothing (a batch checks every event first)."""
        self.outcomes.check(event)

    def check_time(self, event: Event, now_ms: int) -> None:
        """Raise EventError naming `ts` if the event lies more than `max_future_ms` ahead of
        `now_ms`, the caller's wall clock; changes nothing. A future event would move the
        watermark, which every window is measured back from, and blind them all for
        everyone (docs/security.md, "Time and lateness")."""
        allowed = self.settings.max_future_ms
        ahead = event.ts - now_ms
        if ahead > allowed:
            self.metrics.future_events += 1
            reason = (
                f"{ahead:,} ms ahead of the server clock (at most {allowed:,} ms allowed): "
                "check the client's clock"
            )
            raise EventError("ts", reason, event.event_id)

    def file(self, seq: int, event: Event, referenced: Event | None) -> None:
        """File one past event that another process recorded at `seq` (warm-up's checker,
        inside `loading_recorded`) without deciding it, exactly as `warm` files it:
        `referenced` is the recorded event a feedback event points at (None if unknown)."""
        self._file(seq, event, "allow", None, referenced)

    @contextmanager
    def loading_recorded(self) -> Iterator[None]:
        """A bulk load whose event log another process writes as one transaction of its
        own (warm-up's checker), filed here with `file`; the block must end only once that
        process has committed. If it raises, this engine's state, which then holds events
        the log does not, is never snapshotted: close it and open the data directory
        again. If it ends, the recorder reads the committed log again."""
        try:
            yield
        except BaseException:
            self._forbid_snapshots()
            raise
        self.recorder.reload()
        self.heap.settle()

    def decide(self, event: Event) -> Decision:
        """Features → rules → policy for one event, reading state and changing nothing."""
        return self._decide(event)[0]

    def _decide(self, event: Event) -> tuple[Decision, Variables | None]:
        """The decision, and the variables the chain conditions read (None when no chain
        step applies to the type): `_apply` files the event with the same values. Most
        events hit no rule and are allowed here without the policy's bookkeeping."""
        start = time.perf_counter_ns()
        plan = self._plans.get(event.type) or self._plan_for(event.type)
        features, variables, matches = self._read_state(event, plan)
        if plan.lists:
            lists = self.lists
            features.update(
                plan.unlisted if lists is None else list_values(lists, plan.lists, event)
            )
        model = self.model
        scored = model.score_row(event) if model is not None else None
        values = features
        if plan.wants_model:
            values = {**features, "model": {"score": 0.0 if scored is None else scored[0]}}
        hits = plan.run_rules(values, event)
        if hits and self.outcomes.book.clears_any(event.user_id):
            hits = self.outcomes.uncleared(event, hits, features)
        if self.controls is not None:
            hits = self.controls.adjust(event, hits)
        if hits or not plan.allows_without_hits:
            decision = self._weigh(event, plan, hits, features, matches, scored, start)
            return decision, variables
        decision = Decision(
            event_id=event.event_id,
            action="allow",
            score=0,
            reasons=[],
            ruleset=plan.ruleset.version,
            model=model.version if model is not None and scored is not None else None,
            latency_us=(time.perf_counter_ns() - start) // 1_000,
            model_score=msgspec.UNSET if scored is None else scored[0],
            features=features,
            shadow=[],
            rule_errors=[],
        )
        return decision, variables

    def _read_state(
        self, event: Event, plan: TypePlan
    ) -> tuple[dict[str, Any], Variables | None, list[ChainMatch]]:
        """Catalog, graph and chain features as of the event (the rules' values and the
        decision's `features`), the chain conditions' variables, and the chain matches
        the reasons name. The variables are a function building them from the snapshot,
        because most events evaluate no condition at all (only step 1 and steps that
        continue a partial match run)."""
        features = self.state.snapshot(event, plan.features)
        if plan.graph and self.graph is not None:
            features.update(self.graph.snapshot(event, plan.graph))
        variables: Variables | None = None
        if plan.chain.fields is not None:
            variables = partial(chain_variables, plan.chain, event, features)
        matches: list[ChainMatch] = []
        if plan.chains and self.chains is not None:
            values, matches = self.chains.read(event, variables or features, plan.chains)
            features.update(values)
        return features, variables, matches

    def _weigh(
        self,
        event: Event,
        plan: TypePlan,
        hits: list[RuleHit],
        features: dict[str, Any],
        matches: list[ChainMatch],
        scored: tuple[float, list[float]] | None,
        start: int,
    ) -> Decision:
        """The policy's decision on the rules' hits, its reasons naming the chains matched
        and, unless it allows, the model's factors (after the rules', which decided)."""
        outcome = decide(hits, plan.ruleset.policy, partial(self._step_up, event, features))
        reasons = outcome.reasons
        if plan.chain_rules and reasons and matches:
            reasons = _with_chains(reasons, plan.chain_rules, matches)
        model = self.model
        if scored is not None and outcome.action != "allow":
            assert model is not None
            reasons = reasons + _model_reasons(model, scored[1])
        return Decision(
            event_id=event.event_id,
            action=outcome.action,
            score=outcome.score,
            reasons=reasons,
            ruleset=plan.ruleset.version,
            model=model.version if model is not None and scored is not None else None,
            latency_us=(time.perf_counter_ns() - start) // 1_000,
            challenge=outcome.challenge if outcome.challenge is not None else msgspec.UNSET,
            hold=_hold_terms(event, outcome),
            model_score=msgspec.UNSET if scored is None else scored[0],
            features=features,
            shadow=outcome.shadow,
            rule_errors=rule_errors(plan.rules, hits),
        )

    def _step_up(self, event: Event, features: dict[str, Any]) -> dict[str, Any]:
        """The step-up features as of the event (read only when the policy challenges),
        added to the decision's features so an explanation shows what the choice saw."""
        values = self.state.snapshot(event, self._step_up_plan)
        features.update(values)
        return values

    def payload_hash(self, event: Event) -> bytes:
        """The hash `process` compares to tell an idempotent repeat from a conflict."""
        return hashlib.sha256(self._encode(event)).digest()

    def check_conflict(self, event: Event) -> None:
        """Raise DuplicateEventError if `process(event)` would; changes nothing (no metrics).
        Asks the log itself, so an id reused with another time (which the recent ids'
        window cannot vouch for) is refused before a batch changes any state."""
        stored = self.recorder.lookup(event.event_id)
        if stored is not None and stored.payload_hash != self.payload_hash(event):
            raise DuplicateEventError(event.event_id)

    def _recorded(self, event: Event) -> StoredDecision | None:
        """The recorded payload hash and decision of this event_id, if any. An event
        inside the recent ids' window that is not among them is new without a query;
        anything else is asked of the log (engine.idempotency)."""
        if not self.recent.may_be_recorded(event.event_id, event.ts, self.state.watermark()):
            return None
        return self.recorder.lookup(event.event_id)

    def stored_decision(self, event_id: str) -> Decision | None:
        stored = self.recorder.lookup(event_id)
        return stored.decision if stored else None

    def _plan_for(self, event_type: str) -> TypePlan:
        """The type's plan under the current ruleset, built on its first event (plan.py)."""
        context = PlanContext(
            ruleset=self._ruleset,
            state=self.features,
            matcher=self.chains,
            chain_types=self._chain_types,
            event_vars=self._event_vars,
            budget_us=self.settings.rule_budget_us,
        )
        plan = self._plans[event_type] = build_plan(context, event_type)
        return plan

    def prepare(self) -> None:
        """Build every event type's plan and feature update code now rather than on the
        type's first event (a server's start-up, before it serves): compiling them took
        ~145 ms in all, up to 24 ms for one type, which the first requests after a start
        waited for, with every request queued behind them (docs/benchmarks.md)."""
        for event_type in EVENT_TYPES:
            if event_type not in self._plans:
                self._plan_for(event_type)
            self.features.filers(event_type)

    def generated_code(self, event_type: str) -> list[tuple[str, Callable[..., Any]]]:
        """The generated functions that decide and then file one event type, in the
        order they run, each with what it is (`payguard explain-plan` prints their source)."""
        plan = self._plans.get(event_type) or self._plan_for(event_type)
        own, referenced, payee = self.features.filers(event_type)
        code: list[tuple[str, Callable[..., Any]]] = [
            (f"feature snapshot ({len(plan.features.names)} features)", plan.features.read),
            (f"rules ({len(plan.rules)})", plan.run_rules),
            ("step-up features (read only when the policy challenges)", self._step_up_plan.read),
        ]
        if plan.chain.features is not None:
            code.append(("chain condition features (recovery only)", plan.chain.features.read))
        code += [
            ("feature update and watched history", own),
            ("feature update: referenced event", referenced),
        ]
        if payee is not None:
            code.append(("feature update: the payee's account", payee))
        return code

    def _apply(
        self, seq: int, event: Event, action: str, variables: Variables | None = None
    ) -> None:
        """File the event into the feature state, the graph and the chain matcher (after
        it is decided and queued), and let an owner's report revoke their pending holds.
        `variables` are what the chain conditions read when it was decided; recovery,
        which decides nothing, has the matcher settle its steps first, building them only if a
        condition runs."""
        referenced = None
        if event.type in FILED_TYPES and event.ref_event_id is not None:
            referenced = self.recorder.get_event(event.ref_event_id)
        self._file(seq, event, action, variables, referenced)

    def _file(
        self,
        seq: int,
        event: Event,
        action: str,
        variables: Variables | None,
        referenced: Event | None,
    ) -> None:
        """`_apply` once the event a feedback event references has been read. Every
        `SWEEP_EVERY` events a feature sweep round begins, which each event then advances
        by one bounded slice (features.sweep: the whole sweep in one call took seconds on
        a 20k × 90-day state, issue 16); a slice is timed as the `sweep` stall. The graph
        and the chains sweep theirs at the same sequence numbers (tens of ms)."""
        if event.type in FILED_TYPES:
            config = self._ruleset.policy.outcomes
            self.outcomes.file(seq, event, config, referenced, self.decide)
        chains = self.chains
        if variables is None and chains is not None:
            # built only if a condition runs (rarely), from the states before the event
            chains.evaluate(event, partial(self._recompute_chain_variables, event))
        if event.type in OWNER_REPORTS or _fraud_label(event):
            self._revoke_holds(event)
        self.state.apply(event, referenced, action in DECLINED)
        self.recent.add(event.event_id, event.ts, self.state.watermark())
        if self.graph is not None:
            self.graph.update(event, seq, referenced)
        if chains is not None:
            chains.update(event, _NO_VARIABLES if variables is None else variables, seq)
        if seq % SWEEP_EVERY == 0:
            self.state.begin_sweep(SWEEP_EVERY // 2)
        started = time.perf_counter()
        if self.state.sweep_step():
            STALLS.record("sweep", time.perf_counter() - started)

    def _revoke_holds(self, event: Event) -> None:
        """Revoke the pending holds of the accounts an owner's report concerns (before the
        report is filed, so a carrier signal reaches the accounts its phone was seen with).
        Idempotent, so recovery replaying the report changes nothing."""
        note = f"{event.type.replace('_', ' ')} {event.event_id}"
        for user in self.state.accounts_of(event):
            revoked = self.holds.revoke_pending(user, at_ms=event.ts, by="owner_report", note=note)
            for hold in revoked:
                self.outcomes.book.announce(hold.event_id, "decided", "hold:revoked")
            if revoked:
                log.info("%s revoked %d held operation(s) of %s", note, len(revoked), user)
            for hold in revoked:
                for listener in self.listeners:
                    listener.hold_resolved(hold)

    def resolve_hold(
        self, hold_id: str, state: HoldState, *, at_ms: int, by: str, note: str | None = None
    ) -> Hold:
        """Revoke or release one hold (raises HoldError) and tell the listeners, whose
        writes are flushed at once: the resolution is already committed."""
        self.settle()  # the hold may have been placed by a commit still under way
        hold = self.holds.resolve(hold_id, state, at_ms=at_ms, by=by, note=note)
        self.outcomes.book.announce(hold.event_id, "decided", f"hold:{hold.state}")
        self.outcomes.book.flush()
        for listener in self.listeners:
            listener.hold_resolved(hold)
            listener.flush()
        return hold

    def expire_holds(self, now_ms: int) -> list[Hold]:
        """Record the holds whose release time passed by `now_ms` as released by expiry
        and announce each once (holds.expire_due): the listeners (webhooks) first, whose
        writes are idempotent, then the hold book, then the outcome listeners."""

        def announce(hold: Hold) -> None:
            for listener in self.listeners:
                listener.hold_resolved(hold)
                listener.flush()

        def recorded(hold: Hold) -> None:
            self.outcomes.book.announce(hold.event_id, "decided", "hold:released")

        expired = expire_due(self.holds, now_ms, announce, recorded)
        self.outcomes.book.flush()
        return expired

    def _recompute_chain_variables(self, event: Event) -> dict[str, Any]:
        """What the chain conditions read for this event, as `_decide` builds it, from the
        state before the event (chains.recomputed_variables)."""
        plan = self._plans.get(event.type) or self._plan_for(event.type)
        return recomputed_chain_variables(plan.chain, event, self.features, self.graph)

    # -- durability -----------------------------------------------------------------------

    def _commit(self, event_id: str) -> None:
        """Commit the queued records (events, decisions, holds) of `event_id` in one
        transaction, or forget them and raise: DuplicateEventError if the log already
        holds that id (reused with another time, outside the recent ids' window, so only
        the log's unique index caught it), StorageError for anything else."""
        try:
            self.recorder.flush()
        except Exception as exc:
            self.discard_pending()
            duplicate = isinstance(exc, sqlite3.IntegrityError | DuplicateRecordError)
            if duplicate and self.recorder.lookup(event_id):
                self.metrics.conflicts += 1
                raise DuplicateEventError(event_id) from None
            self.metrics.storage_errors += 1
            log.error("event log commit failed, nothing recorded: %s", exc)
            raise StorageError(str(exc)) from exc
        self._claims = []
        fault_point("after-event-log-commit")

    def discard_pending(self) -> None:
        """Forget every queued record (a request that is not answered with a decision)."""
        for event_id in self._claims:
            self.state.release(event_id)
        self._claims = []
        self.recorder.discard_pending()
        self.holds.discard_pending()
        for listener in self.listeners:
            listener.discard_pending()

    def rebuild_state(self) -> None:
        """Put features, graph, chains and the outcome index back to what the event log
        holds (snapshot + replay), after a batch whose commit failed had already filed its
        events: a refused batch must leave no trace. Slow (a restart's recovery), and only
        for that rare case."""
        self.discard_pending()
        self._forget_state()
        self.outcomes.book.reload()
        self._snapshot_seq = -1
        self.recover()

    def flush(self) -> None:
        """Commit everything queued (after a group commit under way), then what follows
        from it (`after_commit`)."""
        if self.state.shared:
            self.send_state()
        self.settle()
        recorded = self.recorder.last_seq()
        self.recorder.flush()
        self._claims = []
        if self.recorder.last_seq() != recorded:
            fault_point("after-event-log-commit")
        self.after_commit()

    def after_commit(self) -> None:
        """What is written once the event log's commit holds its events: a standalone
        hold book, the outcome book (which tells its listeners) and the listeners'
        queues (webhooks); each commits its own file."""
        self.holds.flush()
        self.outcomes.book.flush()  # tells outcome listeners, which may queue webhooks
        for listener in self.listeners:
            listener.flush()

    def write_snapshot(self, *, background: bool = False) -> None:
        """Persist feature, graph and chain state and the recent ids as of the last
        durable record (call right after flush), as a checksummed MessagePack file
        (payguard.snapshots): written to a temporary file, synced, then renamed over the
        old one. `background`: in a forked child while this process goes on deciding
        (durability.SnapshotWriter); its completion is noticed by later calls."""
        self.snapshot_wanted = False  # asked once: a skipped one waits for the next due
        seq = self.recorder.last_seq()
        path, writer = self._snapshot_path, self._snapshots
        if path is None or writer is None or seq == self._snapshot_seq:
            return
        header = snapshot_header(self._catalog_digest, self._ruleset.version, seq)
        if background:
            self._snapshot_written(writer.poll())
            if not writer.start(header, self._snapshot_body):
                log.info("snapshot at seq %d skipped: the previous one is still written", seq)
            return
        self._snapshot_written(writer.poll(wait=True))
        write_snapshot_file(path, header, self._snapshot_body)
        self._snapshot_seq = seq

    def snapshot_busy(self) -> bool:
        """Whether a background snapshot is still being written, or the heap still being
        moved onto huge pages (`HUGE_PAGES.collapsing`: the fork would stop decisions for
        hundreds of ms); if so the one now due is skipped (the next one due covers it), so
        that the caller does not settle the group commit on the loop (a synchronous fsync)
        for a snapshot that cannot start or should not yet."""
        writer = self._snapshots
        if writer is None:
            return False
        if writer.busy:
            self._snapshot_written(writer.poll())
        if writer.busy:
            why = "the previous one is still written"
        elif HUGE_PAGES.collapsing:
            why = "the heap is still being moved onto huge pages"
        else:
            return False
        self.snapshot_wanted = False
        log.info("snapshot at seq %d skipped: %s", self.recorder.last_seq(), why)
        return True

    def _snapshot_written(self, seq: int | None) -> None:
        """A background snapshot as of `seq` is on disk (None: none finished); its child
        has exited, so the huge pages its life split are collapsed again (`HUGE_PAGES`)."""
        if seq is not None:
            self._snapshot_seq = seq
            HUGE_PAGES.again()

    def _forbid_snapshots(self) -> None:
        """This engine's state holds events the log does not: never snapshot it."""
        if self._snapshots is not None:
            self._snapshots.poll(wait=True)
        self._snapshot_path = self._snapshots = None

    def _snapshot_body(self) -> SnapshotBody:
        """Feature, graph and chain state and the recent ids as exported now."""
        return SnapshotBody(
            features=self.features.export(),
            graph=self.graph.export() if self.graph is not None else None,
            chains=self.chains.export() if self.chains is not None else None,
            recent=self.recent.export(),
        )

    def recover(self) -> int:
        """Load the snapshot (if it is intact and matches) and replay recorded events after
        it, with the automatic GC off (restoring builds millions of acyclic containers);
        then freeze them all out of the collector's way (engine.heap)."""
        replayed = 0
        if self.state.shared:  # the state lives in Redis: replaying would count twice
            self.recovered = True
            return replayed
        with gc_paused():
            start = self._load_snapshot()
            self.outcomes.book.notifying = False  # announced before the restart, if at all
            for seq, event, action in self.recorder.events_after(start):
                self._apply(seq, event, action)
                replayed += 1
            self.outcomes.book.notifying = True
        self.heap.settle()
        self.recovered = True
        if replayed:
            log.info("recovered state: snapshot at seq %d + %d events", start, replayed)
        return replayed

    def readiness(self) -> list[str]:
        """Why this engine should not take traffic now (empty: ready): recovery not
        finished, a ruleset without rules (everything would be allowed), or an event log
        that cannot take a write (a real write is committed to find out)."""
        reasons = []
        if not self.recovered:
            reasons.append("state recovery has not finished")
        if not self._ruleset.rules:
            reasons.append(f"ruleset {self._ruleset.version} has no rules")
        try:
            self.recorder.probe_write()
        except (sqlite3.Error, OSError, RecordError) as exc:
            reasons.append(f"storage: the event log cannot be written ({exc})")
        return reasons

    def _load_snapshot(self) -> int:
        """Restore the snapshot and return its sequence; 0 (and a warning saying why, then
        a full replay) for a missing, damaged, foreign or mismatched file."""
        found = read_snapshot(self._snapshot_path, self._catalog_digest, self.recorder.last_seq())
        if found is None:
            return 0
        header, body = found
        if self.graph is not None:
            restored = graph_and_chains(body, partial(self._matcher, self._ruleset))
            if restored is None:
                return 0
            self.graph, self.chains = restored
        try:
            self.features.restore(body.features)
            self.recent.restore(body.recent)
        except RESTORE_ERRORS as exc:
            log.warning("ignoring snapshot (%s); replaying all", exc)
            self._forget_state()
            return 0
        self._snapshot_seq = header.seq
        return self._snapshot_seq

    def _forget_state(self) -> None:
        """Empty features, graph and chains (before a full replay)."""
        self.features.restore(
            FeatureState(self.features.catalog, self.settings.utc_offset).export()
        )
        self.recent = RecentIds()
        if self.graph is not None:
            self.graph, self.chains = GraphFeatures(GRAPH_CONFIG), self._matcher(self._ruleset)

    def close(self) -> None:
        """Flush, wait for a background snapshot, write the final one, close the books,
        and give the collector back what was frozen."""
        self.flush()
        if self._snapshots is not None:
            self._snapshot_written(self._snapshots.poll(wait=True))
        self.write_snapshot()
        self.recorder.close()
        self.holds.close()
        self.outcomes.book.close()
        self.heap.release()

    def gauges(self) -> dict[str, float]:
        gauges: dict[str, float] = {
            "payguard_entities": self.features.record_count(),
            "payguard_late_events_total": self.features.late_events,
            "payguard_watermark_ms": self.features.watermark,
            "payguard_recorded_seq": self.recorder.last_seq(),
            "payguard_recent_event_ids": len(self.recent),
            **self.heap.gauges(),
        }
        if self.graph is not None:
            gauges["payguard_graph_accounts"] = len(self.graph.graph.acc)
            gauges["payguard_graph_entities"] = len(self.graph.graph.ent)
        if self.chains is not None:
            gauges["payguard_chain_partitions"] = sum(len(p) for p in self.chains.parts)
        return gauges


def _nothing() -> None:
    """`Engine.settle` without a group committer: nothing is under way."""


def _model_reasons(model: "ModelServer", row: list[float]) -> list[Reason]:
    """Reason codes for a non-allow decision: the features that raised the model's score
    most, in words, after the rules' reasons (which decided the action)."""
    return [
        Reason(
            code="MODEL_FACTOR",
            rule="model",
            text=f"raised the learned score: {r.text} (+{r.contribution:.2f} log-odds)",
        )
        for r in model.explain_row(row)
    ]


def _hold_terms(event: Event, outcome: PolicyResult) -> HoldTerms | msgspec.UnsetType:
    if outcome.hold_hours is None:
        return msgspec.UNSET
    return HoldTerms(
        hold_id=f"hold-{event.event_id}", release_ts=event.ts + outcome.hold_hours * HOUR_MS
    )


def _hold(event: Event, decision: Decision) -> Hold:
    """The hold a `hold` decision places (its id and release time are in the decision)."""
    assert not isinstance(decision.hold, msgspec.UnsetType)
    counterparty = event.payee.id if event.payee else event.merchant.id if event.merchant else None
    return Hold(
        hold_id=decision.hold.hold_id,
        event_id=event.event_id,
        user_id=event.user_id,
        type=event.type,
        amount=event.amount or 0,
        currency=event.currency,
        placed_ts=event.ts,
        release_ts=decision.hold.release_ts,
        counterparty=counterparty,
    )


def _with_chains(
    reasons: list[Reason], chain_rules: dict[str, frozenset[str]], matches: list[ChainMatch]
) -> list[Reason]:
    """Each reason of a rule that reads chain features, with the chains the decision's
    chain read returned as matched or completing, and their events."""
    out: list[Reason] = []
    for reason in reasons:
        read = chain_rules.get(reason.rule, frozenset())
        found = [
            ChainEvidence(chain=m.chain, step=m.step, event_ids=list(m.event_ids))
            for m in matches
            if m.chain in read
        ]
        out.append(msgspec.structs.replace(reason, chains=found) if found else reason)
    return out


def _published_nowhere(ruleset: Ruleset) -> None:
    """One process: no other worker to tell."""
