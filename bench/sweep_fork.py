"""The feature sweep and the snapshot's fork, in process, on the warm state (issue 16).

A fresh process of a code tree opens a scratch copy of the warm data directory
(bench.warm_state; snapshot + tail, the collector frozen as the server leaves it) and
measures, with automatic GC off:

- `whole`: the feature state's whole sweep in one call (`FeatureState.sweep`: what the
  engine ran on the event loop every 50,000 events before it swept in slices), wall and
  CPU time; or `slices`: one round as the engine now runs it (`begin_sweep(25_000)`, then
  `sweep_step` until the round ends, no events between), the longest slice, p99, count
  and the total, then a second round (`2_`: its passes list their keys from the
  first's kept keys instead of copying each table's);
- the fork of the snapshot writer (`os.fork`, the child exits at once), three times on
  the heap as restored (4 KiB pages), then three times after `engine.heap.HugePages`
  collapsed it onto 2 MiB pages (the server does that in a thread once serving), with
  the process's RSS and page-table size (VmPTE).

    python -m bench.sweep_fork USERS DAYS [--compare PATH/TO/OTHER/src] [--reps N] [--slices-only]

A tree without `begin_sweep` (today's main) is measured with `whole` only.
"""

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from bench.warm_state import CURRENT, History, Tree, last_json_line, run_python

_PROBE = r"""
import gc, json, os, sys, time
from payguard.config import load_settings
from payguard.engine import Engine
from payguard.engine.heap import HugePages

mode = sys.argv[1]
engine = Engine.open(load_settings())
gc.disable()
features = engine.features
out = {"entities": [len(e) for e in features.entities],
       "watch": [len(x) for x in features.watch.last], "timelines": features.entity_count()}
if mode == "whole":
    w, c = time.perf_counter(), time.thread_time()
    features.sweep()
    out["whole_wall_ms"] = (time.perf_counter() - w) * 1e3
    out["whole_cpu_ms"] = (time.thread_time() - c) * 1e3
else:
    for r in ("", "2_"):  # the second round lists its keys from the first's (features.sweep)
        features.begin_sweep(25_000)
        walls, cpus = [], []
        while True:
            w, c = time.perf_counter(), time.thread_time()
            features.sweep_step()
            walls.append((time.perf_counter() - w) * 1e3)
            cpus.append((time.thread_time() - c) * 1e3)
            if features._sweep is None:
                break
        walls.sort(); cpus.sort()
        n = len(walls)
        out.update({f"{r}slices": n, f"{r}slice_max_wall_ms": walls[-1],
                    f"{r}slice_p99_wall_ms": walls[int(n * .99)],
                    f"{r}slice_max_cpu_ms": cpus[-1], f"{r}slice_p99_cpu_ms": cpus[int(n * .99)],
                    f"{r}slice_p999_cpu_ms": cpus[int(n * .999)],
                    f"{r}slices_over_2ms_cpu": sum(1 for x in cpus if x > 2),
                    f"{r}round_cpu_ms": sum(cpus), f"{r}round_wall_ms": sum(walls)})
if "noforks" in sys.argv:
    print(json.dumps(out)); sys.exit(0)

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024  # MiB
    return 0

def forks(label):
    gc.freeze()
    took = []
    for _ in range(3):
        t = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        took.append((time.perf_counter() - t) * 1e3)
        os.waitpid(pid, 0)
    out[f"fork_{label}_ms"] = sorted(took)
    out[f"rss_{label}_mib"] = status("VmRSS")
    out[f"pte_{label}_mib"] = status("VmPTE")

forks("4k")
t = time.perf_counter()
out["huge_mib"] = HugePages().promote() >> 20
out["collapse_s"] = time.perf_counter() - t
forks("huge")
print(json.dumps(out))
"""


def probe(tree: Tree, history: History, mode: str, *extra: str) -> dict[str, Any]:
    data_dir, tmp = history.scratch_copy(tree)
    try:
        out = run_python(tree, data_dir, _PROBE, mode, *extra, PAYGUARD_MAX_FUTURE_MS=str(10**13))
        return last_json_line(out)
    finally:
        tmp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("users", type=int)
    parser.add_argument("days", type=int)
    parser.add_argument("--compare", type=Path, default=None)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--slices-only", action="store_true", help="no whole sweep, no forks")
    args = parser.parse_args()
    history = History(args.users, args.days)
    history.build()
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.reps):
        if args.compare is not None:
            base = Tree("base", args.compare)
            runs.setdefault("base whole", []).append(probe(base, history, "whole"))
            print("base whole", json.dumps(runs["base whole"][-1]), flush=True)
        for mode in ("slices",) if args.slices_only else ("whole", "slices"):
            extra = ("noforks",) if args.slices_only else ()
            runs.setdefault(f"current {mode}", []).append(probe(CURRENT, history, mode, *extra))
            print(f"current {mode}", json.dumps(runs[f"current {mode}"][-1]), flush=True)
    medians = {
        label: {
            k: statistics.median(r[k] for r in rs)
            for k, v in rs[0].items()
            if isinstance(v, int | float)
        }
        for label, rs in runs.items()
    }
    print(json.dumps(medians, indent=2))


if __name__ == "__main__":
    main()
