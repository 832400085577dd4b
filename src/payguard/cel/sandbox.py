"""What a rule condition may do and what it may cost, decided on its syntax tree.

A condition is a loop-free expression over one event's variables, so its cost is bounded
by its size, plus what each function does with its input. The checks:

- comprehension macros (`all`, `exists`, `exists_one`, `map`, `filter`) are refused
  wherever they appear, as method or as function: each runs a sub-expression per element,
  and nested they multiply (one such rule took 9.8 s per event, issue 14);
- only the functions in `FUNCTIONS` may be called; `matches` only with a literal pattern
  (a pattern read from the event would be compiled on every call, and chosen by the
  sender);
- the estimated cost (`cost`) is capped per condition (`MAX_RULE_COST`) and per ruleset
  (`MAX_RULESET_COST`).

The estimate is in "steps", one step being about one operator on a small value (tens of
nanoseconds in Python, ~0.1 µs in the CEL binding). A string scan counts `STRING_SCAN`
steps, since event strings are at most 1,024 characters; a regular expression counts
`REGEX` steps plus its length. Lists cost their elements. The caps are far above the
default ruleset (its costliest rule is about 40 steps, the whole file about 1,700), so they
refuse only the pathological, and the run-time cap per event (`rules.evaluate`) catches
what an estimate cannot.

>>> from payguard.cel.syntax import parse
>>> cost(parse("amount > 5 && channel in ['app', 'web']"))
9
"""

from payguard.cel.syntax import Call, Lit, Node, children

MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
STRING_SCAN = 20
REGEX = 200
FUNCTIONS: dict[str, int] = {
    "size": 1,
    "has": 1,
    "int": 2,
    "uint": 2,
    "double": 2,
    "string": 2,
    "bool": 2,
    "dyn": 1,
    "contains": STRING_SCAN,
    "startsWith": STRING_SCAN,
    "endsWith": STRING_SCAN,
    "matches": REGEX,
}
"""Callable functions (as `f(x)` or `x.f()`) and their cost in steps beyond their
arguments. `has(a.b)` is CEL's presence test, not a comprehension."""

MAX_RULE_COST = 1_000
"""A condition (with its signals inlined) costing more is refused."""
MAX_RULESET_COST = 50_000
"""The sum over a ruleset's enabled rules and chain conditions."""


class SandboxError(ValueError):
    """A condition does something rules may not do; the message says what."""


def check(tree: Node) -> int:
    """Refuse macros and unknown functions anywhere in `tree`; return its cost.

    A tree with signals inlined shares each signal's subtree wherever it is named, so it
    is a DAG that may stand for exponentially many nodes (`s2: s1 && s1`, `s3: s2 && s2`,
    …): both the walk and the cost visit each distinct node once."""
    for node in _distinct(tree):
        if isinstance(node, Call):
            _check_call(node)
    return cost(tree)


def _check_call(call: Call) -> None:
    name = call.function
    if name in MACROS:
        form = f".{name}()" if call.target is not None else f"{name}()"
        raise SandboxError(f"comprehension macros are not allowed: `{form}` (unbounded cost)")
    if name not in FUNCTIONS:
        allowed = ", ".join(sorted(FUNCTIONS))
        raise SandboxError(f"unknown function `{name}` (rules may call: {allowed})")
    if name == "matches":
        pattern = call.args[-1] if call.args else None
        if not (isinstance(pattern, Lit) and pattern.kind == "string"):
            raise SandboxError("`matches` needs a literal pattern")


def cost(tree: Node) -> int:
    """The estimated evaluation cost of `tree` in steps (see the module docstring),
    counting a shared subtree each time it occurs."""
    costs: dict[int, int] = {}
    for node in _distinct(tree):  # children before their parents
        own = 1
        if isinstance(node, Call):
            own += FUNCTIONS.get(node.function, REGEX)
            pattern = node.args[-1] if node.args else None
            if node.function == "matches" and isinstance(pattern, Lit):
                own += len(str(pattern.value))
        costs[id(node)] = own + sum(costs[id(child)] for child in children(node))
    return costs[id(tree)]


def _distinct(tree: Node) -> list[Node]:
    """Each distinct node object of `tree` once, every child before its parents."""
    done: set[int] = set()
    order: list[Node] = []
    stack: list[tuple[Node, bool]] = [(tree, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif id(node) not in done:
            done.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children(node) if id(child) not in done)
    return order
