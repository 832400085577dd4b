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

import gc
import hashlib
import importlib.metadata
import logging
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, get_args

import msgspec

from payguard.chains import ChainMatcher, ChainPattern, ChainSpec
from payguard.chains.matcher import Variables
from payguard.config import Settings
from payguard.decision import ChainEvidence, Decision, HoldTerms, Reason
from payguard.events import (
    OUTCOME_TYPES,
    Event,
    EventDecoder,
    EventError,
)
from payguard.events.contract import EventType
from payguard.features import SWEEP_EVERY, FeatureState, QueryPlan, load_catalog
from payguard.graph import GraphConfig, GraphFeatures
from payguard.holds import (
    Hold,
    HoldBook,
    HoldState,
    MemoryHoldBook,
    SQLiteHoldBook,
    expire_due,
)
from payguard.metrics import Metrics, RuleErrorLog
from payguard.outcomes import FILED_TYPES, OutcomeBook, Outcomes
from payguard.policy import PolicyResult, decide, stepup
from payguard.rules import CompiledRule, RuleHit, event_variables
from payguard.rules.evaluate import rule_runner
from payguard.rules.native import RuleRunner
from payguard.rules.variables import EVENT_VARIABLE_TYPES, EventVariable
from payguard.ruleset import Ruleset, parse_ruleset
from payguard.snapshots import FORMAT as SNAPSHOT_FORMAT
from payguard.snapshots import (
    SnapshotBody,
    SnapshotError,
    SnapshotHeader,
    decode_snapshot,
    encode_snapshot,
)
from payguard.store import MemoryRecorder, Recorder, SQLiteRecorder
from payguard.types import DECLINED, HOUR_MS

if TYPE_CHECKING:
    from payguard.ml.serve import ModelServer

log = logging.getLogger("payguard")

EVENT_TYPES: tuple[str, ...] = get_args(EventType)
SNAPSHOT_FILE = "state.snapshot"
DATABASE_FILE = "payguard.db"
HOLDS_FILE = "holds.db"
OUTCOMES_FILE = "outcomes.db"
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


GRAPH_CONFIG = GraphConfig(sweep_every=SWEEP_EVERY, max_refs=0)
"""The identity graph's caps and horizons. It sweeps at the feature state's sequence
numbers, so every state expires on one schedule, and keeps no event-id memory: `_apply`
passes feedback the event it references, read from the log."""


def _graph_types() -> dict[str, str]:
    graph = GraphFeatures(GRAPH_CONFIG)
    return {name: graph.value_type(name) for name in graph.names()}


GRAPH_TYPES: dict[str, str] = _graph_types()
"""Every graph feature a rule or chain condition may read, with its CEL type."""
GRAPH_NAMES: frozenset[str] = frozenset(GRAPH_TYPES)
_NO_VARIABLES: dict[str, Any] = {}


class StorageError(OSError):
    """The event log could not commit (a full disk, an I/O error): nothing was recorded
    and no state changed (HTTP 503)."""


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


