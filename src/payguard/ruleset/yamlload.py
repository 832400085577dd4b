"""YAML for rulesets, with a bound on what aliases can expand to.

A YAML alias (`*a`) reuses an anchored node, so ten nested levels of ten aliases are a
few hundred bytes that stand for 10^10 nodes. PyYAML builds the shared structure once, but
everything after it (validation, compilation) walks the expansion: a 1 MB file became
14,016 rules, 28 s and 4.3 GB (issue 14). So the document's node graph is measured as
it would expand, before anything is built from it, and refused beyond `MAX_YAML_NODES`;
a recursive alias (a node containing itself) is refused outright. Measuring visits each
distinct node once and stops at the limit, so it costs less than reading the file.
"""

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_YAML_NODES = 100_000
"""Nodes a ruleset may expand to (the default ruleset has about 1,650)."""
MAX_YAML_DEPTH = 64
"""Collections a ruleset may nest (the default ruleset nests 6): libyaml's composer
recurses once per level and crashes the process (SIGSEGV) at some thousands of levels,
in flow (`[[[`) or block (`- - -`) style alike."""
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML was built with it: 1 MB in 0.08 s instead of 8 s."""


class YamlError(ValueError):
    """The text is not YAML, or expands beyond the limit; the message says which."""


def load_yaml(text: str, max_nodes: int = MAX_YAML_NODES) -> Any:
    """The document in `text`, as `yaml.safe_load` reads it, or YamlError."""
    check_depth(text)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        nodes = expanded_size(root, max_nodes)
        if nodes > max_nodes:
            raise YamlError(f"YAML expands to more than {max_nodes} nodes (aliases); refused")
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise YamlError(f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def check_depth(text: str, limit: int = MAX_YAML_DEPTH) -> None:
    """Raise YamlError if collections in `text` nest deeper than `limit`. The parser's
    events are read without composing a tree (libyaml's parser keeps its own stack), and
    reading stops at the first level too deep."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > limit:
                    raise YamlError(f"YAML nested more than {limit} levels deep; refused")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError as exc:
        raise YamlError(f"not valid YAML: {exc}") from None


def expanded_size(root: Node, limit: int) -> int:
    """The number of nodes `root` stands for with every alias expanded, counting stops
    once it passes `limit`; raises YamlError for a node that contains itself."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            if total > limit:
                return limit + 1  # the root stands for at least as many nodes
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YamlError("YAML alias refers to a node that contains it; refused")
        open_nodes.add(key)
        stack.append((node, True))
        pending = {id(child): child for child in _children(node) if id(child) not in sizes}
        stack.extend((child, False) for child in pending.values())
    return sizes[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []
