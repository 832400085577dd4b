"""Run every benchmark and print one table; `make bench` calls this.

Results are medians or single long runs as each module says; record them with the machine
and the date in docs/benchmarks.md. No timing threshold is ever asserted in tests.
"""

import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import (
    auth_speed,
    cases_speed,
    console_pages,
    failover,
    graph_chains,
    http_load,
    memory,
    open_loop,
    pauses,
    recorder_commits,
    replay_speed,
    sim_speed,
    webhooks_speed,
    worker_floor,
    workers_http,
)

BENCHES: dict[str, Callable[[], dict[str, Any]]] = {
    "replay (in-process, SQLite, default ruleset)": replay_speed.run,
    "http (POST /v1/events on loopback)": http_load.run,
    "open loop on warm state (20k customers × 90 days; latency from the scheduled send)": (
        open_loop.table
    ),
    "one worker's floor (20k × 90 days: HTTP alone, engine alone; µs)": worker_floor.table,
    "pauses on the decision path (20k × 90 days: collector, snapshots; ms)": pauses.flat,
    "memory per account and start-up (20k customers × 30 / 90 days)": memory.run,
    "feature state memory": memory.feature_state,
    "simulator (~1M events)": sim_speed.run,
    "graph + chains (µs/event, 2,000 users × 14 days)": graph_chains.run,
    "webhooks (notifier on the decision path, outbox, delivery)": webhooks_speed.run,
    "auth (API key check + rate limit per request, µs)": auth_speed.run,
    "cases (100,000 cases: queue and case pages, ms; list lookup, µs)": cases_speed.run,
    "console pages with 100,000 cases (ms per request)": console_pages.run,
    "recorder commits (SQLite FULL vs Postgres; per batch size)": recorder_commits.run,
    "failover (2 workers on Redis Cluster: kill -9 a worker, restart a node; s)": failover.run,
    "workers on Redis, HTTP at 2,000 req/s (embedded beside 1 and 2 workers)": (workers_http.table),
}


def main(selected: list[str]) -> None:
    console = Console()
    results: dict[str, dict[str, Any]] = {}
    for name, bench in BENCHES.items():
        if selected and not any(s in name for s in selected):
            continue
        console.print(f"[bold]running[/bold] {name} …")
        started = time.perf_counter()
        results[name] = bench()
        console.print(f"  done in {time.perf_counter() - started:.0f} s")
    table = Table(title=f"payguard benchmarks — {platform.python_version()}, {platform.machine()}")
    table.add_column("benchmark")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, values in results.items():
        for metric, value in values.items():
            shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
            table.add_row(name, metric, shown)
    console.print(table)
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
