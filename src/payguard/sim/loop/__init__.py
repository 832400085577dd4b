"""The closed loop: the simulated world run against the engine, each actor reacting.

`run_closed_loop(LoopConfig(SimConfig(...)), settings=..., features=..., ruleset=...)`
plans the same world as `payguard.sim.simulate`, decides it event by event on a fresh
in-memory engine and returns a `LoopReport`: attack money lost against attempted, retries
after a decline, time to stop, challenges per legitimate customer, abandons and repeat
challenges for a cause a strong step-up already cleared, and the analyst queue that
resolves reviews (docs/simulator.md, "Closed loop").
"""

from payguard.sim.loop.actors import Attacker, Customer
from payguard.sim.loop.analyst import Analyst
from payguard.sim.loop.driver import ClosedLoop, LoopConfig, run_closed_loop
from payguard.sim.loop.report import (
    AnalystLoop,
    CampaignLoss,
    LegitLoop,
    LoopReport,
    LostPath,
    ScenarioLoop,
    render_loop,
    render_loop_html,
)

__all__ = [
    "Analyst",
    "AnalystLoop",
    "Attacker",
    "CampaignLoss",
    "ClosedLoop",
    "Customer",
    "LegitLoop",
    "LoopConfig",
    "LoopReport",
    "LostPath",
    "ScenarioLoop",
    "render_loop",
    "render_loop_html",
    "run_closed_loop",
]
