"""Ruleset text → a `Ruleset` checked against this engine's names, and the names themselves.

A rule or chain condition may read event fields, catalog features, graph features, chain
features and the ruleset's params; which of those exist depends on the feature catalog and
on whether graph and chains are on. Compilation refuses a ruleset reading anything else,
so a typo fails at load (`payguard rules check`, PUT /v1/ruleset), never per event. The
chain matcher is built here too, over the same variable types as the rules, so that both
translate CEL to Python under one set of types.
"""

import logging
from typing import TYPE_CHECKING, get_args

from payguard.chains import ChainMatcher, ChainPattern, ChainSpec
from payguard.config import Settings
from payguard.events.contract import EventType
from payguard.features import SWEEP_EVERY, FeatureState
from payguard.graph import GraphConfig, GraphFeatures
from payguard.rules import event_variables
from payguard.rules.variables import EVENT_VARIABLE_TYPES
from payguard.ruleset import Ruleset, parse_ruleset

if TYPE_CHECKING:
    from payguard.ml.serve import ModelServer

log = logging.getLogger("payguard")

EVENT_TYPES: tuple[str, ...] = get_args(EventType)

GRAPH_CONFIG = GraphConfig(sweep_every=SWEEP_EVERY, max_refs=0)
"""The identity graph's caps and horizons. It sweeps at the feature state's sequence
numbers, so every state expires on one schedule, and keeps no event-id memory: `_apply`
passes feedback the event it references, read from the log."""


def _graph_types() -> dict[str, str]:
    graph = GraphFeatures(GRAPH_CONFIG)
    return {name: graph.value_type(name) for name in graph.names()}


GRAPH_TYPES: dict[str, str] = _graph_types()
"""Every graph feature a rule or chain condition may read, with its CEL type."""
GRAPH_NAMES: frozenset[str] = frozenset(GRAPH_TYPES)


def compile_ruleset(text: str, features: FeatureState, *, graph_chains: bool = True) -> Ruleset:
    """Parse and validate ruleset text against these features, and the graph features
    and a `chains:` section unless `graph_chains` is off (raises RuleError)."""
    known = known_variables(features, graph=graph_chains)
    chain_known = known - {"model"} if graph_chains else None
    return parse_ruleset(text, known, EVENT_TYPES, chain_known)


def known_variables(features: FeatureState, *, graph: bool = True) -> set[str]:
    """Every name a rule may reference, besides the ruleset's own params and chain
    features (`model` is the learned score, `model.score`, 0.0 when no model is loaded).
    Chain conditions read the same names except `model`: they are matched before it."""
    names = set(event_variables()) | set(features.layout) | {"model"}
    return names | GRAPH_NAMES if graph else names


def chain_matcher(ruleset: Ruleset, features: FeatureState, sweep_every: int) -> ChainMatcher:
    """A matcher for the ruleset's patterns, late as the features and swept with them,
    running conditions as Python over the same variable types as the rules."""
    types = {
        **EVENT_VARIABLE_TYPES,
        **{n: features.value_type(n) for n in features.layout},
        **GRAPH_TYPES,
    }
    return ChainMatcher(
        ruleset.chains,
        lateness_ms=features.lateness_ms,
        sweep_every=sweep_every,
        types=types,
        accounts_of=features.accounts_of,
    )


def chain_types(ruleset: Ruleset) -> dict[str, tuple[str, str]]:
    """Chain feature name → (chain, CEL type), for the ruleset's patterns."""
    return {
        name: (pattern.name, kind)
        for pattern in ruleset.chains
        for name, kind in pattern.feature_types().items()
    }


def specs(patterns: tuple[ChainPattern, ...]) -> tuple[ChainSpec, ...]:
    """What a hot reload compares to tell whether the chain patterns changed."""
    return tuple(p.spec for p in patterns)


def load_model(settings: Settings, features: FeatureState) -> "ModelServer | None":
    """The configured model, or None; says which at start-up either way."""
    if settings.model is None:
        log.info("no model configured (PAYGUARD_MODEL): deciding with rules only")
        return None
    from payguard.ml.serve import load_model as load  # ONNX Runtime only when asked

    server, message = load(settings.model, features, settings.features)
    (log.info if server is not None else log.warning)(message)
    return server
