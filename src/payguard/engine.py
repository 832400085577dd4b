"""The only place the stages are wired together.

    Event → features (point-in-time snapshot) → rules (CEL) → policy → Decision → recorded
          → features updated

Per event the engine (1) answers a repeated `event_id` from the record, (2) snapshots the
features the applicable rules need, as of the event's time, (3) evaluates those rules,
(4) combines hits into a decision, (5) queues event + decision in one record, and only
then (6) files the event into the feature state. A snapshot of that state is written only
right after a flush, so after a crash `recover()` replays exactly the recorded events that
the snapshot does not yet hold: nothing lost, nothing counted twice.
"""

import gc
import hashlib
import logging
import os
import pickle
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import msgspec

from payguard.config import Settings
from payguard.events import FEEDBACK_TYPES, Event, EventDecoder, Tokenizer
from payguard.events.contract import EventType
from payguard.features import SWEEP_EVERY, FeatureState, QueryPlan, load_catalog
from payguard.features.timeline import LegacyTimeline
from payguard.metrics import Metrics
from payguard.policy import Decision, Outcome, decide
from payguard.rules import CompiledRule, Ruleset, event_variables, parse_ruleset
from payguard.rules.evaluate import rule_runner
from payguard.rules.native import RuleRunner
from payguard.rules.variables import EVENT_VARIABLE_TYPES
from payguard.store import Recorder, SQLiteRecorder

if TYPE_CHECKING:
    from payguard.ml.serve import ModelServer

log = logging.getLogger("payguard")

EVENT_TYPES: tuple[str, ...] = get_args(EventType)
SNAPSHOT_FILE = "state.snapshot"
DATABASE_FILE = "payguard.db"


