"""Pauses by cause on warm state: `payguard serve` of one code tree on a scratch copy of
the warm state (bench.warm_state), open-loop rates one after another (bench.open_loop's
client), then the causes: every collection while serving (wall and CPU time), the
event loop's longest lag, every fork's duration, from diagnostics injected into the
server (bench/pause_inject/sitecustomize.py), so that a tree without payguard_stall_*
gauges (today's main) is measured the same way; /metrics as the tree reports it.

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


@dataclass(frozen=True)
class DiagTree(Tree):
    def env(self, data_dir, **extra):
        env = super().env(data_dir, **extra)
        env["PYTHONPATH"] = env["PYTHONPATH"] + f":{REPO / 'bench' / 'pause_inject'}"
        env["PAYGUARD_CONFIG"] = str(CONFIG)
        env["DIAG_DIR"] = str(OUT)
        return env


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
        r = load_run(server, h, rate, seconds, f"load-{rate}", clock)
        clock += int(seconds * 1000) + 1000
        print(rate, json.dumps(r), "load", l0, os.getloadavg(), flush=True)
    print("metrics", json.dumps(server.metrics()), flush=True)
    time.sleep(3.5)
    diag = json.loads((OUT / f"diag-{pid}.json").read_text())
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
    (OUT / f"{which}-{int(serving_t)}.json").write_text(json.dumps(diag))
finally:
    tmp.cleanup()
