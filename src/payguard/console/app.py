"""`Console`: the analyst console's routes under `/console/`, for `api.create_app` to mount.

It owns what only the console uses — the users table's connection, the session key and
the ruleset version history — and calls the same services as the API for everything else
(the engine's recorder, outcomes, hold book and ruleset; the audit log; cases and lists).
"""

from collections.abc import Callable
from pathlib import Path

from litestar import Response, Router, get
from litestar.static_files import create_static_files_router

from payguard.auth import AuditLog, UserStore
from payguard.auth.keys import AUTH_DB
from payguard.cases import CaseService
from payguard.console.dashboard import dashboard_handlers
from payguard.console.entities import entity_handlers
from payguard.console.login import login_handlers
from payguard.console.queue import case_handlers
from payguard.console.rule_versions import CONSOLE_DB, RuleVersions
from payguard.console.rules import rule_handlers
from payguard.console.session import Signer, load_secret
from payguard.console.web import (
    PREFIX,
    ConsoleRefusal,
    ConsoleServices,
    NeedsLogin,
    now_ms,
    on_needs_login,
    refusal_handler,
    session_guard,
)
from payguard.engine import Engine
from payguard.types import EpochMs

STATIC_DIR = Path(__file__).parent / "static"


class Console:
    """The console over one engine and audit log; `close` on shutdown."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        *,
        data_dir: Path,
        cases: CaseService | None = None,
        clock: Callable[[], EpochMs] = now_ms,
    ) -> None:
        self.services = ConsoleServices(
            engine=engine,
            audit=audit,
            users=UserStore(data_dir / AUTH_DB),
            signer=Signer(load_secret(data_dir)),
            versions=RuleVersions(data_dir / CONSOLE_DB),
            cases=cases,
            clock=clock,
        )

    def router(self) -> Router:
        services = self.services

        @get("/", sync_to_thread=False, opt={"scope": "decisions:read"})
        def home() -> Response[str]:
            target = "/queue" if services.cases is not None else "/decisions"
            return Response(content="", status_code=303, headers={"Location": PREFIX + target})

        static = create_static_files_router(
            path="/static", directories=[STATIC_DIR], opt={"scope": "public"}
        )
        return Router(
            path=PREFIX,
            route_handlers=[
                home,
                static,
                *login_handlers(services),
                *entity_handlers(services),
                *case_handlers(services),
                *rule_handlers(services),
                *dashboard_handlers(services),
            ],
            guards=[session_guard(services)],
            exception_handlers={
                NeedsLogin: on_needs_login,
                ConsoleRefusal: refusal_handler(services.signer),
            },
            include_in_schema=False,
        )

    def close(self) -> None:
        self.services.users.close()
        self.services.versions.close()
