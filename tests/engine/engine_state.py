"""The engine's whole decision state as comparable values, for restart and replay tests,
and the example events and settings the snapshot tests run on."""

from pathlib import Path
from typing import Any

import msgspec

from payguard.config import Settings, load_settings
from payguard.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_LINES = (ROOT / "examples" / "events.jsonl").read_bytes().splitlines()
"""The example events, one JSON line each."""


def example_settings(data_dir: Path) -> Settings:
    """An engine on `data_dir` with the default ruleset."""
    return load_settings(
        env={
            "PAYGUARD_DATA_DIR": str(data_dir),
            "PAYGUARD_RULESET": str(ROOT / "rules" / "default.yaml"),
        }
    )


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