class _TypePlan(msgspec.Struct, frozen=True):
    """Everything needed to decide one event type under one ruleset, computed once."""

    ruleset: Ruleset
    rules: tuple[CompiledRule, ...]
    features: QueryPlan
    run_rules: RuleRunner
    """The rules as one function of (features, event): see `rules.rule_runner`."""
    wants_model: bool = False
    """A rule reads `model.score` (0.0 when no model scored the event)."""
    allows_without_hits: bool = False
    """Whether the policy allows an event no rule hit (no threshold at score 0)."""
    graph: frozenset[str] = frozenset()
    """Graph features the rules or the chain conditions read (the graph's plan key)."""
    chains: frozenset[str] = frozenset()
    """Chain features the rules read; the chains are matched before the rules only then."""
    chain_inputs: tuple[tuple[str, EventVariable], ...] | None = None
    """Event fields the chain conditions read; None when no chain step (or negation)
    applies to this type, so no variables are built for the matcher."""
    chain_values: tuple[str, ...] = ()
    """Catalog and graph features the chain conditions read (copied from the snapshot)."""
    chain_features: QueryPlan | None = None
    """Catalog features the chain conditions read, for recovery (no decision)."""
    chain_graph: frozenset[str] = frozenset()
    """Graph features the chain conditions read, for recovery."""
    chain_rules: dict[str, frozenset[str]] = msgspec.field(default_factory=dict)
    """Rule id → the chains whose features it reads, to name them in its reason."""


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
    ) -> None:
        self.features = features
        self.model = model
        self.holds: HoldBook = holds if holds is not None else MemoryHoldBook()
        self.recorder = recorder
        self.outcomes = Outcomes(outcomes if outcomes is not None else OutcomeBook(), recorder)
        """Decision lifecycles: challenge results and labels (payguard.outcomes)."""
        self.settings = settings
        self.metrics = Metrics()
        self.rule_error_log = RuleErrorLog(self.metrics, log)
        self.listeners: list[DecisionListener] = []
        self.decoder = EventDecoder(settings.tokenizer(features.knows))
        self._snapshot_path = snapshot_path
        self._snapshot_seq = -1
        self.recovered = snapshot_path is None
        """Whether the state holds the whole event log (set by `recover`; an engine
        without a snapshot file has nothing to recover)."""
        self._event_vars = event_variables(settings.utc_offset)
        self._encode = msgspec.json.Encoder(order="sorted").encode
        self._plans: dict[str, _TypePlan] = {}
        self._ruleset = ruleset
        self._catalog_digest = hashlib.sha256(msgspec.json.encode(features.catalog)).hexdigest()
        self.graph = GraphFeatures(GRAPH_CONFIG) if settings.graph_chains else None
        self.chains = self._matcher(ruleset) if settings.graph_chains else None
        self._chain_types = _chain_types(ruleset)
        known = stepup.FEATURES & features.layout.keys()
        if known != stepup.FEATURES:
            log.warning(
                "feature catalog lacks step-up features (%s): the methods they vouch for "
                "are never offered",
                ", ".join(sorted(stepup.FEATURES - known)),
            )
        self._step_up_plan = features.plan(known, "step-up")

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings) -> "Engine":
        """The embedded default: SQLite in `settings.data_dir`, state recovered from it."""
        features = FeatureState(load_catalog(settings.features), settings.utc_offset)
        text = settings.ruleset.read_text(encoding="utf-8")
        ruleset = compile_ruleset(text, features, graph_chains=settings.graph_chains)
        data_dir = settings.data_dir
        recorder = SQLiteRecorder(data_dir / DATABASE_FILE, synchronous=settings.synchronous)
        engine = cls(
            features=features,
            ruleset=ruleset,
            recorder=recorder,
            settings=settings,
            snapshot_path=data_dir / SNAPSHOT_FILE,
            model=_load_model(settings, features),
            holds=_hold_book(recorder, data_dir),
            outcomes=OutcomeBook(data_dir / OUTCOMES_FILE),
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
            model=_load_model(settings, features),
        )

    @property
    def ruleset(self) -> Ruleset:
        return self._ruleset

    def set_ruleset(self, ruleset: Ruleset) -> None:
        """Hot reload: later decisions use the new ruleset. Feature and graph state are
        untouched; when the chain patterns change, unchanged patterns keep their partial
        matches and new or changed ones start with none (docs/chains.md, "Hot reload")."""
        chains = self.chains
        if chains is not None and _specs(ruleset.chains) != _specs(chains.patterns):
            self.chains = self._matcher(ruleset)
            fresh = self.chains.adopt(chains)
            if fresh:
                log.warning("chain patterns start with no partial matches: %s", ", ".join(fresh))
        self._ruleset = ruleset
        self._chain_types = _chain_types(ruleset)
        self._plans = {}

    def parse_ruleset(self, text: str) -> Ruleset:
        """Validate ruleset text against this engine's features (raises RuleError)."""
        return compile_ruleset(text, self.features, graph_chains=self.graph is not None)

    def _matcher(self, ruleset: Ruleset) -> ChainMatcher:
        """A matcher for the ruleset's patterns, late as the features and swept with them,
        running conditions as Python over the same variable types as the rules."""
        types = {
            **EVENT_VARIABLE_TYPES,
            **{n: self.features.value_type(n) for n in self.features.layout},
            **GRAPH_TYPES,
        }
        return ChainMatcher(
            ruleset.chains,
            lateness_ms=self.features.lateness_ms,
            sweep_every=SWEEP_EVERY,
            types=types,
            accounts_of=self.features.accounts_of,
        )

    def neighbourhood(self, kind: str, entity_id: str, depth: int) -> dict[str, Any] | None:
        """The identity graph around one node as JSON (None when the graph is off); raises
        ValueError for an unknown kind."""
        graph = self.graph
        return None if graph is None else graph.neighbourhood(kind, entity_id, depth)

    # -- the decision path ----------------------------------------------------------------

    def process(self, event: Event, *, commit: bool = False) -> tuple[Decision, bool]:
        """Decide and record one validated event; returns (decision, was_repeat).

        With `commit`, the event, its decision and its hold are committed before any state
        changes; a failed commit raises StorageError and leaves every state as it was (the
        HTTP path). Without, the record is queued for the caller's `flush` and the state
        updated at once, so that later events of a batch see this one; if that flush
        fails, `rebuild_state` puts the state back to what the log holds.

        A repeat of a recorded event_id with the same payload returns the stored decision
        and changes nothing; with another payload it raises DuplicateEventError. An
        outcome (`challenge_result`, `label`) that fits no recorded decision raises
        OutcomeError (an EventError naming the field) and records nothing; one that fits
        is recorded with an `allow` no rule decided (it is not an operation to weigh)."""
        payload = self._encode(event)
        payload_hash = hashlib.sha256(payload).digest()
        stored = self.recorder.lookup(event.event_id)
        if stored is not None:
            if stored.payload_hash != payload_hash:
                self.metrics.conflicts += 1
                raise DuplicateEventError(event.event_id)
            self.metrics.duplicates += 1
            return stored.decision, True
        if event.type in OUTCOME_TYPES:
            self.outcomes.check(event)
            decision, variables = self._acknowledge(event), None
        else:
            decision, variables = self._decide(event)
        seq = self.recorder.append(event, payload, payload_hash, decision)
        if decision.action == "hold":
            self.holds.place(_hold(event, decision))
        if commit:
            self._commit()
        for listener in self.listeners:
            listener.recorded(event, decision)
        self._apply(seq, event, decision.action, variables)
        self.metrics.observe(event.type, decision.action, decision.latency_us)
        if decision.rule_errors:  # counted and logged only for recorded decisions
            errors = decision.rule_errors
            self.rule_error_log.report((e["rule"], e["error"], e["on_error"]) for e in errors)
        if seq % self.settings.snapshot_every == 0:
            self.flush()
            self.write_snapshot()
        return decision, False

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
        stored = self.recorder.lookup(event.event_id)
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
            self._snapshot_path = None
            raise
        self.recorder.end_load(commit=True)

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
            self._snapshot_path = None
            raise
        self.recorder.reload()

    def decide(self, event: Event) -> Decision:
        """Features → rules → policy for one event, reading state and changing nothing."""
        return self._decide(event)[0]

    def _decide(self, event: Event) -> tuple[Decision, Variables | None]:
        """The decision, and the variables the chain conditions read (None when no chain
        step applies to the type): `_apply` files the event with the same values. They are
        a function building them from the snapshot, because most events evaluate no
        condition at all (only step 1 and steps that continue a partial match run)."""
        start = time.perf_counter_ns()
        plan = self._plans.get(event.type) or self._plan_for(event.type)
        features = self.features.snapshot(event, plan.features)
        if plan.graph and self.graph is not None:
            features.update(self.graph.snapshot(event, plan.graph))
        variables: Variables | None = None
        if plan.chain_inputs is not None:
            variables = partial(_chain_variables, plan, event, features)
        if plan.chains and self.chains is not None:
            features.update(self.chains.snapshot(event, variables or features, plan.chains))
        model = self.model
        scored = model.score_row(event) if model is not None else None
        values = features
        if plan.wants_model:
            values = {**features, "model": {"score": 0.0 if scored is None else scored[0]}}
        hits = plan.run_rules(values, event)
        if hits and self.outcomes.book.clears_any(event.user_id):
            hits = self.outcomes.uncleared(event, hits)
        version = model.version if model is not None and scored is not None else None
        model_score = msgspec.UNSET if scored is None else scored[0]
        if not hits and plan.allows_without_hits:  # most events: skip the policy's bookkeeping
            decision = Decision(
                event_id=event.event_id,
                action="allow",
                score=0,
                reasons=[],
                ruleset=plan.ruleset.version,
                model=version,
                latency_us=(time.perf_counter_ns() - start) // 1_000,
                model_score=model_score,
                features=features,
                shadow=[],
                rule_errors=[],
            )
            return decision, variables
        outcome = decide(hits, plan.ruleset.policy, partial(self._step_up, event, features))
        errors = _rule_errors(plan.rules, hits)
        reasons = outcome.reasons
        if plan.chain_rules and reasons:
            reasons = self._with_chains(reasons, plan.chain_rules)
        if scored is not None and outcome.action != "allow":
            assert model is not None
            reasons = reasons + _model_reasons(model, scored[1])
        decision = Decision(
            event_id=event.event_id,
            action=outcome.action,
            score=outcome.score,
            reasons=reasons,
            ruleset=plan.ruleset.version,
            model=version,
            latency_us=(time.perf_counter_ns() - start) // 1_000,
            challenge=outcome.challenge if outcome.challenge is not None else msgspec.UNSET,
            hold=_hold_terms(event, outcome),
            model_score=model_score,
            features=features,
            shadow=outcome.shadow,
            rule_errors=errors,
        )
        return decision, variables

    def _step_up(self, event: Event, features: dict[str, Any]) -> dict[str, Any]:
        """The step-up features as of the event (read only when the policy challenges),
        added to the decision's features so an explanation shows what the choice saw."""
        values = self.features.snapshot(event, self._step_up_plan)
        features.update(values)
        return values

    def _with_chains(
        self, reasons: list[Reason], chain_rules: dict[str, frozenset[str]]
    ) -> list[Reason]:
        """Each reason of a rule that reads chain features, with the chains the snapshot
        found matched or completing and their events."""
        assert self.chains is not None  # a plan has chain rules only with a matcher
        matches = self.chains.last_matches()
        if not matches:
            return reasons
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

    def payload_hash(self, event: Event) -> bytes:
        """The hash `process` compares to tell an idempotent repeat from a conflict."""
        return hashlib.sha256(self._encode(event)).digest()

    def check_conflict(self, event: Event) -> None:
        """Raise DuplicateEventError if `process(event)` would; changes nothing (no metrics)."""
        stored = self.recorder.lookup(event.event_id)
        if stored is not None and stored.payload_hash != self.payload_hash(event):
            raise DuplicateEventError(event.event_id)

    def stored_decision(self, event_id: str) -> Decision | None:
        stored = self.recorder.lookup(event_id)
        return stored.decision if stored else None

    def _plan_for(self, event_type: str) -> _TypePlan:
        ruleset = self._ruleset
        rules = ruleset.for_event_type(event_type)
        wanted = set().union(*(r.variables for r in rules)) if rules else set()
        reads = wanted - ruleset.params.keys()  # a param shadows a feature of the same name
        catalog = self.features.layout
        inputs = self.chains.variables_for(event_type) if self.chains else frozenset()
        read_by_rules = frozenset(n for n in reads if n in catalog)
        plan = _TypePlan(
            ruleset=ruleset,
            rules=rules,
            features=self.features.plan(
                read_by_rules | {n for n in inputs if n in catalog}, event_type
            ),
            run_rules=self._rule_runner(rules, wanted, read_by_rules, event_type),
            wants_model="model" in wanted,
            allows_without_hits=_quiet(decide([], ruleset.policy, dict)),
            graph=frozenset((reads | inputs) & GRAPH_NAMES),
            chains=frozenset(reads & self._chain_types.keys()),
            chain_rules=self._chain_rules(rules),
            **self._chain_plan(event_type, inputs),
        )
        self._plans[event_type] = plan
        return plan

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
        if plan.chain_features is not None:
            code.append(("chain condition features (recovery only)", plan.chain_features.read))
        code += [
            ("feature update and watched history", own),
            ("feature update: referenced event", referenced),
        ]
        if payee is not None:
            code.append(("feature update: the payee's account", payee))
        return code

    def _chain_plan(self, event_type: str, inputs: frozenset[str]) -> dict[str, Any]:
        """What the chain conditions of this type read: event fields and snapshot values
        (None and nothing when no step or negation applies), and for recovery the catalog
        and graph features to snapshot."""
        catalog = self.features.layout
        applies = self.chains is not None and self.chains.applies_to(event_type)
        read = frozenset(n for n in inputs if n in catalog)
        return {
            "chain_inputs": self._inputs(inputs) if applies else None,
            "chain_values": tuple(sorted(n for n in inputs if n in catalog or n in GRAPH_NAMES)),
            "chain_features": self.features.plan(read, f"{event_type} chains") if read else None,
            "chain_graph": frozenset(inputs & GRAPH_NAMES),
        }

    def _inputs(self, names: frozenset[str]) -> tuple[tuple[str, EventVariable], ...]:
        """The event fields among the names a chain condition reads (features shadow
        fields of the same name, as in rules)."""
        catalog = self.features.layout
        return tuple((n, f) for n, f in self._event_vars.items() if n in names and n not in catalog)

    def _chain_rules(self, rules: tuple[CompiledRule, ...]) -> dict[str, frozenset[str]]:
        """Rule id → the chains it reads a feature of (rules reading none left out)."""
        chain_of = self._chain_types
        read = {r.rule.id: {chain_of[n][0] for n in r.variables if n in chain_of} for r in rules}
        return {rule: frozenset(names) for rule, names in read.items() if names}

    def _rule_runner(
        self,
        rules: tuple[CompiledRule, ...],
        wanted: set[str],
        catalog: frozenset[str],
        event_type: str = "",
    ) -> RuleRunner:
        """The rules as Python where that is exact; variables resolve as in CEL: a param
        shadows a feature (of the catalog, the graph or a chain), which shadows an event
        field."""
        params = {k: v for k, v in self._ruleset.params.items() if k in wanted}
        reads = wanted - params.keys()
        graph = {n: GRAPH_TYPES[n] for n in reads & GRAPH_NAMES}
        chains = {n: self._chain_types[n][1] for n in reads & self._chain_types.keys()}
        types = {
            **EVENT_VARIABLE_TYPES,
            **{n: self.features.value_type(n) for n in catalog},
            **graph,
            **chains,
            **{k: _param_type(v) for k, v in params.items()},
        }
        event_vars = {n: f for n, f in self._event_vars.items() if n in wanted}
        features = catalog | graph.keys() | chains.keys()
        budget = self.settings.rule_budget_us
        run_rules, _ = rule_runner(rules, types, features, event_vars, params, budget, event_type)
        return run_rules

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
        """`_apply` once the event a feedback event references has been read."""
        if event.type in FILED_TYPES:
            config = self._ruleset.policy.outcomes
            self.outcomes.file(seq, event, config, referenced, self.decide)
        chains = self.chains
        if variables is None and chains is not None:
            # built only if a condition runs (rarely), from the states before the event
            chains.evaluate(event, partial(self._recompute_chain_variables, event))
        if event.type in OWNER_REPORTS or _fraud_label(event):
            self._revoke_holds(event)
        self.features.update(event, referenced, action in DECLINED)
        if self.graph is not None:
            self.graph.update(event, seq, referenced)
        if chains is not None:
            chains.update(event, _NO_VARIABLES if variables is None else variables, seq)
        if seq % SWEEP_EVERY == 0:
            self.features.sweep()

    def _revoke_holds(self, event: Event) -> None:
        """Revoke the pending holds of the accounts an owner's report concerns (before the
        report is filed, so a carrier signal reaches the accounts its phone was seen with).
        Idempotent, so recovery replaying the report changes nothing."""
        note = f"{event.type.replace('_', ' ')} {event.event_id}"
        for user in self.features.accounts_of(event):
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
        """What the chain conditions read for this event, as `_decide` builds it: event
        fields, catalog and graph features, from the state before the event."""
        plan = self._plans.get(event.type) or self._plan_for(event.type)
        variables = {name: read(event) for name, read in plan.chain_inputs or ()}
        if plan.chain_features is not None:
            variables.update(self.features.snapshot(event, plan.chain_features))
        if plan.chain_graph and self.graph is not None:
            variables.update(self.graph.snapshot(event, plan.chain_graph))
        return variables

    # -- durability -----------------------------------------------------------------------

    def _commit(self) -> None:
        """Commit the queued records (events, decisions, holds) in one transaction, or
        forget them and raise StorageError."""
        try:
            self.recorder.flush()
        except Exception as exc:
            self.metrics.storage_errors += 1
            self.discard_pending()
            log.error("event log commit failed, nothing recorded: %s", exc)
            raise StorageError(str(exc)) from exc
        _fault_point("after-event-log-commit")

    def discard_pending(self) -> None:
        """Forget every queued record (a request that is not answered with a decision)."""
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
        recorded = self.recorder.last_seq()
        self.recorder.flush()
        if self.recorder.last_seq() != recorded:
            _fault_point("after-event-log-commit")
        self.holds.flush()
        self.outcomes.book.flush()  # tells outcome listeners, which may queue webhooks
        for listener in self.listeners:
            listener.flush()

    def write_snapshot(self) -> None:
        """Persist feature, graph and chain state as of the last durable record (call right
        after flush), as a checksummed MessagePack file (payguard.snapshots): written to a
        temporary file, synced, then renamed over the old one."""
        seq = self.recorder.last_seq()
        if self._snapshot_path is None or seq == self._snapshot_seq:
            return
        header = SnapshotHeader(
            format=SNAPSHOT_FORMAT,
            payguard=_payguard_version(),
            catalog=self._catalog_digest,
            ruleset=self._ruleset.version,
            seq=seq,
        )
        with _gc_paused():  # exports build a tuple per edge and timeline, none cyclic
            body = SnapshotBody(
                features=self.features.export(),
                graph=self.graph.export() if self.graph is not None else None,
                chains=self.chains.export() if self.chains is not None else None,
            )
            data = encode_snapshot(header, body)
        tmp = self._snapshot_path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._snapshot_path)
        self._snapshot_seq = seq

    def recover(self) -> int:
        """Load the snapshot (if it is intact and matches) and replay recorded events after it."""
        start = self._load_snapshot()
        replayed = 0
        self.outcomes.book.notifying = False  # announced before the restart, if at all
        for seq, event, action in self.recorder.events_after(start):
            self._apply(seq, event, action)
            replayed += 1
        self.outcomes.book.notifying = True
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
        except (sqlite3.Error, OSError) as exc:
            reasons.append(f"storage: the event log cannot be written ({exc})")
        return reasons

    def _load_snapshot(self) -> int:
        """Restore the snapshot and return its sequence; 0 (and a warning saying why, then
        a full replay) for a missing, damaged, foreign or mismatched file."""
        path = self._snapshot_path
        if path is None or not path.exists():
            return 0
        try:
            header, body = decode_snapshot(path.read_bytes())
        except (OSError, SnapshotError) as exc:
            log.warning("ignoring state snapshot %s (%s); replaying the whole event log", path, exc)
            return 0
        if header.format != SNAPSHOT_FORMAT:
            log.warning("ignoring snapshot of format %d; replaying all", header.format)
            return 0
        if header.catalog != self._catalog_digest or header.seq > self.recorder.last_seq():
            log.warning("ignoring snapshot taken with another catalog or log; replaying all")
            return 0
        if self.graph is not None:
            restored = self._graph_and_chains(body)
            if restored is None:
                return 0
            self.graph, self.chains = restored
        try:
            self.features.restore(body.features)
        except (ValueError, KeyError, TypeError, IndexError, msgspec.DecodeError) as exc:
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
        if self.graph is not None:
            self.graph, self.chains = GraphFeatures(GRAPH_CONFIG), self._matcher(self._ruleset)

    def _graph_and_chains(self, body: SnapshotBody) -> tuple[GraphFeatures, ChainMatcher] | None:
        """Graph and chain state restored into new objects, so that a snapshot refused
        half-way changes nothing; None (and a warning) if the snapshot cannot provide them:
        written with graph_chains off, with another graph configuration, or with other
        chain patterns. The caller then replays the whole log, which rebuilds all three
        states exactly."""
        if body.graph is None or body.chains is None:
            log.warning("ignoring snapshot without graph and chain state; replaying all")
            return None
        graph, chains = GraphFeatures(GRAPH_CONFIG), self._matcher(self._ruleset)
        try:
            graph.restore(body.graph)
            chains.restore(body.chains)
        except (ValueError, KeyError, TypeError, IndexError, msgspec.DecodeError) as exc:
            log.warning("ignoring snapshot (%s); replaying all", exc)
            return None
        return graph, chains

    def close(self) -> None:
        self.flush()
        self.write_snapshot()
        self.recorder.close()
        self.holds.close()
        self.outcomes.book.close()

    def gauges(self) -> dict[str, float]:
        gauges: dict[str, float] = {
            "payguard_entities": self.features.entity_count(),
            "payguard_late_events_total": self.features.late_events,
            "payguard_watermark_ms": self.features.watermark,
            "payguard_recorded_seq": self.recorder.last_seq(),
        }
        if self.graph is not None:
            gauges["payguard_graph_accounts"] = len(self.graph.graph.acc)
            gauges["payguard_graph_entities"] = len(self.graph.graph.ent)
        if self.chains is not None:
            gauges["payguard_chain_partitions"] = sum(len(p) for p in self.chains.parts)
        return gauges


