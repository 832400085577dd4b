"""HTTP latency of stateless workers on Redis at a fixed offered load, beside the embedded
server (issue 17: "HTTP p50/p99 at a fixed offered load of 2,000 req/s").

One simulated stream (seed 7, the stream of bench.state_redis; outcome events left out:
a worker's outcome book is its own) is posted open loop by bench.open_loop's client at
`--rate` requests/s: request i is due at t0 + i/rate whatever the answers before it, and
its latency is measured from that scheduled time (no coordinated omission). Each setup
starts from an empty state:

- `embedded`: `payguard serve` (in-process state, SQLite log);
- `single1`, `single2`: `payguard serve --workers 1|2 --state redis://127.0.0.1:6379/7`;
- `cluster1`, `cluster2`: the same on the Redis Cluster (127.0.0.1:7000-7002).

Workers record into the shared Postgres log (`PAYGUARD_LOG_DSN`, a schema of their own)
unless `--log sqlite` (a SQLite log per worker). Graph and chains are off in every setup
(the default ruleset minus the rules that read them, as bench.state_redis). Besides the
client's percentiles: the server's CPU (supervisor and workers) and Redis's CPU per
request, over the loaded stretch (and every `postgres` process's, for workers on the
Postgres log: other clients of that server are in it too).

    python -m bench.workers_http [--rate 2000] [--events 20000] [--setups embedded,single1,…]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.open_loop import _free_port, _post, post_event, summarize
from bench.replay_speed import without_graph_chains
from bench.state_redis import _info
from bench.warm_state import TOKEN_KEY
from payguard.events import OUTCOME_TYPES
from payguard.sim import simulate
from payguard.sim.config import SimConfig
from payguard.state.redis import connect

REPO = Path(__file__).resolve().parents[1]
SINGLE = os.environ.get("PAYGUARD_BENCH_REDIS_DB", "redis://127.0.0.1:6379/7")
CLUSTER = os.environ.get("PAYGUARD_BENCH_CLUSTER", "redis+cluster://127.0.0.1:7000")
PG_DSN = os.environ.get("PAYGUARD_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test")
SETUPS = {
    "embedded": (None, 1),
    "single1": (SINGLE, 1),
    "single2": (SINGLE, 2),
    "cluster1": (CLUSTER, 1),
    "cluster2": (CLUSTER, 2),
}
FUTURE_MS = 20 * 365 * 86_400_000


def stream(n_events: int, days: int = 10) -> list[dict[str, Any]]:
    """The simulated stream of bench.state_redis, without outcome events."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        simulate(
            SimConfig(users=max(60, n_events * 10 // (18 * days)), days=days, seed=7),
            path,
            Path(tmp) / "l",
        )
        lines = path.read_bytes().splitlines()[:n_events]
    events = [json.loads(line) for line in lines]
    return [e for e in events if e["type"] not in OUTCOME_TYPES]


def raw_requests(events: list[dict[str, Any]], tag: str, authorization: bytes) -> list[bytes]:
    """POST /v1/events requests, ids made unique to this run."""
    out = []
    for body in events:
        body = dict(body, event_id=f"{tag}-{body['event_id']}")
        if "ref_event_id" in body:
            body["ref_event_id"] = f"{tag}-{body['ref_event_id']}"
        out.append(post_event(body, authorization))
    return out


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its live descendants (utime + stime)."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


def _postgres_cpu_s() -> float:
    """CPU seconds of every `postgres` process now alive (other clients' work included)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _redis_cpu_s(url: str | None) -> float:
    if url is None:
        return 0.0
    client = connect(url)
    info: Any = _info(client, "cpu")
    client.close()
    nodes = info.values() if "used_cpu_user" not in info else [info]
    return sum(float(n["used_cpu_user"]) + float(n["used_cpu_sys"]) for n in nodes)


def _clean(url: str) -> None:
    client = connect(url)
    keys = list(client.scan_iter(match="pg:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()


def run_setup(
    name: str, events: list[dict[str, Any]], rate: int, log: str, tmp: Path
) -> dict[str, Any]:
    url, workers = SETUPS[name]
    data = tmp / name / "data"
    data.mkdir(parents=True)
    ruleset = tmp / name / "rules.yaml"
    ruleset.write_text(without_graph_chains((REPO / "rules" / "default.yaml").read_text()))
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(REPO / "src"), os.environ.get("PAYGUARD_BENCH_PATH")])
        ),
        PAYGUARD_DATA_DIR=str(data),
        PAYGUARD_RULESET=str(ruleset),
        PAYGUARD_TOKEN_KEY=TOKEN_KEY,
        PAYGUARD_LOG_LEVEL="WARNING",
        PAYGUARD_RATE_LIMIT_PER_S="1000000",
        PAYGUARD_RATE_LIMIT_BURST="1000000",
        PAYGUARD_MAX_CONCURRENCY="100000",
        PAYGUARD_MAX_FUTURE_MS=str(FUTURE_MS),
        PAYGUARD_GRAPH_CHAINS="0",
    )
    schema = None
    if url is not None and log == "pg":
        import psycopg

        schema = f"bench_http_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
        env["PAYGUARD_LOG_DSN"] = f"{PG_DSN} options='-c search_path={schema}'"
    key = (
        subprocess.run(
            [sys.executable, "-m", "payguard.cli", "keys", "create", "--scope=events:write"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    authorization = f"Authorization: Bearer {key}\r\n".encode()
    if url is not None:
        _clean(url)
    port = _free_port()
    command = [sys.executable, "-m", "payguard.cli", "serve", f"--port={port}"]
    if url is not None:
        command += ["--workers", str(workers), "--state", url]
    server_log = (tmp / name / "server.log").open("wb")
    proc = subprocess.Popen(command, env=env, stdout=server_log, stderr=subprocess.STDOUT, cwd=tmp)
    tag = f"{name}{uuid.uuid4().hex[:6]}"
    try:
        probes = raw_requests([dict(events[0], type="login")], f"probe{tag}", authorization)
        started = time.monotonic()
        while _post(port, probes[0]) != 200:
            if proc.poll() is not None or time.monotonic() - started > 300:
                raise RuntimeError((tmp / name / "server.log").read_text()[-3000:])
            time.sleep(0.2)
        time.sleep(2.0 if workers > 1 else 0.5)  # every worker built
        reqs = raw_requests(events, tag, authorization)
        source, target = tmp / name / "requests.json", tmp / name / "result.json"
        source.write_text(json.dumps([r.decode("latin-1") for r in reqs]))
        paths = [str(source), str(target)]
        cpu0, redis0, pg0 = _tree_cpu_s(proc.pid), _redis_cpu_s(url), _postgres_cpu_s()
        subprocess.run(
            [sys.executable, "-m", "bench.open_loop", "client", str(port), str(rate), *paths],
            check=True,
            cwd=REPO,
        )
        cpu1, redis1, pg1 = _tree_cpu_s(proc.pid), _redis_cpu_s(url), _postgres_cpu_s()
        row: dict[str, Any] = {"setup": name, "log": log if url else "sqlite"}
        result = json.loads(target.read_text())
        row.update(summarize(result, rate))
        codes = [int(c) for c in result["status"] if c and c != 200]
        row["error_codes"] = {str(c): codes.count(c) for c in sorted(set(codes))}
        n = max(1.0, row.get("answered", 0.0))
        row["server_cpu_us_per_request"] = round((cpu1 - cpu0) / n * 1e6)
        if url is not None:
            row["redis_cpu_us_per_request"] = round((redis1 - redis0) / n * 1e6)
            row["postgres_cpu_us_per_request"] = round((pg1 - pg0) / n * 1e6)
        row["loadavg"] = round(os.getloadavg()[0], 1)
        return row
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if url is not None:
            _clean(url)
        if schema is not None:
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def table(rate: int = 2_000, n_events: int = 20_000) -> dict[str, float]:
    """`make bench`: every setup at `rate`, flattened for the table."""
    events = stream(n_events)
    flat: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETUPS:
            row = run_setup(name, events, rate, "pg", Path(tmp))
            for key in ("achieved", "p50_ms", "p99_ms", "server_cpu_us_per_request"):
                flat[f"{name} {key}"] = float(row[key])
    return flat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--setups", default=",".join(SETUPS))
    parser.add_argument("--log", choices=("pg", "sqlite"), default="pg")
    args = parser.parse_args()
    events = stream(args.events)
    print(f"{len(events)} requests at {args.rate}/s, load average {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.setups.split(","):
            print(json.dumps(run_setup(name, events, args.rate, args.log, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
