"""`payguard file-cases`: open the cases of decisions already in the event log.

A running server files an alert for every review, hold, failed strong step-up and
customer fraud label as it decides (the case service listens to the engine). Events
recorded without a server — `payguard replay`, `payguard warm-up`, `make demo` — have no
cases yet: this command reads the log oldest first, hands each record to the same
`CaseService.recorded` the server calls, and files the alerts (idempotent: an alert
already filed changes nothing, so it is safe to run twice). The case store is the
configured one (`PAYGUARD_CASES_DSN`, else `cases.db` in the data directory).
"""

import time
from pathlib import Path
from typing import Annotated

import typer

from payguard.cli.common import err, fail, settings_or_exit
from payguard.engine import Engine
from payguard.store import LogFilter

_ALERTING_ACTIONS = frozenset({"review", "hold"})
_ALERTING_TYPES = frozenset({"challenge_result", "fraud_report", "label"})
"""What `CaseService.recorded` may turn into an alert; the rest of the log is skipped."""

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (else PAYGUARD_CONFIG).")
]


def register(app: typer.Typer) -> None:
    app.command("file-cases")(file_cases)


def file_cases(config: ConfigOption = None) -> None:
    """Open cases for the reviews, holds and fraud reports already recorded."""
    # imported here: every other command (a replay, a decide) would pay for the case and
    # list rooms at start-up (0.1-0.2 s of CPU, issue 11)
    from payguard.auth import AUTH_DB, AuditLog
    from payguard.cases import CaseService
    from payguard.lists import ListService

    settings = settings_or_exit(config)
    if not settings.ruleset.is_file():
        fail(f"no such ruleset file: {settings.ruleset}")
    engine = Engine.open(settings)
    audit = AuditLog(settings.data_dir / AUTH_DB)
    lists = ListService.open(settings.data_dir, settings.tokenizer(engine.features.knows), audit)
    cases = CaseService.open(engine, lists, audit, clock=lambda: time.time_ns() // 1_000_000)
    try:
        raising = [
            (event, decision)
            for _, event, decision in engine.recorder.newest(None, LogFilter())
            if decision.action in _ALERTING_ACTIONS or event.type in _ALERTING_TYPES
        ]
        for event, decision in reversed(raising):  # oldest first, as the server saw them
            cases.recorded(event, decision)
        cases.flush()
        summary = ", ".join(f"{q.queue}: {q.open} open" for q in cases.queues())
        err.print(f"{len(raising):,} records may raise alerts; open cases: {summary or 'none'}")
    finally:
        cases.close()
        lists.close()
        audit.close()
        engine.close()
