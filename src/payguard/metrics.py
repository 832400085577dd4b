"""Process-local counters and a latency histogram, rendered as Prometheus text."""

import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable

LATENCY_BUCKETS_US = (50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000)


class Metrics:
    def __init__(self) -> None:
        self.decisions: dict[tuple[str, str], int] = {}
        self.invalid_events = 0
        self.duplicates = 0
        self.conflicts = 0
        self.future_events = 0
        """Events refused for a `ts` too far ahead of the server clock (also invalid)."""
        self.storage_errors = 0
        """Commits of the event log that failed (each request answered 503)."""
        self.group_commits = 0
        self.group_committed_events = 0
        """Group commits of the HTTP path and the events they held (events per fsync)."""
        self.latency_counts = [0] * (len(LATENCY_BUCKETS_US) + 1)
        self.latency_sum_us = 0
        self.rule_errors: dict[tuple[str, str], int] = {}
        """(rule id, error class) → evaluations that failed (`payguard_rule_errors_total`)."""

    def observe(self, event_type: str, action: str, latency_us: int) -> None:
        key = (event_type, action)
        self.decisions[key] = self.decisions.get(key, 0) + 1
        self.latency_counts[bisect_left(LATENCY_BUCKETS_US, latency_us)] += 1
        self.latency_sum_us += latency_us

    def render(self, gauges: dict[str, float]) -> str:
        lines = [
            "# HELP payguard_decisions_total Decisions made, by event type and action.",
            "# TYPE payguard_decisions_total counter",
        ]
        for (event_type, action), count in sorted(self.decisions.items()):
            lines.append(
                f'payguard_decisions_total{{type="{event_type}",action="{action}"}} {count}'
            )
        for name, value, help_text in (
            ("payguard_invalid_events_total", self.invalid_events, "Events rejected at the edge."),
            ("payguard_duplicate_events_total", self.duplicates, "Idempotent repeats answered."),
            ("payguard_conflicting_events_total", self.conflicts, "Reused ids, other payload."),
            ("payguard_future_events_total", self.future_events, "Refused: ts ahead of clock."),
            ("payguard_storage_errors_total", self.storage_errors, "Failed event log commits."),
            ("payguard_group_commits_total", self.group_commits, "Group commits of events."),
            (
                "payguard_group_committed_events_total",
                self.group_committed_events,
                "Events made durable by group commits.",
            ),
        ):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {value}"]
        lines += [
            "# HELP payguard_rule_errors_total Rule evaluations that failed, by rule and error.",
            "# TYPE payguard_rule_errors_total counter",
        ]
        for (rule, error), count in sorted(self.rule_errors.items()):
            labels = f'rule="{_label(rule)}",error="{_label(error)}"'
            lines.append(f"payguard_rule_errors_total{{{labels}}} {count}")
        lines += [
            "# HELP payguard_decision_latency_us Decision latency in microseconds.",
            "# TYPE payguard_decision_latency_us histogram",
        ]
        cumulative = 0
        for bound, count in zip(LATENCY_BUCKETS_US, self.latency_counts, strict=False):
            cumulative += count
            lines.append(f'payguard_decision_latency_us_bucket{{le="{bound}"}} {cumulative}')
        total = sum(self.latency_counts)
        lines.append(f'payguard_decision_latency_us_bucket{{le="+Inf"}} {total}')
        lines.append(f"payguard_decision_latency_us_sum {self.latency_sum_us}")
        lines.append(f"payguard_decision_latency_us_count {total}")
        for gauge, reading in sorted(gauges.items()):
            lines += [f"# TYPE {gauge} gauge", f"{gauge} {reading:g}"]
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    """A Prometheus label value: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


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
        counts = self.metrics.rule_errors
        now = self.clock()
        for rule, error, on_error in errors:
            counts[(rule, error)] = counts.get((rule, error), 0) + 1
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
