"""Per event type, everything needed to decide it under one ruleset, computed once.

Most of a decision's cost is reading state, so a plan names exactly what the type's rules
and chain conditions read (catalog, graph and chain features) and nothing else; the rules
become one Python function of (features, event) where the translation from CEL is exact.
A plan is built on the first event of its type and dropped when the ruleset changes.
"""

from collections.abc import Mapping

import msgspec

from payguard.cel.lists import Membership
from payguard.chains import ChainInputs, ChainMatcher, plan_inputs
from payguard.engine.compile import GRAPH_NAMES, GRAPH_TYPES
from payguard.features import FeatureState, QueryPlan
from payguard.policy import PolicyResult, decide
from payguard.rules import CompiledRule, RuleHit, list_reads
from payguard.rules.evaluate import rule_runner
from payguard.rules.native import RuleRunner
from payguard.rules.variables import EVENT_VARIABLE_TYPES, EventVariable
from payguard.ruleset import Ruleset


class TypePlan(msgspec.Struct, frozen=True):
    """Everything needed to decide one event type under one ruleset, computed once."""

    ruleset: Ruleset
    rules: tuple[CompiledRule, ...]
    features: QueryPlan
    run_rules: RuleRunner
    """The rules as one function of (features, event): see `rules.rule_runner`."""
    wants_model: bool = False
    """A rule reads `model.score` (0.0 when no model scored the event)."""
    allows_without_hits: bool = False
    """Whether the policy allows an event no rule hit (no threshold at score 0)."""
    graph: frozenset[str] = frozenset()
    """Graph features the rules or the chain conditions read (the graph's plan key)."""
    chains: frozenset[str] = frozenset()
    """Chain features the rules read; the chains are matched before the rules only then."""
    chain: ChainInputs = msgspec.field(default_factory=ChainInputs)
    """What the chain conditions of this type read (chains.ChainInputs)."""
    chain_rules: dict[str, frozenset[str]] = msgspec.field(default_factory=dict)
    """Rule id → the chains whose features it reads, to name them in its reason."""
    lists: dict[str, Membership] = msgspec.field(default_factory=dict)
    """The list membership variables the rules read (`x in deny_list('name')`, cel.lists),
    asked of the engine's list reader per event."""
    unlisted: dict[str, bool] = msgspec.field(default_factory=dict)
    """Each of `lists` false, in their order: their values when the engine has no list
    reader (`rules.list_values` without one), built once here instead of per event."""


class PlanContext(msgspec.Struct, frozen=True):
    """What plans are built from: the engine's state, ruleset and configuration."""

    ruleset: Ruleset
    state: FeatureState
    matcher: ChainMatcher | None
    chain_types: dict[str, tuple[str, str]]
    """Chain feature name → (chain, CEL type) (compile.chain_types)."""
    event_vars: dict[str, EventVariable]
    budget_us: int
    """The rules' evaluation budget (settings.rule_budget_us)."""


def build_plan(ctx: PlanContext, event_type: str) -> TypePlan:
    """The plan for one event type: a param shadows a feature of the same name, and the
    chain conditions' reads are added to the features snapshotted."""
    ruleset = ctx.ruleset
    rules = ruleset.for_event_type(event_type)
    wanted = set().union(*(r.variables for r in rules)) if rules else set()
    reads = wanted - ruleset.params.keys()  # a param shadows a feature of the same name
    catalog = ctx.state.layout
    matcher = ctx.matcher
    inputs = matcher.variables_for(event_type) if matcher else frozenset()
    read_by_rules = frozenset(n for n in reads if n in catalog)
    applies = matcher is not None and matcher.applies_to(event_type)
    lists = list_reads(reads)
    return TypePlan(
        ruleset=ruleset,
        rules=rules,
        features=ctx.state.plan(read_by_rules | {n for n in inputs if n in catalog}, event_type),
        run_rules=_rule_runner(ctx, rules, wanted, read_by_rules, event_type),
        wants_model="model" in wanted,
        allows_without_hits=quiet(decide([], ruleset.policy, dict)),
        graph=frozenset((reads | inputs) & GRAPH_NAMES),
        chains=frozenset(reads & ctx.chain_types.keys()),
        chain_rules=_chain_rules(rules, ctx.chain_types),
        lists=lists,
        unlisted=dict.fromkeys(lists, False),
        chain=plan_inputs(event_type, inputs, applies, ctx.state, ctx.event_vars, GRAPH_NAMES),
    )


def _chain_rules(
    rules: tuple[CompiledRule, ...], chain_of: Mapping[str, tuple[str, str]]
) -> dict[str, frozenset[str]]:
    """Rule id → the chains it reads a feature of (rules reading none left out)."""
    read = {r.rule.id: {chain_of[n][0] for n in r.variables if n in chain_of} for r in rules}
    return {rule: frozenset(names) for rule, names in read.items() if names}


def _rule_runner(
    ctx: PlanContext,
    rules: tuple[CompiledRule, ...],
    wanted: set[str],
    catalog: frozenset[str],
    event_type: str = "",
) -> RuleRunner:
    """The rules as Python where that is exact; variables resolve as in CEL: a param
    shadows a feature (of the catalog, the graph or a chain), which shadows an event
    field."""
    params = {k: v for k, v in ctx.ruleset.params.items() if k in wanted}
    reads = wanted - params.keys()
    graph = {n: GRAPH_TYPES[n] for n in reads & GRAPH_NAMES}
    chains = {n: ctx.chain_types[n][1] for n in reads & ctx.chain_types.keys()}
    listed = dict.fromkeys(list_reads(reads), "bool")
    types = {
        **EVENT_VARIABLE_TYPES,
        **{n: ctx.state.value_type(n) for n in catalog},
        **graph,
        **chains,
        **listed,
        **{k: _param_type(v) for k, v in params.items()},
    }
    event_vars = {n: f for n, f in ctx.event_vars.items() if n in wanted}
    features = catalog | graph.keys() | chains.keys() | listed.keys()
    budget = ctx.budget_us
    run_rules, _ = rule_runner(rules, types, features, event_vars, params, budget, event_type)
    return run_rules


def quiet(outcome: PolicyResult) -> bool:
    """Whether an outcome is the plain allow that `Engine.decide` builds without `decide`."""
    o = outcome
    return (o.action, o.score, o.reasons, o.challenge, o.shadow) == ("allow", 0, [], None, [])


def _param_type(value: object) -> str:
    """A ruleset param's CEL type (bool first: a Python bool is also an int)."""
    return "bool" if isinstance(value, bool) else "int" if isinstance(value, int) else "string"


def rule_errors(rules: tuple[CompiledRule, ...], hits: list[RuleHit]) -> list[dict[str, str]]:
    """The decision's `rule_errors`: rule id, error class and failure mode of each rule
    that could not be evaluated (a fail_closed one also hit)."""
    failed = [h for h in hits if h.error is not None]
    if not failed:
        return []
    on_error = {r.rule.id: r.rule.on_error for r in rules}
    return [{"rule": h.rule, "error": h.error or "", "on_error": on_error[h.rule]} for h in failed]
