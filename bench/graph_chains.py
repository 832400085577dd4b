"""Cost per event of the identity graph and the chain matcher on a simulated stream.

Simulates `users` customers over `days` (all six attack scenarios, seed 7), decodes every
event, then replays them in memory through feature state → graph → chains in the order
the engine will use, timing each call separately: the feature state (snapshot of the
features the chains read, and update) as the yardstick; the graph (snapshot of the graph
features the chains read, and update); the chains (snapshot with the shipped patterns,
the `chains:` of rules/default.yaml, and update). A second pass times the worst case of a
graph asked for every graph feature on every event. Also counts the events on which a chain
was matched or completing, split by the simulator's labels, and the state left at the end.

    .venv/bin/python -m bench.graph_chains [USERS] [DAYS]
"""

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from payguard.chains import ChainMatcher, load_chains_file
from payguard.engine import EVENT_TYPES, batch_gc, known_variables
from payguard.events import FEEDBACK_TYPES, Event, EventDecoder, Tokenizer
from payguard.features import FeatureState, QueryPlan, load_catalog
from payguard.graph import GraphFeatures
from payguard.rules import event_variables
from payguard.sim import SimConfig, simulate

CHAINS = Path(__file__).resolve().parents[1] / "rules" / "default.yaml"


def _events(users: int, days: int) -> tuple[list[Event], set[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        events_path, labels_path = Path(tmp) / "events.jsonl", Path(tmp) / "labels.jsonl"
        simulate(SimConfig(users=users, days=days, seed=7), events_path, labels_path)
        decode = EventDecoder(Tokenizer(b"bench-token-key-0123456789")).decode
        events = [decode(line) for line in events_path.open("rb")]
        attack = {json.loads(line)["event_id"] for line in labels_path.open()}
    return events, attack


class _Clock:
    """Nanoseconds per stage, summed over the replay."""

    def __init__(self) -> None:
        self.ns: dict[str, int] = {}

    def add(self, stage: str, started: int) -> None:
        self.ns[stage] = self.ns.get(stage, 0) + time.perf_counter_ns() - started


def run(users: int = 2_000, days: int = 14) -> dict[str, Any]:
    events, attack = _events(users, days)
    features = FeatureState(load_catalog())
    graph = GraphFeatures()
    known = known_variables(features) | set(graph.names())
    chains = ChainMatcher(load_chains_file(CHAINS, known, EVENT_TYPES))
    all_graph = frozenset(graph.names())
    graph_needs: dict[str, frozenset[str]] = {}
    readers = event_variables()
    plans: dict[str, QueryPlan] = {}
    seen: dict[str, Event] = {}
    clock = _Clock()
    fired = {"attack": 0, "legit": 0}
    with batch_gc():  # as `payguard replay` runs: no full GC passes mid-stream
        for seq, event in enumerate(events, start=1):
            needed = chains.variables_for(event.type)
            plan = plans.get(event.type)
            if plan is None:
                plan = plans[event.type] = features.plan(n for n in needed if n in features.layout)
                graph_needs[event.type] = frozenset(needed & all_graph)
            variables = {n: f(event) for n, f in readers.items() if n in needed}
            t = time.perf_counter_ns()
            variables.update(features.snapshot(event, plan))
            clock.add("features_snapshot", t)
            t = time.perf_counter_ns()
            variables.update(graph.snapshot(event, graph_needs[event.type]))
            clock.add("graph_snapshot", t)
            t = time.perf_counter_ns()
            out = chains.snapshot(event, variables)
            clock.add("chains_snapshot", t)
            if any(v is True for v in out.values()):
                fired["attack" if event.event_id in attack else "legit"] += 1
            ref = seen.get(event.ref_event_id or "") if event.type in FEEDBACK_TYPES else None
            t = time.perf_counter_ns()
            features.update(event, ref)
            clock.add("features_update", t)
            t = time.perf_counter_ns()
            graph.update(event, seq, ref)
            clock.add("graph_update", t)
            t = time.perf_counter_ns()
            chains.update(event, variables, seq)
            clock.add("chains_update", t)
            seen[event.event_id] = event
    n = len(events)
    us = {f"{stage}_us": ns / n / 1_000 for stage, ns in clock.ns.items()}
    graph_us = us["graph_snapshot_us"] + us["graph_update_us"]
    chains_us = us["chains_snapshot_us"] + us["chains_update_us"]
    return {
        "events": n,
        **us,
        "graph_us_per_event": graph_us,
        "chains_us_per_event": chains_us,
        "graph_plus_chains_us_per_event": graph_us + chains_us,
        "graph_every_feature_us_per_event": _every_graph_feature(events),
        "graph_edges": sum(len(e) for e in graph.graph.acc.values()),
        "graph_dropped_links": graph.graph.dropped_links,
        "graph_export_bytes": len(graph.export()),
        "chain_partitions": sum(len(p) for p in chains.parts),
        "chain_export_bytes": len(chains.export()),
        "events_chain_fired_attack": fired["attack"],
        "attack_events": len(attack),
        "events_chain_fired_legit": fired["legit"],
    }


def _every_graph_feature(events: list[Event]) -> float:
    """Worst case: a fresh graph answering every graph feature for every event, µs/event
    (snapshot + update)."""
    graph = GraphFeatures()
    names = frozenset(graph.names())
    started = time.perf_counter_ns()
    with batch_gc():
        for seq, event in enumerate(events, start=1):
            graph.snapshot(event, names)
            graph.update(event, seq)
    return (time.perf_counter_ns() - started) / len(events) / 1_000


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    for key, value in run(*args).items():
        print(f"{key:34} {value:,.2f}" if isinstance(value, float) else f"{key:34} {value:,}")