def _chain_variables(plan: _TypePlan, event: Event, values: dict[str, Any]) -> dict[str, Any]:
    """What the chain conditions read: event fields, and catalog and graph features from
    the snapshot `values` (taken before the event; only chain values are added to it
    later, under other names)."""
    variables = {name: read(event) for name, read in plan.chain_inputs or ()}
    for name in plan.chain_values:
        variables[name] = values[name]
    return variables


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


def _hold_book(recorder: SQLiteRecorder, data_dir: Path) -> SQLiteHoldBook:
    """Holds in the event log's database; a separate `holds.db` of the earlier layout is
    copied in once and renamed `holds.db.migrated`."""
    book = SQLiteHoldBook.in_event_log(recorder)
    old = data_dir / HOLDS_FILE
    if old.exists():
        copied = book.migrate_from(old)
        old.rename(old.with_name(HOLDS_FILE + ".migrated"))
        log.info("moved %d hold(s) from %s into the event log's database", copied, old)
    return book


def _payguard_version() -> str:
    try:
        return importlib.metadata.version("payguard")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _fault_point(point: str) -> None:
    """Crash tests' hook: with `PAYGUARD_FAULT=<point>` the process kills itself (SIGKILL)
    there, as a power cut would, so a test can show what survives (tests/durability)."""
    if point == _FAULT:
        os.kill(os.getpid(), signal.SIGKILL)


