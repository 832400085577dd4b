"""Memory per account and start-up time on warm state (20,000 customers × 30 / 90 days).

For each code tree (this one, and with `--compare` today's main, alternating), a fresh
process opens a copy of the warm data directory (bench.warm_state) and decides one new
event. Measured:

- `rss_per_account_b`: the process's resident memory after `Engine.open` and the first
  decision minus before it (the interpreter and imports), divided by the accounts in the
  history. RSS, not tracemalloc: it is what the machine pays, allocator overhead and
  all, and tracemalloc would slow a restore several times. It covers all decision state
  (features, graph, chains, idempotency memory), which is what grows with accounts;
- `open_s`: `Engine.open` (read and check the snapshot, restore, replay the tail) and
  `first_decision_s`: from the process's first line to the first decision recorded;
- `full_collection_s`: one `gc.collect()` after that, what a full collection of the
  collector's default policy costs in this state (with the state frozen: what is left);
- with `--log-alone`: the same with the snapshot removed (recovery replays the whole log).

`feature_state()` is the earlier in-process figure: bytes of feature state per entity
after replaying a simulated month of 3,000 users (tracemalloc, no SQLite).

    python -m bench.memory [--days 30,90] [--compare PATH/TO/OTHER/src] [--log-alone]
"""

import argparse
import json
import re
import statistics
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

from bench.warm_state import CURRENT, History, Tree, last_json_line, run_python
from payguard.config import load_settings
from payguard.engine import Engine, compile_ruleset
from payguard.events import Event
from payguard.features import FeatureState, load_catalog
from payguard.sim import SimConfig, simulate
from payguard.store import MemoryRecorder

ROOT = Path(__file__).resolve().parents[1]

_PROBE = r"""
import json, os, sys, time
started = time.perf_counter()
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
import msgspec
from payguard.config import load_settings
from payguard.engine import Engine
rss0 = rss()
opening = time.perf_counter()
engine = Engine.open(load_settings())
opened = time.perf_counter()
body = {"event_id": "memory-probe", "type": "login", "ts": int(sys.argv[1]),
        "user_id": "u-memory-probe", "device_id": "d-probe", "ip": "10.9.9.9",
        "channel": "app", "method": "password", "success": True}
engine.process(engine.decoder.decode(msgspec.json.encode(body)), commit=True)
decided = time.perf_counter()
import gc
rss_b = rss() - rss0
collecting = time.perf_counter()
gc.collect()  # what the default policy's next full collection costs in this state
print(json.dumps({"rss_b": rss_b, "open_s": opened - opening,
                  "first_decision_s": decided - started,
                  "full_collection_s": time.perf_counter() - collecting}))
engine.recorder.close()
"""


def accounts(history: History) -> int:
    """Distinct user ids in the history (cached beside it)."""
    cache = history.root / "accounts.txt"
    if not cache.exists():
        found: set[bytes] = set()
        pattern = re.compile(rb'"user_id":"([^"]+)"')
        with history.events.open("rb") as fh:
            for line in fh:
                match = pattern.search(line)
                if match:
                    found.add(match[1])
        cache.write_text(f"{len(found)}\n")
    return int(cache.read_text())


def probe(tree: Tree, history: History, *, log_alone: bool = False) -> dict[str, float]:
    """One fresh process of `tree` opening a copy of the warm state (module doc)."""
    data_dir, tmp = history.scratch_copy(tree)
    try:
        if log_alone:
            (data_dir / "state.snapshot").unlink()
        ts = int(history.info()["watermark_ms"]) + 1_000
        stdout = run_python(
            tree, data_dir, _PROBE, str(ts), PAYGUARD_MAX_FUTURE_MS=str(10 * 365 * 86_400_000)
        )
        figures = last_json_line(stdout)
    finally:
        tmp.cleanup()
    n = accounts(history)
    return {
        "accounts": float(n),
        "rss_mib": round(figures["rss_b"] / 2**20, 1),
        "rss_per_account_b": round(figures["rss_b"] / n),
        "open_s": round(figures["open_s"], 2),
        "first_decision_s": round(figures["first_decision_s"], 2),
        "full_collection_s": round(figures["full_collection_s"], 3),
    }


def warm(
    days: tuple[int, ...] = (30, 90),
    compare: Path | None = None,
    reps: int = 1,
    log_alone: bool = False,
) -> dict[str, Any]:
    """Per tree and history length, the medians over `reps` alternating runs."""
    trees = ([Tree("base", compare)] if compare is not None else []) + [CURRENT]
    out: dict[str, Any] = {}
    for d in days:
        history = History(20_000, d)
        history.build()
        runs: dict[str, list[dict[str, float]]] = {t.label: [] for t in trees}
        for _ in range(reps):
            for tree in trees:
                runs[tree.label].append(probe(tree, history))
                if log_alone:
                    alone = probe(tree, history, log_alone=True)
                    runs[tree.label][-1].update({f"log_alone_{k}": v for k, v in alone.items()})
        for label, results in runs.items():
            out[f"{label} {d}d"] = {k: statistics.median(r[k] for r in results) for k in results[0]}
    return out


def run() -> dict[str, float]:
    """`make bench`: this tree at 30 and 90 days, flattened for the table."""
    flat: dict[str, float] = {}
    for name, figures in warm().items():
        for key, value in figures.items():
            flat[f"{name} {key}"] = value
    return flat


def feature_state(users: int = 3_000, days: int = 30) -> dict[str, float]:
    """Bytes of feature state per entity after replaying a simulated month in memory."""
    with tempfile.TemporaryDirectory() as tmp:
        events_path, labels_path = Path(tmp) / "events.jsonl", Path(tmp) / "labels.jsonl"
        simulate(SimConfig(users=users, days=days, seed=3), events_path, labels_path)
        settings = load_settings(env={})
        features = FeatureState(load_catalog())
        ruleset = compile_ruleset((ROOT / "rules/default.yaml").read_text(), features)
        engine = Engine(
            features=features, ruleset=ruleset, recorder=MemoryRecorder(), settings=settings
        )
        events = [engine.decoder.decode(line) for line in events_path.open("rb")]
        engine.recorder = _ForgetfulRecorder()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for event in events:
            engine.process(event)
        features.sweep()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    state_bytes = after - before
    n_accounts = len({e.user_id for e in events if e.user_id})
    return {
        "events": len(events),
        "timelines": features.entity_count(),
        "accounts": n_accounts,
        "state_mib": state_bytes / 2**20,
        "bytes_per_timeline": state_bytes / max(features.entity_count(), 1),
        "bytes_per_account": state_bytes / max(n_accounts, 1),
    }


class _ForgetfulRecorder(MemoryRecorder):
    """Keeps only what feedback lookups need, so the measurement is feature state alone."""

    def append(self, event: Event, *record: Any, **fields: Any) -> int:
        self._by_id[event.event_id] = (event, None)  # type: ignore[assignment]
        return len(self._by_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", default="30,90")
    parser.add_argument("--compare", type=Path, default=None)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--log-alone", action="store_true")
    args = parser.parse_args()
    days = tuple(int(d) for d in args.days.split(","))
    print(json.dumps(warm(days, args.compare, args.reps, args.log_alone), indent=2))


if __name__ == "__main__":
    main()
