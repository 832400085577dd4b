"""What ran when a request was late (bench.pause_causes, issue 16): injected beside the
collector and lag records of sitecustomize, into `_rec`, for any code tree (a stage the
tree does not have is skipped and named in `_rec["untraced"]`).

- `commits`: every event-log commit on the writer thread (start, seconds, rows);
- `slow_calls`: every call of an engine stage over 4 ms (time, stage, seconds);
- `stacks`: the loop thread's stack, sampled by a watchdog thread whenever
  sitecustomize's lag task (every 10 ms) has not run for 30 ms (a sample needs the GIL,
  so it lands where the loop thread lets go of it: a long C call shows as the first
  Python line after it).
"""

import importlib
import os
import sys
import threading
import time
import traceback
from typing import Any

SLOW_CALL_S = 0.004
STALE_TICK_S = 0.03
MAX_RECORDS = 5_000
STAGES = (
    ("payguard.engine.core", "Engine", "_decision"),
    ("payguard.engine.core", "Engine", "_file"),
    ("payguard.engine.core", "Engine", "after_commit"),
    ("payguard.features.state", "FeatureState", "update"),
    ("payguard.features.state", "FeatureState", "thaw_for"),
    ("payguard.features.state", "FeatureState", "sweep_step"),
    ("payguard.graph.variables", "GraphFeatures", "update"),
    ("payguard.chains.matcher", "ChainMatcher", "update"),
    ("payguard.store.sqlite", "SQLiteRecorder", "lookup"),
)


def install(rec: dict[str, Any], tick: list[float]) -> None:
    """`tick[0]`: when the loop last ran sitecustomize's lag task (perf_counter)."""
    rec.update(commits=[], slow_calls=[], stacks=[], untraced=[])
    _trace_commits(rec)
    for module, owner, name in STAGES:
        _trace_stage(rec, module, owner, name)
    _watch_the_loop(rec, tick)


def _trace_commits(rec: dict[str, Any]) -> None:
    try:
        recorder = importlib.import_module("payguard.store.sqlite").SQLiteRecorder
        commit = recorder.commit_sealed
    except (ImportError, AttributeError):
        rec["untraced"].append("commit_sealed")
        return

    def timed(self: Any, sealed: Any) -> None:
        started, clock = time.time(), time.perf_counter()
        try:
            commit(self, sealed)
        finally:
            rows = len(getattr(sealed, "rows", ()))
            rec["commits"].append((started, round(time.perf_counter() - clock, 5), rows))

    recorder.commit_sealed = timed


def _trace_stage(rec: dict[str, Any], module: str, owner: str, name: str) -> None:
    try:
        cls = getattr(importlib.import_module(module), owner)
        original = getattr(cls, name)
    except (ImportError, AttributeError):
        rec["untraced"].append(f"{owner}.{name}")
        return
    label = f"{owner}.{name}"

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        clock = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            took = time.perf_counter() - clock
            if took > SLOW_CALL_S and len(rec["slow_calls"]) < MAX_RECORDS:
                rec["slow_calls"].append((time.time(), label, round(took, 4)))

    setattr(cls, name, timed)


def _watch_the_loop(rec: dict[str, Any], tick: list[float]) -> None:
    loop_thread = threading.main_thread().ident

    def watchdog() -> None:
        while True:
            time.sleep(0.01)
            since = time.perf_counter() - tick[0]
            frame = sys._current_frames().get(loop_thread)
            if since > STALE_TICK_S and frame is not None and len(rec["stacks"]) < MAX_RECORDS:
                lines = traceback.extract_stack(frame)[-10:]
                where = [f"{os.path.basename(f.filename)}:{f.lineno}:{f.name}" for f in lines]
                rec["stacks"].append((time.time(), round(since, 3), where))

    threading.Thread(target=watchdog, name="pause-watchdog", daemon=True).start()
