"""Warm state for the benchmarks: a data directory holding months of simulated history.

A server with real history behaves nothing like one on an empty store (issue 16): its
state is large, its collections slow, its snapshots big. So the load, memory and start-up
benchmarks run on a data directory built here once per parameter set and cached under
`bench/out/warm/` (git-ignored):

    bench/out/warm/<users>x<days>-s<seed>/history.jsonl   `payguard simulate`
    bench/out/warm/<users>x<days>-s<seed>/log/            `payguard warm-up` of it
    bench/out/warm/<users>x<days>-s<seed>/<tree label>/   the log + that tree's snapshot

The history is filed with `payguard warm-up` (state and event log as a replay builds
them, without deciding: a decided replay of 1.9 M events takes much longer and leaves
the same feature state, declined amounts apart). Each code tree measured (today's
`main` and the branch, side by side) gets its own copy with a snapshot written by its
own code, so that "start from a snapshot" means that tree's snapshot. A benchmark then
copies that directory again (`scratch_copy`), because serving changes it.

Cost on the 2-core bench machine (docs/benchmarks.md): 20,000 customers × 90 days is
1.9 M events; simulating takes ~50 s, the warm-up a few minutes.

    python -m bench.warm_state [USERS] [DAYS] [SEED]
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / "out" / "warm"
TOKEN_KEY = "bench-warm-state-token-key-0123456789abcdef"
"""The same key for warm-up and server: tokens of the history must match the load's."""


