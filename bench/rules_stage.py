"""The rules stage alone: the engine's generated `run_rules`, timed on real inputs.

Replaying a whole stream (bench/replay_speed.py) measures JSON, features, graph, SQLite and
the rules together, and on a shared machine its noise hides a change of a few nanoseconds
in the rules. This decides the first N events of a stream on an in-memory engine while
capturing each (features, event) pair handed to an event type's `run_rules`, then re-runs
those calls alone: µs per event, median and minimum of the passes. Run it from two
checkouts on the same file to compare them (docs/benchmarks.md, "rules sandbox").

    PYTHONPATH=src .venv/bin/python bench/rules_stage.py EVENTS.jsonl [N_EVENTS] [PASSES]
"""

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from payguard.config import load_settings
from payguard.engine import DuplicateEventError, Engine, compile_ruleset
from payguard.features import FeatureState, load_catalog

DEFAULT_RULESET = Path(__file__).resolve().parents[1] / "rules" / "default.yaml"


def run(events_path: Path, n_events: int = 40_000, passes: int = 21) -> dict[str, float]:
    settings = load_settings(env={})
    features = FeatureState(load_catalog(settings.features), settings.utc_offset)
    ruleset = compile_ruleset(DEFAULT_RULESET.read_text(), features)
    engine = Engine.in_memory(settings, features, ruleset)
    calls = _capture(engine, events_path, n_events)
    timings = []
    for _ in range(passes):
        start = time.perf_counter_ns()
        for run_rules, values, event in calls:
            run_rules(values, event)
        timings.append((time.perf_counter_ns() - start) / len(calls) / 1_000)
    return {
        "events": float(len(calls)),
        "median_us": statistics.median(timings),
        "min_us": min(timings),
    }


def _capture(engine: Engine, events_path: Path, n_events: int) -> list[tuple[Any, Any, Any]]:
    """Decide the first `n_events` events, recording every call of a `run_rules`."""
    calls: list[tuple[Any, Any, Any]] = []
    plan_for = engine._plan_for

    def recording_plan(event_type: str) -> Any:
        plan = plan_for(event_type)
        inner = plan.run_rules

        def record(values: dict[str, Any], event: Any) -> Any:
            calls.append((inner, dict(values), event))
            return inner(values, event)

        plan = msgspec.structs.replace(plan, run_rules=record)
        engine._plans[event_type] = plan
        return plan

    engine._plan_for = recording_plan  # type: ignore[method-assign]
    with events_path.open("rb") as lines:
        for number, line in enumerate(lines):
            if number == n_events:
                break
            try:
                engine.process(engine.decoder.decode(line))
            except (ValueError, DuplicateEventError):  # EventError is a ValueError
                continue
    return calls


if __name__ == "__main__":
    path = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 40_000
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 21
    print(run(path, count, repeat))
