"""The only place the stages are wired together, as six modules with one job each.

- `core`: the decision path (process, decide, apply) and the `Engine` that owns it;
- `plan`: per event type, what its rules and chain conditions read, and the rule runner;
- `durability`: the snapshot file (written by a forked child while deciding goes on), how
  it is checked on the way back, fault points;
- `compile`: ruleset text checked against the engine's names, the chain matcher;
- `heap`: the collector policy that keeps full collections off the decision path;
- `idempotency`: the recent event ids, a window of event time backed by the event log.

`core` imports the other five, which import none of it. Callers import from here.
"""

from payguard.engine.compile import (
    EVENT_TYPES,
    GRAPH_CONFIG,
    GRAPH_NAMES,
    GRAPH_TYPES,
    compile_ruleset,
    known_variables,
)
from payguard.engine.core import (
    OWNER_REPORTS,
    WARM_UP,
    DecisionListener,
    DuplicateEventError,
    Engine,
    warm_up_decision,
)
from payguard.engine.durability import (
    DATABASE_FILE,
    HOLDS_FILE,
    OUTCOMES_FILE,
    SNAPSHOT_FILE,
    StorageError,
    batch_gc,
    fault_point,
)

__all__ = [
    "DATABASE_FILE",
    "EVENT_TYPES",
    "GRAPH_CONFIG",
    "GRAPH_NAMES",
    "GRAPH_TYPES",
    "HOLDS_FILE",
    "OUTCOMES_FILE",
    "OWNER_REPORTS",
    "SNAPSHOT_FILE",
    "WARM_UP",
    "DecisionListener",
    "DuplicateEventError",
    "Engine",
    "StorageError",
    "batch_gc",
    "compile_ruleset",
    "fault_point",
    "known_variables",
    "warm_up_decision",
]
