"""What one event type's chain conditions read, and those values assembled for an event.

The conditions read event fields and catalog and graph features as of the event, the same
point-in-time values the rules see. Deciding an event already took a snapshot of them, so
`chain_variables` copies them from it; recovery and warm-up decide nothing, so
`recomputed_variables` snapshots them afresh from the states before the event. Both build
the same dict, which is why they live side by side here.
"""

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from payguard.events import Event
from payguard.features import FeatureState, QueryPlan
from payguard.graph import GraphFeatures

Field = Callable[[Event], Any]
"""Reads one event field as a condition sees it (a `rules.variables.EventVariable`)."""


class ChainInputs(msgspec.Struct, frozen=True):
    """The chain conditions' reads for one event type, computed once per plan."""

    fields: tuple[tuple[str, Field], ...] | None = None
    """Event fields the conditions read; None when no step (or negation) applies to the
    type, so no variables are built for the matcher."""
    values: tuple[str, ...] = ()
    """Catalog and graph features the conditions read (copied from the decision's
    snapshot)."""
    features: QueryPlan | None = None
    """Catalog features the conditions read, for recovery (no decision, no snapshot)."""
    graph: frozenset[str] = frozenset()
    """Graph features the conditions read, for recovery."""


def plan_inputs(
    event_type: str,
    names: frozenset[str],
    applies: bool,
    state: FeatureState,
    fields: Mapping[str, Field],
    graph_names: frozenset[str],
) -> ChainInputs:
    """The reads of `event_type`'s conditions, which read `names`
    (`ChainMatcher.variables_for`); `applies` says whether any step or negation applies to
    the type at all. A catalog feature shadows an event field of the same name, as in
    rules. The feature plan is labelled for the generated code's tracebacks."""
    catalog = state.layout
    read = frozenset(n for n in names if n in catalog)
    own = tuple((n, f) for n, f in fields.items() if n in names and n not in catalog)
    return ChainInputs(
        fields=own if applies else None,
        values=tuple(sorted(n for n in names if n in catalog or n in graph_names)),
        features=state.plan(read, f"{event_type} chains") if read else None,
        graph=frozenset(names & graph_names),
    )


def chain_variables(
    inputs: ChainInputs, event: Event, snapshot: Mapping[str, Any]
) -> dict[str, Any]:
    """What the conditions read when the event is decided: its fields, and catalog and
    graph features from the decision's `snapshot` (taken before the event; only chain
    values are added to it later, under other names)."""
    out = {name: read(event) for name, read in inputs.fields or ()}
    for name in inputs.values:
        out[name] = snapshot[name]
    return out


def recomputed_variables(
    inputs: ChainInputs, event: Event, state: FeatureState, graph: GraphFeatures | None
) -> dict[str, Any]:
    """What the conditions read for an event filed without a decision (recovery,
    warm-up), as `chain_variables` builds it: from the states before the event."""
    out = {name: read(event) for name, read in inputs.fields or ()}
    if inputs.features is not None:
        out.update(state.snapshot(event, inputs.features))
    if inputs.graph and graph is not None:
        out.update(graph.snapshot(event, inputs.graph))
    return out
