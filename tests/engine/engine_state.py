"""The engine's whole decision state as comparable values, for restart and replay tests."""

from typing import Any

import msgspec

from payguard.engine import Engine


def derived_state(engine: Engine) -> tuple[dict[str, Any], dict[str, Any]]:
    """The graph and chain state: their exports decoded, edges in a canonical order (a
    restored graph lists them in another order, which no feature depends on)."""
    assert engine.graph is not None and engine.chains is not None
    graph = msgspec.msgpack.decode(engine.graph.export())
    graph["edges"] = sorted(graph["edges"], key=lambda e: (e[0], e[1]))
    chains = msgspec.msgpack.decode(engine.chains.export())
    assert graph["edges"] and any(chains["parts"]), "the events must exercise both"
    return graph, chains


def whole_state(engine: Engine) -> list[Any]:
    """Feature timelines, graph and chains."""
    return [engine.features.digest_items(), *derived_state(engine)]
