"""Replay throughput of the embedded engine: events/s and decision latency on one core.

`run()` replays a deterministic synthetic stream (or a given JSON Lines file) through
`Engine.open` on a fresh data directory with the default ruleset and feature catalog, using
the same loop as `payguard replay` minus the progress bar, so the figure matches the CLI's.
It replays three times and reports the median run (and the spread), with its events per
CPU second beside events per second: on a shared machine the wall clock also counts the
time other processes held the core.

Beside the decision latency (`_decide` alone, `p50_us`/`p99_us`: about 42 % of the real
cost, issue 16) it reports the whole event, decode to output line with the commits
shared out over the events they committed (`event_*_us`), and the mean whole-event cost
in the first and the last tenth of the stream (`cost_growth_pct`: on a long history,
whether the per-event cost grows as the windows fill).

It also measures what the identity graph and the chain patterns cost: each run is paired
with one with them off (`PAYGUARD_GRAPH_CHAINS=0`, and the default ruleset without its
`chains:` section and the rules that read `graph_*` or `chain_*` features), the two
interleaved so that a noisy neighbour on a shared machine hits both alike; the medians of
each and the slowdown are reported.

    .venv/bin/python bench/replay_speed.py [EVENTS.jsonl] [N_EVENTS] [RUNS]
    .venv/bin/python -m bench.replay_speed --whole-event EVENTS.jsonl   # one run, on only
"""

import gc
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import yaml

from payguard.config import load_settings
from payguard.engine import DuplicateEventError, Engine, batch_gc
from payguard.events import EventError
from payguard.sim.population import luhn_complete as _luhn

USERS = 3_000
MERCHANTS = 500
PAYEES = 2_000
CATEGORIES = ("ecommerce", "travel", "food", "gift_card")
TYPES = ("payment", "login", "otp_send", "transfer", "card_bind")
TYPE_WEIGHTS = (45, 27, 9, 9, 9)
DEFAULT_RULESET = Path(__file__).resolve().parents[1] / "rules" / "default.yaml"
_GRAPH_OR_CHAIN = re.compile(r"\b(graph|chain)_[a-z0-9_]+")


def generate(path: Path, n_events: int, seed: int = 7) -> None:
    """Write `n_events` contract-v1 events like /tmp/smoke.jsonl, in time order: logins,
    payments with cards and merchants, card binds, transfers and OTP sends for 3,000 users."""
    rng = random.Random(seed)
    cards = [_luhn(f"622202{rng.randrange(10**9):09d}") for _ in range(USERS)]
    devices = [[f"d{rng.randrange(7_000)}" for _ in range(rng.randint(1, 4))] for _ in range(USERS)]
    encode = msgspec.json.encode
    ts = 1_700_000_000_000
    with path.open("wb") as fh:
        for i in range(n_events):
            ts += rng.randrange(20_000)
            u = rng.randrange(USERS)
            kind = rng.choices(TYPES, TYPE_WEIGHTS)[0]
            body: dict[str, object] = {
                "event_id": f"e{i}",
                "type": kind,
                "ts": ts,
                "user_id": f"u{u}",
                "device_id": rng.choice(devices[u]),
                "ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                "channel": "app",
            }
            if kind == "login":
                body["success"] = rng.random() < 0.9
            elif kind in ("payment", "transfer"):
                body["amount"] = f"{rng.randrange(100, 500_000) / 100:.2f}"
                body["card"] = {"number": cards[u]}
                m = rng.randrange(MERCHANTS)
                body["merchant"] = {"id": f"m{m}", "category": CATEGORIES[m % len(CATEGORIES)]}
                if kind == "transfer":
                    body["payee"] = {"id": f"p{rng.randrange(PAYEES)}"}
            elif kind == "card_bind":
                body["card"] = {"number": cards[u]}
            fh.write(encode(body) + b"\n")


def replay(engine: Engine, events_path: Path, output: Path) -> tuple[list[int], list[float]]:
    """The `payguard replay` loop without the progress bar; returns the decision
    latencies (`_decide` alone, µs) and the whole-event costs (µs): decode → decide →
    record → file → output line, with each commit's time (flush and the young
    collection) shared out evenly over the events it committed."""
    encode = msgspec.json.Encoder().encode
    decode = engine.decoder.decode
    process = engine.process
    flush_every = engine.settings.flush_every
    clock = time.perf_counter_ns
    latencies: list[int] = []
    costs: list[float] = []
    batch_start = 0
    done = 0
    with batch_gc(), events_path.open("rb") as lines, output.open("wb") as sink:
        for line in lines:
            if not line.strip():
                continue
            started = clock()
            try:
                decision, _ = process(decode(line))
            except (EventError, DuplicateEventError):
                continue
            sink.write(encode(decision.public(False)) + b"\n")
            costs.append((clock() - started) / 1_000)
            latencies.append(decision.latency_us)
            done += 1
            if done % flush_every == 0:
                committed = clock()
                engine.flush()
                gc.collect(1)  # young generations only: see batch_gc
                _amortise(costs, batch_start, (clock() - committed) / 1_000)
                batch_start = done
    return latencies, costs


