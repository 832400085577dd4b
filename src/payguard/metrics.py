"""Counters and a latency histogram, exposed through prometheus_client, that add up over
every worker of a server.

One process (the embedded default) keeps its values in memory. Workers that scale out
(`payguard serve --workers N`) share a directory named by `PROMETHEUS_MULTIPROC_DIR`,
set before any worker imports this module: prometheus_client's multiprocess mode then
keeps each process's values in memory-mapped files there, and `/metrics`, whichever
worker answers it, adds up the files of all of them (counters and histograms summed;
a dead worker's files stay, so its counts are not lost; `share_across_workers` sets it
up). Gauges (`Engine.gauges`: the state's size, the collector's pauses) describe
the process that answers the scrape, and are shown as they are.

Each `Metrics` keeps the counts of its own engine too, as plain numbers (`decisions`,
`rule_errors`, `group_commits`, …): tests and the console read those, not the text.

One process alone (no shared directory) hands its decisions, latencies and rule hits to
prometheus_client only when the text is rendered (`Metrics.render`): a labelled increment
and a histogram observation take a lock each, and were 3 % of a replay's CPU (issue 11).
The text is the same; workers sharing a directory still write every decision at once,
since another process may render their totals at any time.
"""

import logging
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client import values as _values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS_US = (50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000)
_BUCKET_COUNT: Final = len(LATENCY_BUCKETS_US) + 1
"""The histogram's buckets with +Inf (prometheus_client adds it)."""
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
"""The directory workers share their values through (prometheus_client's name)."""
disable_created_metrics()  # type: ignore[no-untyped-call] # `_created` series would double every counter's lines
_COUNTERS: Final = (
    ("invalid_events", "payguard_invalid_events", "Events rejected at the edge."),
    ("duplicates", "payguard_duplicate_events", "Idempotent repeats answered."),
    ("conflicts", "payguard_conflicting_events", "Reused ids, other payload."),
    ("future_events", "payguard_future_events", "Refused: ts ahead of clock."),
    ("storage_errors", "payguard_storage_errors", "Failed event log commits."),
    ("group_commits", "payguard_group_commits", "Group commits of events."),
    (
        "degraded",
        "payguard_degraded_decisions",
        "Decisions made without the state store (docs/scale.md, degraded mode).",
    ),
    (
        "state_writes_lost",
        "payguard_state_writes_lost",
        "Events decided and recorded whose state write failed (rebuild-state).",
    ),
    (
        "group_committed_events",
        "payguard_group_committed_events",
        "Events made durable by group commits.",
    ),
)
"""(attribute, metric name without `_total`, help) of the plain counters."""