@dataclass(frozen=True)
class Tree:
    """A payguard source tree to run (its `src` goes first on PYTHONPATH)."""

    label: str
    src: Path

    @property
    def ruleset(self) -> Path:
        """The tree's own default ruleset beside its `src` (an exported older tree cannot
        always parse today's), else this checkout's."""
        own = self.src.resolve().parent / "rules" / "default.yaml"
        return own if own.exists() else REPO / "rules" / "default.yaml"

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        """Environment for a payguard process of this tree on `data_dir`."""
        env = dict(os.environ)
        env.update(
            PYTHONPATH=str(self.src),
            PAYGUARD_DATA_DIR=str(data_dir),
            PAYGUARD_RULESET=str(self.ruleset),
            PAYGUARD_TOKEN_KEY=TOKEN_KEY,
            PAYGUARD_LOG_LEVEL="WARNING",
            PAYGUARD_RATE_LIMIT_PER_S="1000000",
            PAYGUARD_RATE_LIMIT_BURST="1000000",
            PAYGUARD_MAX_CONCURRENCY="100000",
        )
        env.update(extra)
        return env

    def cli(self, data_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """Run `payguard ARGS` of this tree; raises with its stderr if it fails."""
        done = subprocess.run(
            [sys.executable, "-m", "payguard.cli", *args],
            env=self.env(data_dir, **extra),
            capture_output=True,
            text=True,
            cwd=data_dir.parent,
        )
        if done.returncode != 0:
            raise RuntimeError(f"payguard {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done


CURRENT = Tree("current", REPO / "src")


@dataclass(frozen=True)
class History:
    """One parameter set's cached history and its warm event log."""

    users: int
    days: int
    seed: int = 7

    @property
    def root(self) -> Path:
        return CACHE / f"{self.users}x{self.days}-s{self.seed}"

    @property
    def events(self) -> Path:
        return self.root / "history.jsonl"

    @property
    def log_dir(self) -> Path:
        return self.root / "log" / "data"

    def info(self) -> dict[str, float]:
        """What building it cost and holds (written once, by `build`)."""
        data: dict[str, float] = json.loads((self.root / "info.json").read_text())
        return data

    def build(self, tree: Tree = CURRENT) -> dict[str, float]:
        """Simulate and warm up, unless cached; returns `info`."""
        if (self.root / "info.json").exists():
            return self.info()
        self.root.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if not self.events.exists():
            partial = self.events.with_suffix(".partial")
            tree.cli(
                self.root,
                "simulate",
                f"--users={self.users}",
                f"--days={self.days}",
                f"--seed={self.seed}",
                "-o",
                str(partial),
                f"--labels={self.root / 'labels.jsonl'}",
            )
            partial.rename(self.events)
        simulated = time.perf_counter()
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self.log_dir.parent.mkdir(parents=True, exist_ok=True)
        tree.cli(self.log_dir.parent, "warm-up", str(self.events), f"--data-dir={self.log_dir}")
        warmed = time.perf_counter()
        with self.events.open("rb") as fh:
            n_events = sum(1 for _ in fh)
        info = {
            "users": float(self.users),
            "days": float(self.days),
            "events": float(n_events),
            "simulate_s": round(simulated - started, 1),
            "warm_up_s": round(warmed - simulated, 1),
            "watermark_ms": float(_last_ts(self.events)),
        }
        (self.root / "info.json").write_text(json.dumps(info, indent=2))
        return info

    def prepared(self, tree: Tree) -> Path:
        """The warm data directory with a snapshot written by `tree`'s code (built once:
        the tree opens a copy of the warm log, which replays it unless the warm-up's
        snapshot suits this tree, and closes it, which writes its own snapshot)."""
        self.build()
        target = self.root / tree.label / "data"
        if not (target.parent / "ready").exists():
            shutil.rmtree(target.parent, ignore_errors=True)
            target.parent.mkdir(parents=True)
            copy_data_dir(self.log_dir, target)
            started = time.perf_counter()
            run_python(
                tree,
                target,
                "from payguard.engine import Engine\n" + _OPEN_CLOSE,
                cwd=target.parent,
            )
            took = time.perf_counter() - started
            print(f"  {tree.label}: snapshot of {self.root.name} in {took:.0f} s")
            (target.parent / "ready").write_text(f"{took:.1f}\n")
        return target

    def scratch_copy(self, tree: Tree) -> tuple[Path, tempfile.TemporaryDirectory[str]]:
        """A throw-away copy of `prepared(tree)` (the caller cleans it up)."""
        source = self.prepared(tree)
        tmp = tempfile.TemporaryDirectory(prefix="payguard-warm-", dir=CACHE)
        target = Path(tmp.name) / "data"
        copy_data_dir(source, target)
        os.sync()  # else the copy's GB of dirty pages stall the server's first fsyncs
        return target, tmp


_OPEN_CLOSE = """
from payguard.config import load_settings
Engine.open(load_settings()).close()
"""


def copy_data_dir(source: Path, target: Path) -> None:
    """Copy a data directory that no process has open (database, WAL, snapshot, keys)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.lock", "*.tmp"))


def run_python(
    tree: Tree, data_dir: Path, code: str, *args: str, cwd: Path | None = None, **extra: str
) -> str:
    """Run `code` with `args` in a fresh Python process of `tree` on `data_dir` (`extra`:
    more environment); its stdout, or RuntimeError with the tail of its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=tree.env(data_dir, **extra),
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{tree.label} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def last_json_line(stdout: str) -> dict[str, float]:
    """The figures a probe prints as JSON on its last line."""
    figures: dict[str, float] = json.loads(stdout.strip().splitlines()[-1])
    return figures


def _last_ts(path: Path) -> int:
    """The newest event time of a history file, in ms (the warm state's watermark)."""
    newest = 0
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 2_000_000))
        fh.readline()
        for line in fh:
            ts = json.loads(line)["ts"]
            ms = ts if isinstance(ts, int) else int(datetime.fromisoformat(ts).timestamp() * 1000)
            newest = max(newest, ms)
    return newest


def run(users: int = 20_000, days: tuple[int, ...] = (30, 90)) -> dict[str, float]:
    """Build (or reuse) the warm histories; report what each cost to build."""
    out: dict[str, float] = {}
    for d in days:
        info = History(users, d).build()
        for key in ("events", "simulate_s", "warm_up_s"):
            out[f"{d}d_{key}"] = info[key]
    return out


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    users = args[0] if args else 20_000
    days = args[1] if len(args) > 1 else 90
    seed = args[2] if len(args) > 2 else 7
    print(json.dumps(History(users, days, seed).build(), indent=2))
