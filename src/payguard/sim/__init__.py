"""Deterministic event simulator: legitimate traffic plus six labelled attack scenarios.

`simulate(SimConfig(...), events_path, labels_path)` writes contract-v1 JSON Lines sorted by
time and a separate labels file (one line per attack event, with its variant and, when it
differs from the scenario default, what the attacker can pass); see docs/simulator.md.
Each scenario is a family of tactic variants split into tuning and held-out sides (`SPLIT`).
"""

import random
import time
from pathlib import Path

from payguard.scenarios import ATTACKER_CAN_PASS, READ_OUT_ONLY, SCENARIOS, default_can_pass
from payguard.sim.attacks import feedback, generate_attacks
from payguard.sim.config import SPLIT, VARIANTS, SimConfig, SimSummary, VariantSet, variant_names
from payguard.sim.legit import build_population, generate_legit
from payguard.sim.population import make_merchants
from payguard.sim.world import World
from payguard.sim.writer import write

__all__ = [
    "ATTACKER_CAN_PASS",
    "READ_OUT_ONLY",
    "SCENARIOS",
    "SPLIT",
    "VARIANTS",
    "SimConfig",
    "SimSummary",
    "VariantSet",
    "default_can_pass",
    "simulate",
    "variant_names",
]


def simulate(cfg: SimConfig, events_path: Path, labels_path: Path) -> SimSummary:
    """Generate, sort and write one simulation; byte-identical output for the same config."""
    began = time.perf_counter()
    rng = random.Random(cfg.seed)
    world = World.create(cfg, rng, make_merchants(rng, cfg.users))
    build_population(world)
    lookalikes = generate_legit(world)
    campaigns = generate_attacks(world)
    feedback(world, campaigns)
    by_type, by_scenario, n_labels = write(
        world.em, Path(events_path), Path(labels_path), f"s{cfg.seed}-"
    )
    per_scenario: dict[str, int] = {}
    per_variant: dict[str, int] = {}
    for camp in campaigns:
        per_scenario[camp.scenario] = per_scenario.get(camp.scenario, 0) + 1
        per_variant[camp.variant] = per_variant.get(camp.variant, 0) + 1
    return SimSummary(
        events=sum(by_type.values()),
        labels=n_labels,
        users=len(world.users),
        by_type=dict(sorted(by_type.items())),
        by_scenario={s: by_scenario[s] for s in SCENARIOS if s in by_scenario},
        campaigns=per_scenario,
        variants=dict(sorted(per_variant.items())),
        lookalikes=dict(sorted(lookalikes.items())),
        elapsed_s=round(time.perf_counter() - began, 3),
    )