_FAULT = os.environ.get("PAYGUARD_FAULT", "")


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


def _quiet(outcome: PolicyResult) -> bool:
    """Whether an outcome is the plain allow that `Engine.decide` builds without `decide`."""
    o = outcome
    return (o.action, o.score, o.reasons, o.challenge, o.shadow) == ("allow", 0, [], None, [])


def _param_type(value: object) -> str:
    """A ruleset param's CEL type (bool first: a Python bool is also an int)."""
    return "bool" if isinstance(value, bool) else "int" if isinstance(value, int) else "string"


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No automatic GC inside: building millions of small acyclic objects at once (a
    snapshot's exports) otherwise triggers collections that rescan the whole state."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def batch_gc() -> Iterator[None]:
    """Keep Python's cyclic GC off a batch replay's growing feature state.

    Full collections rescan every timeline ever created and took about 12% of a replay.
    Decisions create no reference cycles worth chasing, so inside this block the automatic
    GC is off and the caller collects only the young generations at each flush
    (`gc.collect(1)`), which still reclaims the rare cycle (a rejected line's traceback)."""
    gc.freeze()
    try:
        with _gc_paused():
            yield
    finally:
        gc.unfreeze()


def _rule_errors(rules: tuple[CompiledRule, ...], hits: list[RuleHit]) -> list[dict[str, str]]:
    """The decision's `rule_errors`: rule id, error class and failure mode of each rule
    that could not be evaluated (a fail_closed one also hit)."""
    failed = [h for h in hits if h.error is not None]
    if not failed:
        return []
    on_error = {r.rule.id: r.rule.on_error for r in rules}
    return [{"rule": h.rule, "error": h.error or "", "on_error": on_error[h.rule]} for h in failed]


def compile_ruleset(text: str, features: FeatureState, *, graph_chains: bool = True) -> Ruleset:
    """Parse and validate ruleset text against these features, and the graph features
    and a `chains:` section unless `graph_chains` is off (raises RuleError)."""
    known = known_variables(features, graph=graph_chains)
    chain_known = known - {"model"} if graph_chains else None
    return parse_ruleset(text, known, EVENT_TYPES, chain_known)


def known_variables(features: FeatureState, *, graph: bool = True) -> set[str]:
    """Every name a rule may reference, besides the ruleset's own params and chain
    features (`model` is the learned score, `model.score`, 0.0 when no model is loaded).
    Chain conditions read the same names except `model`: they are matched before it."""
    names = set(event_variables()) | set(features.layout) | {"model"}
    return names | GRAPH_NAMES if graph else names


def _chain_types(ruleset: Ruleset) -> dict[str, tuple[str, str]]:
    """Chain feature name → (chain, CEL type), for the ruleset's patterns."""
    return {
        name: (pattern.name, kind)
        for pattern in ruleset.chains
        for name, kind in pattern.feature_types().items()
    }


def _specs(patterns: tuple[ChainPattern, ...]) -> tuple[ChainSpec, ...]:
    return tuple(p.spec for p in patterns)


def _load_model(settings: Settings, features: FeatureState) -> "ModelServer | None":
    """The configured model, or None; says which at start-up either way."""
    if settings.model is None:
        log.info("no model configured (PAYGUARD_MODEL): deciding with rules only")
        return None
    from payguard.ml.serve import load_model  # ONNX Runtime is imported only when asked

    server, message = load_model(settings.model, features, settings.features)
    (log.info if server is not None else log.warning)(message)
    return server