class DuplicateEventError(Exception):
    """The event_id was already recorded with a different payload (HTTP 409)."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event_id {event_id!r} was already recorded with a different payload")
        self.event_id = event_id


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
    ) -> None:
        self.features = features
        self.model = model
        self.recorder = recorder
        self.settings = settings
        self.metrics = Metrics()
        self.decoder = EventDecoder(Tokenizer(settings.token_key.encode()))
        self._snapshot_path = snapshot_path
        self._snapshot_seq = -1
        self._event_vars = event_variables(settings.utc_offset)
        self._encode = msgspec.json.Encoder(order="sorted").encode
        self._plans: dict[str, _TypePlan] = {}
        self._ruleset = ruleset
        self._catalog_digest = hashlib.sha256(msgspec.json.encode(features.catalog)).hexdigest()

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings) -> "Engine":
        """The embedded default: SQLite in `settings.data_dir`, state recovered from it."""
        features = FeatureState(load_catalog(settings.features))
        ruleset = compile_ruleset(settings.ruleset.read_text(encoding="utf-8"), features)
        data_dir = settings.data_dir
        engine = cls(
            features=features,
            ruleset=ruleset,
            recorder=SQLiteRecorder(data_dir / DATABASE_FILE),
            settings=settings,
            snapshot_path=data_dir / SNAPSHOT_FILE,
            model=_load_model(settings, features),
        )
        engine.recover()
        return engine

    @property
    def ruleset(self) -> Ruleset:
        return self._ruleset

    def set_ruleset(self, ruleset: Ruleset) -> None:
        """Hot reload: later decisions use the new ruleset; state is untouched."""
        self._ruleset = ruleset
        self._plans = {}

    def parse_ruleset(self, text: str) -> Ruleset:
        """Validate ruleset text against this engine's features (raises RuleError)."""
        return compile_ruleset(text, self.features)

    # -- the decision path ----------------------------------------------------------------

    def process(self, event: Event) -> tuple[Decision, bool]:
        """Decide and record one validated event; returns (decision, was_repeat).

        A repeat of a recorded event_id with the same payload returns the stored decision
        and changes nothing; with another payload it raises DuplicateEventError."""
        payload = self._encode(event)
        payload_hash = hashlib.sha256(payload).digest()
        stored = self.recorder.lookup(event.event_id)
        if stored is not None:
            if stored.payload_hash != payload_hash:
                self.metrics.conflicts += 1
                raise DuplicateEventError(event.event_id)
            self.metrics.duplicates += 1
            return stored.decision, True
        decision = self.decide(event)
        seq = self.recorder.append(event, payload, payload_hash, decision)
        self._apply(seq, event)
        self.metrics.observe(event.type, decision.action, decision.latency_us)
        if seq % self.settings.snapshot_every == 0:
            self.flush()
            self.write_snapshot()
        return decision, False

    def decide(self, event: Event) -> Decision:
        """Features → rules → policy for one event, reading state and changing nothing."""
        start = time.perf_counter_ns()
        plan = self._plans.get(event.type) or self._plan_for(event.type)
        features = self.features.snapshot(event, plan.features)
        model = self.model
        score = model.score(event) if model is not None else None
        values = features
        if plan.wants_model:
            values = {**features, "model": {"score": 0.0 if score is None else score}}
        hits = plan.run_rules(values, event)
        version = model.version if model is not None and score is not None else None
        if not hits and plan.allows_without_hits:  # most events: skip the policy's bookkeeping
            return Decision(
                event_id=event.event_id,
                action="allow",
                score=0,
                reasons=[],
                ruleset=plan.ruleset.version,
                model=version,
                latency_us=(time.perf_counter_ns() - start) // 1_000,
                features=features,
                shadow=[],
                rule_errors=[],
            )
        outcome = decide(hits, plan.ruleset.policy)
        errors = [{"rule": h.rule, "error": h.error or ""} for h in hits if h.status == "error"]
        return Decision(
            event_id=event.event_id,
            action=outcome.action,
            score=outcome.score,
            reasons=outcome.reasons,
            ruleset=plan.ruleset.version,
            model=version,
            latency_us=(time.perf_counter_ns() - start) // 1_000,
            challenge=outcome.challenge if outcome.challenge is not None else msgspec.UNSET,
            features=features,
            shadow=outcome.shadow,
            rule_errors=errors,
        )

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
        features = frozenset(n for n in wanted if n in self.features.features)
        plan = _TypePlan(
            ruleset=ruleset,
            rules=rules,
            features=self.features.plan(features),
            run_rules=self._rule_runner(rules, wanted, features),
            wants_model="model" in wanted,
            allows_without_hits=_quiet(decide([], ruleset.policy)),
        )
        self._plans[event_type] = plan
        return plan

    def _rule_runner(
        self, rules: tuple[CompiledRule, ...], wanted: set[str], features: frozenset[str]
    ) -> RuleRunner:
        """The rules as Python where that is exact; variables resolve as in CEL: a param
        shadows a feature, which shadows an event field."""
        params = {k: v for k, v in self._ruleset.params.items() if k in wanted}
        types = {
            **EVENT_VARIABLE_TYPES,
            **{n: self.features.value_type(n) for n in features},
            **{k: _param_type(v) for k, v in params.items()},
        }
        event_vars = {n: f for n, f in self._event_vars.items() if n in wanted}
        run_rules, _ = rule_runner(rules, types, features, event_vars, params)
        return run_rules

    def _apply(self, seq: int, event: Event) -> None:
        """File the event into the feature state (after it is decided and queued)."""
        referenced = None
        if event.type in FEEDBACK_TYPES and event.ref_event_id is not None:
            referenced = self.recorder.get_event(event.ref_event_id)
        self.features.update(event, referenced)
        if seq % SWEEP_EVERY == 0:
            self.features.sweep()

    # -- durability -----------------------------------------------------------------------

    def flush(self) -> None:
        self.recorder.flush()

    def write_snapshot(self) -> None:
        """Persist feature state as of the last durable record (call right after flush)."""
        seq = self.recorder.last_seq()
        if self._snapshot_path is None or seq == self._snapshot_seq:
            return
        body = pickle.dumps(
            {
                "seq": seq,
                "catalog": self._catalog_digest,
                "state": self.features.export(),
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        tmp = self._snapshot_path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._snapshot_path)
        self._snapshot_seq = seq

    def recover(self) -> int:
        """Load the snapshot (if it matches) and replay recorded events after it."""
        start = self._load_snapshot()
        replayed = 0
        for seq, event in self.recorder.events_after(start):
            self._apply(seq, event)
            replayed += 1
        if replayed:
            log.info("recovered feature state: snapshot at seq %d + %d events", start, replayed)
        return replayed

    def _load_snapshot(self) -> int:
        path = self._snapshot_path
        if path is None or not path.exists():
            return 0
        try:
            with path.open("rb") as fh:
                saved = _SnapshotUnpickler(fh).load()  # our own file, written by write_snapshot
        except (OSError, pickle.UnpicklingError, EOFError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable snapshot (%s); replaying all", exc)
            return 0
        if saved["catalog"] != self._catalog_digest or saved["seq"] > self.recorder.last_seq():
            log.warning("ignoring snapshot taken with another catalog or log; replaying all")
            return 0
        self.features.restore(saved["state"])
        self._snapshot_seq = int(saved["seq"])
        return self._snapshot_seq

    def close(self) -> None:
        self.flush()
        self.write_snapshot()
        self.recorder.close()

    def gauges(self) -> dict[str, float]:
        return {
            "payguard_entities": self.features.entity_count(),
            "payguard_late_events_total": self.features.late_events,
            "payguard_watermark_ms": self.features.watermark,
            "payguard_recorded_seq": self.recorder.last_seq(),
        }


def _quiet(outcome: Outcome) -> bool:
    """Whether an outcome is the plain allow that `Engine.decide` builds without `decide`."""
    o = outcome
    return (o.action, o.score, o.reasons, o.challenge, o.shadow) == ("allow", 0, [], None, [])


def _param_type(value: object) -> str:
    """A ruleset param's CEL type (bool first: a Python bool is also an int)."""
    return "bool" if isinstance(value, bool) else "int" if isinstance(value, int) else "string"


class _SnapshotUnpickler(pickle.Unpickler):
    """Reads snapshots of either layout: one written before timelines became msgspec
    Structs names the old `Timeline` class, which now unpickles as `LegacyTimeline`."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("payguard.features.timeline", "Timeline"):
            return LegacyTimeline
        return super().find_class(module, name)


@contextmanager
def batch_gc() -> Iterator[None]:
    """Keep Python's cyclic GC off a batch replay's growing feature state.

    Full collections rescan every timeline ever created and took about 12% of a replay.
    Decisions create no reference cycles worth chasing, so inside this block the automatic
    GC is off and the caller collects only the young generations at each flush
    (`gc.collect(1)`), which still reclaims the rare cycle (a rejected line's traceback)."""
    gc.freeze()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.unfreeze()


def compile_ruleset(text: str, features: FeatureState) -> Ruleset:
    """Parse and validate ruleset text against these features (raises RuleError)."""
    return parse_ruleset(text, known_variables(features), EVENT_TYPES)


def known_variables(features: FeatureState) -> set[str]:
    """Every name a rule may reference, besides the ruleset's own params (`model` is the
    learned score, `model.score`, 0.0 when no model is loaded)."""
    return set(event_variables()) | set(features.features) | {"model"}


def _load_model(settings: Settings, features: FeatureState) -> "ModelServer | None":
    """The configured model, or None; says which at start-up either way."""
    if settings.model is None:
        log.info("no model configured (PAYGUARD_MODEL): deciding with rules only")
        return None
    from payguard.ml.serve import load_model  # ONNX Runtime is imported only when asked

    server, message = load_model(settings.model, features, settings.features)
    (log.info if server is not None else log.warning)(message)
    return server