class _Counted:
    """A plain counter attribute of `Metrics` mirrored into its Prometheus counter:
    `metrics.duplicates += 1` counts here and in the exposition alike."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, metrics: "Metrics", owner: type | None = None) -> int:
        return metrics._counts[self.name]

    def __set__(self, metrics: "Metrics", value: int) -> None:
        grown = value - metrics._counts[self.name]
        if grown < 0:
            raise ValueError(f"{self.name}: a counter only grows")
        metrics._counts[self.name] = value
        if grown:
            metrics._counters[self.name].inc(grown)


class Metrics:
    """The counters of one engine (see the module docstring for workers)."""

    invalid_events = _Counted()
    duplicates = _Counted()
    conflicts = _Counted()
    future_events = _Counted()
    """Events refused for a `ts` too far ahead of the server clock (also invalid)."""
    storage_errors = _Counted()
    """Commits of the event log that failed (each request answered 503)."""
    degraded = _Counted()
    """Events decided in degraded mode (the state store unreachable)."""
    state_writes_lost = _Counted()
    """Events decided and recorded whose write to a shared state failed (the state store
    went away between the read and the write): `payguard rebuild-state` puts them back."""
    group_commits = _Counted()
    group_committed_events = _Counted()
    """Group commits of the HTTP path and the events they held (events per fsync)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        """This engine's metrics (one process); workers' totals come from the shared
        directory instead (`render`)."""
        self._counts = {attribute: 0 for attribute, _, _ in _COUNTERS}
        self._counters = {
            attribute: Counter(name, text, registry=self.registry)
            for attribute, name, text in _COUNTERS
        }
        self.decisions: dict[tuple[str, str], int] = {}
        self.rule_errors: dict[tuple[str, str], int] = {}
        """(rule id, error class) → evaluations that failed (`payguard_rule_errors_total`)."""
        self.rule_hits: dict[str, int] = {}
        """Rule id → decisions it fired in (`payguard_rule_hits_total`)."""
        self._decisions = Counter(
            "payguard_decisions",
            "Decisions made, by event type and action.",
            ["type", "action"],
            registry=self.registry,
        )
        self._rule_errors = Counter(
            "payguard_rule_errors",
            "Rule evaluations that failed, by rule and error.",
            ["rule", "error"],
            registry=self.registry,
        )
        self._rule_hits = Counter(
            "payguard_rule_hits",
            "Decisions each rule fired in (shadow hits not counted).",
            ["rule"],
            registry=self.registry,
        )
        # A labelled series is looked up once and kept: `labels()` costs as much as the
        # increment itself (prometheus_client hashes and locks on every lookup).
        self._decision_series: dict[tuple[str, str], Any] = {}
        self._rule_hit_series: dict[str, Any] = {}
        self._latency = Histogram(
            "payguard_decision_latency_us",
            "Decision latency in microseconds.",
            buckets=LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self.deferred = not os.environ.get(MULTIPROC_ENV)
        """Decisions, latencies and rule hits wait in `_unsent*` until `send` (one process alone:
        nothing but `render` reads this registry); a worker sharing a directory sends
        each at once."""
        self._unsent: dict[tuple[str, str], int] = {}
        self._unsent_buckets = [0] * _BUCKET_COUNT
        self._unsent_sum = 0
        self._unsent_hits: dict[str, int] = {}
        """Rule id → hits since the last `send` (`hits`, when `deferred`)."""

    def observe(self, event_type: str, action: str, latency_us: int) -> None:
        key = (event_type, action)
        self.decisions[key] = self.decisions.get(key, 0) + 1
        if self.deferred:
            unsent = self._unsent
            unsent[key] = unsent.get(key, 0) + 1
            # the bucket prometheus_client's `observe` finds: the first bound >= latency
            self._unsent_buckets[bisect_left(LATENCY_BUCKETS_US, latency_us)] += 1
            self._unsent_sum += latency_us
            return
        self._series(key).inc()
        self._latency.observe(latency_us)

    def _series(self, key: tuple[str, str]) -> Any:
        series = self._decision_series.get(key)
        if series is None:
            series = self._decision_series[key] = self._decisions.labels(*key)
        return series

    def send(self) -> None:
        """Hand the decisions and latencies `observe` deferred to prometheus_client: as
        many increments and observations as one at a time would have made (the bucket
        counts and the sum through the histogram's own values, which `observe` adds to;
        the sum is of integers, exact in a float below 2**53 µs)."""
        if self._unsent:
            for key, count in self._unsent.items():
                self._series(key).inc(count)
            self._unsent = {}
        if self._unsent_hits:  # in first-hit order: the text lists series as created
            for rule, count in self._unsent_hits.items():
                self._rule_hit_series_of(rule).inc(count)
            self._unsent_hits = {}
        if any(self._unsent_buckets):
            latency: Any = self._latency
            for value, count in zip(latency._buckets, self._unsent_buckets, strict=True):
                if count:
                    value.inc(count)
            latency._sum.inc(self._unsent_sum)
            self._unsent_buckets = [0] * _BUCKET_COUNT
            self._unsent_sum = 0

    def hits(self, rules: Iterable[str]) -> None:
        """Count the rules that fired in one decision (handed to prometheus_client at
        `send` when `deferred`, as decisions are)."""
        counted = self.rule_hits
        if self.deferred:
            unsent = self._unsent_hits
            for rule in rules:
                counted[rule] = counted.get(rule, 0) + 1
                unsent[rule] = unsent.get(rule, 0) + 1
            return
        for rule in rules:
            counted[rule] = counted.get(rule, 0) + 1
            self._rule_hit_series_of(rule).inc()

    def _rule_hit_series_of(self, rule: str) -> Any:
        series = self._rule_hit_series.get(rule)
        if series is None:
            series = self._rule_hit_series[rule] = self._rule_hits.labels(rule)
        return series

    def rule_error(self, rule: str, error: str) -> None:
        """Count one failed evaluation of `rule` (its error class)."""
        key = (rule, error)
        self.rule_errors[key] = self.rule_errors.get(key, 0) + 1
        self._rule_errors.labels(rule, error).inc()

    def render(self, gauges: dict[str, float]) -> str:
        """The Prometheus text: every worker's counters and histograms summed when they
        share a directory, else this engine's; then the answering process's gauges."""
        self.send()
        shared = os.environ.get(MULTIPROC_ENV)
        if shared:
            registry = CollectorRegistry()
            _multiprocess.MultiProcessCollector(registry, path=shared)  # type: ignore[no-untyped-call]
        else:
            registry = self.registry
        text = generate_latest(registry).decode()
        if gauges:
            text += generate_latest(_Gauges(gauges)).decode()
        return text


class _Gauges(Collector):
    """Readings of this process at the scrape, as Prometheus gauges."""

    def __init__(self, readings: dict[str, float]) -> None:
        self.readings = readings

    def collect(self) -> Iterator[Metric]:
        for name, reading in sorted(self.readings.items()):
            yield GaugeMetricFamily(name, name.replace("_", " "), value=reading)


def share_across_workers(directory: Path) -> None:
    """Make metrics created from now on (in this process and the workers it starts)
    keep their values in `directory`, emptied first: a server's parent calls it once,
    before its workers build their engines. prometheus_client picks its value class when
    it is imported; it is picked again here, for a parent that imported it already."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    _values.ValueClass = _values.get_value_class()  # type: ignore[no-untyped-call]


def worker_exited(pid: int) -> None:
    """Tell the shared directory a worker is gone (the server's parent calls it): its
    live gauges leave; its counters and histograms stay in the totals."""
    if os.environ.get(MULTIPROC_ENV):
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class RuleErrorLog:
    """Counts failing rules in `Metrics` and logs each rule at most once per interval.

    A rule that raises usually raises for every event of a kind, so logging each one
    would flood the log exactly when it is most read; instead the first failure of a rule
    is logged at once, later ones are counted, and the next line (after `interval_s`)
    says how many were suppressed. Lines name the rule and the error class, nothing from
    the event. The clock is monotonic process time, not event time, which a client sets."""

    def __init__(
        self,
        metrics: Metrics,
        log: logging.Logger,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.log = log
        self.interval_s = interval_s
        self.clock = clock
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def report(self, errors: Iterable[tuple[str, str, str]]) -> None:
        """Count and maybe log (rule id, error class, on_error) failures of one decision."""
        now = self.clock()
        for rule, error, on_error in errors:
            self.metrics.rule_error(rule, error)
            last = self._last_logged.get(rule)
            if last is not None and now - last < self.interval_s:
                self._suppressed[rule] = self._suppressed.get(rule, 0) + 1
                continue
            self._last_logged[rule] = now
            suppressed = self._suppressed.pop(rule, 0)
            self.log.warning(
                "rule %s failed: %s (%s); %d more failures since the last report",
                rule,
                error,
                on_error,
                suppressed,
            )