def _amortise(costs: list[float], start: int, total_us: float) -> None:
    """Share a commit's time evenly over the events `costs[start:]` it committed."""
    share = total_us / max(1, len(costs) - start)
    for i in range(start, len(costs)):
        costs[i] += share


def cost_by_tenth(costs: list[float]) -> list[float]:
    """Mean whole-event cost (µs) in each tenth of the stream, in order: flat when the
    per-event cost does not grow as the windows fill."""
    n = len(costs)
    tenths = [costs[n * k // 10 : n * (k + 1) // 10] for k in range(10)]
    return [round(sum(t) / len(t), 1) if t else 0.0 for t in tenths]


def run(
    events_path: Path | None = None, n_events: int = 100_000, runs: int = 3
) -> dict[str, float]:
    """Replay `runs` times with graph and chains on and `runs` times off, interleaved,
    each on a fresh temporary store. With them on: the median run's events/s and p50/p99
    latency (µs), the slowest and fastest run's events/s, rules and features; with them
    off: the median's events/s and latency, and the slowdown of on against off (%).

    Shared machines vary by ±10% from run to run, so one run says little on its own."""
    with tempfile.TemporaryDirectory(prefix="payguard-bench-") as tmp:
        root = Path(tmp)
        if events_path is None:
            events_path = root / "events.jsonl"
            generate(events_path, n_events)
        off_ruleset = root / "without-graph-chains.yaml"
        off_ruleset.write_text(without_graph_chains(DEFAULT_RULESET.read_text()))
        on: list[dict[str, float]] = []
        off: list[dict[str, float]] = []
        for i in range(runs):
            on.append(_run_once(events_path, root / f"on{i}", DEFAULT_RULESET, True))
            off.append(_run_once(events_path, root / f"off{i}", off_ruleset, False))
    median, median_off = _median(on), _median(off)
    return {
        **median,
        "runs": float(runs),
        "events_per_s_min": min(r["events_per_s"] for r in on),
        "events_per_s_max": max(r["events_per_s"] for r in on),
        "off_events_per_s": median_off["events_per_s"],
        "off_events_per_cpu_s": median_off["events_per_cpu_s"],
        "off_p50_us": median_off["p50_us"],
        "off_p99_us": median_off["p99_us"],
        "off_event_mean_us": median_off["event_mean_us"],
        "off_rules": median_off["rules"],
        "graph_chains_slowdown_pct": round(
            100 * (1 - median["events_per_s"] / median_off["events_per_s"]), 1
        ),
    }


def whole_event(events_path: Path) -> dict[str, float]:
    """One replay of a file with the default ruleset, graph and chains on: throughput,
    decision latency and the whole-event cost by tenth of the stream (for long histories,
    where the question is whether the cost grows as the windows fill)."""
    with tempfile.TemporaryDirectory(prefix="payguard-bench-") as tmp:
        return _run_once(events_path, Path(tmp))


def without_graph_chains(text: str) -> str:
    """The ruleset without its `chains:` section and the rules that read graph or chain
    features: what the engine can run with `graph_chains` off."""
    doc: dict[str, Any] = yaml.safe_load(text)
    doc.pop("chains", None)
    doc["rules"] = [r for r in doc["rules"] if not _GRAPH_OR_CHAIN.search(r["when"])]
    return yaml.safe_dump(doc, sort_keys=False)


def _median(results: list[dict[str, float]]) -> dict[str, float]:
    return sorted(results, key=lambda r: r["events_per_s"])[len(results) // 2]


def _run_once(
    events_path: Path, root: Path, ruleset: Path = DEFAULT_RULESET, graph_chains: bool = True
) -> dict[str, float]:
    """One replay on a fresh store under `root`, timed from open to close."""
    settings = load_settings(
        env={
            "PAYGUARD_DATA_DIR": str(root / "data"),
            "PAYGUARD_RULESET": str(ruleset),
            "PAYGUARD_GRAPH_CHAINS": "1" if graph_chains else "0",
        }
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    engine = Engine.open(settings)
    try:
        latencies, costs = replay(engine, events_path, root / "decisions.jsonl")
    finally:
        engine.close()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    tenths = cost_by_tenth(costs)
    latencies.sort()
    costs.sort()
    n = len(latencies)
    return {
        "events": float(n),
        "events_per_s": round(n / elapsed, 1),
        "events_per_cpu_s": round(n / cpu, 1) if cpu > 0 else 0.0,
        "p50_us": float(latencies[n // 2]) if n else 0.0,
        "p99_us": float(latencies[min(n - 1, n * 99 // 100)]) if n else 0.0,
        "event_mean_us": round(sum(costs) / n, 1) if n else 0.0,
        "event_p50_us": round(costs[n // 2], 1) if n else 0.0,
        "event_p99_us": round(costs[min(n - 1, n * 99 // 100)], 1) if n else 0.0,
        "event_first_tenth_us": tenths[0],
        "event_last_tenth_us": tenths[-1],
        "cost_growth_pct": round(100 * (tenths[-1] / tenths[0] - 1), 1) if tenths[0] else 0.0,
        "rules": float(len(engine.ruleset.rules)),
        "features": float(len(engine.features.layout)),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--whole-event"]:
        print(whole_event(Path(sys.argv[2])))
        sys.exit()
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    print(run(path, count, repeat))
