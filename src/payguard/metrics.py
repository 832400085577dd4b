"""Process-local counters and a latency histogram, rendered as Prometheus text."""

from bisect import bisect_left

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
        self.latency_counts = [0] * (len(LATENCY_BUCKETS_US) + 1)
        self.latency_sum_us = 0

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
        ):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {value}"]
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
