"""`payguard rebuild-state`: the state rebuilt from the event log alone.

For state lost entirely (a snapshot deleted or damaged beyond use, a state store wiped):
every event of the log — SQLite in the data directory, or Postgres (`PAYGUARD_LOG_DSN`)
— is replayed in sequence order with the actions it was decided with, no decision made
again, and a fresh snapshot written. The snapshot found there is set aside first (as
`state.snapshot.replaced`, put back if the rebuild fails), so nothing of it is trusted.
The same replay runs at every start after the snapshot; this command only refuses the
snapshot's help (docs/scale.md, "Failure behaviour").
"""

import time
from pathlib import Path
from typing import Annotated

import typer

from payguard.cel import RuleError
from payguard.cli.common import err, fail, settings_or_exit
from payguard.datadir import DataDirError, lock_data_dir
from payguard.engine import SNAPSHOT_FILE, Engine
from payguard.store.base import RecordError

SET_ASIDE = SNAPSHOT_FILE + ".replaced"


def register(app: typer.Typer) -> None:
    app.command("rebuild-state")(rebuild_state)


def rebuild_state(
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file (else PAYGUARD_CONFIG).")
    ] = None,
) -> None:
    """Rebuild features, graph, chains and the recent ids from the event log alone, and
    write a fresh snapshot."""
    settings = settings_or_exit(config)
    try:
        lock = lock_data_dir(settings.data_dir)
    except DataDirError as exc:
        fail(str(exc))
    snapshot = settings.data_dir / SNAPSHOT_FILE
    aside = settings.data_dir / SET_ASIDE
    if snapshot.exists():
        snapshot.replace(aside)
    started = time.perf_counter()
    try:
        engine = Engine.open(settings)
        replayed = engine.recorder.last_seq()
        engine.close()  # flushes and writes the snapshot of the rebuilt state
    except (RuleError, ValueError, OSError, RecordError) as exc:
        if aside.exists() and not snapshot.exists():
            aside.replace(snapshot)
        fail(f"cannot rebuild the state: {exc}")
    finally:
        lock.release()
    log = "postgres" if settings.log_dsn else "sqlite"
    err.print(
        f"state rebuilt from the {log} event log (up to seq {replayed}) in "
        f"{time.perf_counter() - started:.1f} s; snapshot written to {snapshot}",
        highlight=False,
    )
