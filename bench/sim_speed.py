"""Simulator throughput: about one million events on one core."""

import tempfile
from pathlib import Path

from payguard.sim import SimConfig, simulate


def run(users: int = 26_000, days: int = 30) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        summary = simulate(
            SimConfig(users=users, days=days, seed=7),
            Path(tmp) / "events.jsonl",
            Path(tmp) / "labels.jsonl",
        )
    return {
        "events": summary.events,
        "seconds": summary.elapsed_s,
        "events_per_s": summary.events_per_s,
    }


if __name__ == "__main__":
    print(run())
