"""Pauses by cause on warm state: `payguard serve` of one code tree on a scratch copy of
the warm state (bench.warm_state), open-loop rates one after another (bench.open_loop's
client), then the causes: every collection while serving (wall and CPU time), the
event loop's longest lag, every fork's duration, from diagnostics injected into the
server (bench/pause_inject/sitecustomize.py), so that a tree without payguard_stall_*
gauges (today's main) is measured the same way; /metrics as the tree reports it.

Then, per rate, every stretch of late requests beside what ran then (`late`: the injected
bench/pause_inject/tracing.py times commits and engine stages and samples the loop's
stack when it stops ticking).

    python -m bench.pause_causes USERS DAYS RATES SECONDS SRC LABEL SNAPSHOT_EVERY [pin]
    e.g. python -m bench.pause_causes 20000 90 1000,2000 60 src i16-pauses 20000
"""

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.open_loop import Options, Server, load_run, requests
from bench.warm_state import History, Tree

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out" / "pause_causes"
OUT.mkdir(parents=True, exist_ok=True)
users, days = int(sys.argv[1]), int(sys.argv[2])
rates, seconds = [int(r) for r in sys.argv[3].split(",")], float(sys.argv[4])
src, which, snap_every = Path(sys.argv[5]).resolve(), sys.argv[6], int(sys.argv[7])
CONFIG = OUT / f"snapshot-every-{snap_every}.toml"
CONFIG.write_text(f"snapshot_every = {snap_every}\n")
(OUT / "dump").unlink(missing_ok=True)  # a crashed run's request would end the next early


@dataclass(frozen=True)
class DiagTree(Tree):
    def env(self, data_dir, **extra):
        env = super().env(data_dir, **extra)
        env["PYTHONPATH"] = env["PYTHONPATH"] + f":{REPO / 'bench' / 'pause_inject'}"
        env["PAYGUARD_CONFIG"] = str(CONFIG)
        env["DIAG_DIR"] = str(OUT)
        return env


def late(client: dict[str, list[float]], diag: dict, rate: int, over_s: float = 0.05) -> None:
    """Each stretch of requests answered over `over_s` late (gaps under 0.2 s joined),
    beside the commits, forks, collections, slow engine stages and loop stacks of it."""
    shift = time.time() - time.monotonic()  # the client's times are its loop's (monotonic)
    due = [d + shift for d in client["due"]]
    stretches: list[list[float]] = []
    for when, answered in zip(due, client["done"], strict=True):
        wait = (answered + shift - when) if answered == answered else float("inf")
        if wait > over_s:
            if stretches and when - stretches[-1][1] < 0.2:
                stretches[-1][1:] = [when, max(stretches[-1][2], wait), stretches[-1][3] + 1]
            else:
                stretches.append([when, when, wait, 1])
    print(f"{rate}/s: {len(stretches)} stretches of requests over {over_s * 1e3:.0f} ms late")
    t0 = due[0]
    for first, last, worst, n in stretches:
        print(f"  t+{first - t0:.2f}..{last - t0:.2f} s: {n} requests, worst {worst * 1e3:.0f} ms")
        lo, hi = first - 0.5, last + 0.1
        for at, took, rows in diag.get("commits", []):
            if lo <= at <= hi and took > 0.015:
                print(f"    commit t+{at - t0:.2f} {took * 1e3:.0f} ms ({rows} rows)")
        for at, took in diag["forks"]:
            if lo - 30 <= at <= hi:
                print(f"    fork t+{at - t0:.2f} {took * 1e3:.0f} ms")
        for generation, wall, at, _, _ in diag["colls"]:
            if lo <= at <= hi and wall > 5:
                print(f"    collection gen {generation} t+{at - t0:.2f} {wall:.0f} ms")
        for at, stage, took in diag.get("slow_calls", []):
            if lo <= at <= hi:
                print(f"    {stage} t+{at - t0:.2f} {took * 1e3:.1f} ms")
        samples = diag.get("stacks", [])
        stacks = [" < ".join(reversed(w[-5:])) for at, _, w in samples if lo <= at <= hi]
        for where in sorted(set(stacks), key=stacks.count, reverse=True)[:3]:
            print(f"    loop stack x{stacks.count(where)}: {where}")


tree = DiagTree(which, src)
h = History(users, days)
t = time.time()
data_dir, tmp = h.scratch_copy(tree)
print("copy", round(time.time() - t, 1), flush=True)
try:
    server = Server(tree, data_dir, Options(pin="pin" in sys.argv[8:]))
    start_ms = int(h.info()["watermark_ms"]) + 1000
    probe = requests(h, 1, 1, start_ms, "probe", server.authorization)
    print("startup", round(server.start(probe[0]), 2), "pid", server.proc.pid, flush=True)
    serving_t = time.time()
    pid = server.proc.pid
    clock = start_ms + 1000
    for rate in rates:
        l0 = os.getloadavg()
        r = load_run(server, h, rate, seconds, f"load-{rate}", clock, OUT / f"client-{rate}.json")
        clock += int(seconds * 1000) + 1000
        print(rate, json.dumps(r), "load", l0, os.getloadavg(), flush=True)
    print("metrics", json.dumps(server.metrics()), flush=True)
    (OUT / "dump").write_text("now\n")  # the injected diagnostics write their record
    time.sleep(1.5)
    diag = json.loads((OUT / f"diag-{pid}.json").read_text())
    (OUT / "dump").unlink()
    server.stop()
    c = [x for x in diag["colls"] if x[2] >= serving_t]
    by = {g: [x for x in c if x[0] == g] for g in (0, 1, 2)}
    print(
        "serving collections:",
        {g: len(v) for g, v in by.items()},
        "max wall ms",
        {g: max((x[1] for x in v), default=0) for g, v in by.items()},
        "max cpu ms",
        {g: max((x[4] for x in v), default=0) for g, v in by.items()},
    )
    print(
        "startup full collections (wall, cpu ms):",
        [(x[1], x[4]) for x in diag["colls"] if x[0] == 2 and x[2] < serving_t],
    )
    print("forks s:", diag["forks"])
    print(
        "loop lag max s:",
        diag["lag_max"],
        "n>50ms:",
        sum(1 for _, lag in diag["lag"] if lag > 0.05),
        "n>20ms:",
        len(diag["lag"]),
        "samples",
        diag["lag_n"],
    )
    print(
        "gen2 types at full collections:",
        [(x["n"], x["top"][:5]) for x in diag["gen2_types"] if x["at"] >= serving_t][:3],
    )
    for rate in rates:
        late(json.loads((OUT / f"client-{rate}.json").read_text()), diag, rate)
    (OUT / f"{which}-{int(serving_t)}.json").write_text(json.dumps(diag))
finally:
    tmp.cleanup()
