"""CPU µs per event per 15-day segment, per event type and per part of the engine,
replaying a long history through `Engine.open` + `process` (the bench/replay_speed.py
loop), issue 16.

    PYTHONPATH=TREE/src python scripts/i16_growth/segments.py EVENTS.jsonl [--plain | --profile OUT]

Each event's `process` is timed with the thread's CPU clock, and inside it the feature
read, update and sweep, the graph, the chains and the event log's append (each method
wrapped on its instance); the commits (`flush` every `flush_every` events and the young
collection) are timed apart. Each wrapper reads the CPU clock twice (a system call here,
a few µs), so the parts inflate the whole: `--plain` times the whole event alone.
Segments count from the first payment's day; -1 holds the registrations before it, 5 the
few stragglers after day 90. `--profile OUT`: instead, cProfile (on the thread's CPU
clock) the first and the last segment (OUT.first.prof, OUT.last.prof). Prints one JSON object.
"""

import cProfile
import gc
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from payguard.config import load_settings
from payguard.engine import DuplicateEventError, Engine, batch_gc
from payguard.events import EventError
from payguard.types import DAY_MS

SEGMENT_DAYS = 15
PARTS = {
    "features_read": ("state", "snapshot"),
    "features_update": ("state", "apply"),
    "features_sweep": ("state", "sweep_step"),
    "graph": ("graph", "snapshot", "update"),
    "chains": ("chains", "read", "update", "evaluate"),
    "store": ("recorder", "append"),
    "rules": (None,),
}
"""Parts of an event's CPU timed apart (each method wrapped on its instance): the rest is
decoding, idempotency, decision building, rules and policy."""


def _wrap(engine: Engine, spent: dict[str, int]) -> None:
    clock = time.thread_time_ns
    for part, (owner, *names) in PARTS.items():
        if owner is None:
            continue
        target = getattr(engine, owner)
        if target is None:
            continue
        for name in names:
            inner = getattr(target, name)

            def timed(*args: object, _inner=inner, _part=part, **kwargs: object) -> object:
                t0 = clock()
                try:
                    return _inner(*args, **kwargs)
                finally:
                    spent[_part] += clock() - t0

            setattr(target, name, timed)


def main() -> None:
    events_path = Path(sys.argv[1])
    profile = sys.argv[3] if sys.argv[2:3] == ["--profile"] else None
    plain = sys.argv[2:3] == ["--plain"]
    ruleset = Path(__file__).resolve().parents[2] / "rules" / "default.yaml"
    with tempfile.TemporaryDirectory(prefix="payguard-i16-") as tmp:
        settings = load_settings(
            env={"PAYGUARD_DATA_DIR": f"{tmp}/data", "PAYGUARD_RULESET": str(ruleset)}
        )
        engine = Engine.open(settings)
        decode = engine.decoder.decode
        process = engine.process
        flush_every = engine.settings.flush_every
        cpu = time.thread_time_ns
        seg_ns: dict[int, int] = defaultdict(int)
        seg_n: dict[int, int] = defaultdict(int)
        seg_flush: dict[int, int] = defaultdict(int)
        type_ns: dict[tuple[int, str], int] = defaultdict(int)
        type_n: dict[tuple[int, str], int] = defaultdict(int)
        with events_path.open("rb") as lines:
            paid = (decode(line) for line in lines if b'"payment"' in line)
            first_day = next(e.ts for e in paid if e.type == "payment") // DAY_MS
        last_seg = None
        spent: dict[str, int] = defaultdict(int)
        seg_parts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        if not profile and not plain:
            _wrap(engine, spent)
        prof = cProfile.Profile(time.thread_time_ns, 1e-9) if profile else None
        done = 0
        total_cpu = time.process_time()
        with batch_gc(), events_path.open("rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                event = decode(line)
                day = event.ts // DAY_MS
                seg = min(5, max(-1, (day - first_day) // SEGMENT_DAYS))
                if seg != last_seg and last_seg is not None:
                    seg_parts[last_seg] = dict(spent)
                    spent.clear()
                if prof is not None and seg != last_seg:
                    if seg == 0:
                        prof.enable()
                    elif last_seg == 0:
                        prof.disable()
                        prof.dump_stats(f"{profile}.first.prof")
                        prof = cProfile.Profile(time.thread_time_ns, 1e-9)
                    if seg == 5:
                        prof.enable()
                last_seg = seg
                t0 = cpu()
                try:
                    process(event)
                except (EventError, DuplicateEventError):
                    continue
                dt = cpu() - t0
                seg_ns[seg] += dt
                seg_n[seg] += 1
                type_ns[seg, event.type] += dt
                type_n[seg, event.type] += 1
                done += 1
                if done % flush_every == 0:
                    t0 = cpu()
                    engine.flush()
                    gc.collect(1)
                    seg_flush[seg] += cpu() - t0
        seg_parts[last_seg] = dict(spent)
        if prof is not None:
            prof.disable()
            prof.dump_stats(f"{profile}.last.prof")
        engine.close()
        total_cpu = time.process_time() - total_cpu
    segs = sorted(seg_n)
    types = ("payment", "login", "otp_send", "otp_verify", "withdrawal", "transfer", "logout")
    out = {
        "events": done,
        "cpu_s": round(total_cpu, 2),
        "segments": [
            {
                "seg": s,
                "n": seg_n[s],
                "us_per_event": round(seg_ns[s] / seg_n[s] / 1000, 1),
                "flush_us_per_event": round(seg_flush[s] / seg_n[s] / 1000, 1),
                "parts_us_per_event": {
                    p: round(v / seg_n[s] / 1000, 1) for p, v in seg_parts[s].items()
                },
                "by_type": {
                    t: round(type_ns[s, t] / type_n[s, t] / 1000, 1) for t in types if type_n[s, t]
                },
                "mix": {t: type_n[s, t] for t in types},
            }
            for s in segs
        ],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
