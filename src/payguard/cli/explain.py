"""`payguard explain-plan EVENT_TYPE`: the Python that decides and files one event type.

The feature snapshot, the rules, the step-up features and the feature update are compiled
to Python per event type (payguard.generated). This prints that code as it runs, with a
comment per feature and per rule and the filename a traceback from it would show, for the
configured ruleset or the one given with `--ruleset`.
"""

from pathlib import Path
from typing import Annotated

import typer

from payguard.cel import RuleError
from payguard.cli.common import fail, settings_or_exit
from payguard.engine import EVENT_TYPES, Engine, compile_ruleset
from payguard.features import FeatureState, load_catalog
from payguard.generated import filename_of, source_of


def register(app: typer.Typer) -> None:
    app.command("explain-plan")(explain_plan)


def explain_plan(
    event_type: Annotated[str, typer.Argument(help="Event type, e.g. payment or login.")],
    ruleset: Annotated[
        Path | None,
        typer.Option("--ruleset", help="Ruleset YAML file (else PAYGUARD_RULESET)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file (else PAYGUARD_CONFIG).")
    ] = None,
) -> None:
    """Print the generated code that decides and files EVENT_TYPE, with a comment per
    feature and rule."""
    if event_type not in EVENT_TYPES:
        fail(f"event_type: unknown event type {event_type!r} (one of {', '.join(EVENT_TYPES)})")
    settings = settings_or_exit(config)
    path = ruleset if ruleset is not None else settings.ruleset
    if not path.is_file():
        fail(f"--ruleset: no such ruleset file: {path}")
    try:
        features = FeatureState(load_catalog(settings.features), settings.utc_offset)
        compiled = compile_ruleset(
            path.read_text(encoding="utf-8"), features, graph_chains=settings.graph_chains
        )
    except (RuleError, ValueError, OSError) as exc:
        fail(str(exc))
    engine = Engine.in_memory(settings, features, compiled)
    print(explain(engine, event_type, path))


def explain(engine: Engine, event_type: str, ruleset_path: Path) -> str:
    """The generated code of one event type as one printable text."""
    rules = engine.ruleset.for_event_type(event_type)
    lines = [
        f"# payguard explain-plan {event_type}: ruleset {engine.ruleset.version}"
        f" ({ruleset_path}), {len(rules)} rules for this type",
        "# graph and chain features the rules read come from payguard.graph and",
        "# payguard.chains (plain Python), not from the generated code below.",
    ]
    for what, function in engine.generated_code(event_type):
        lines += ["", f"# ── {what}: {filename_of(function)}", source_of(function).rstrip()]
    return "\n".join(lines)
