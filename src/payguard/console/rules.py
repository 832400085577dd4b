"""Rules pages: the live rules with their figures, an editor that checks a draft as it is
typed, a backtest of the draft, publish, versions with author and diff, and roll back.

Checking and publishing go through `engine.parse_ruleset` and `engine.publish_ruleset`, as
`PUT /v1/ruleset` does; each publish and roll back is written to the audit log and to the
version history (`RuleVersions`).
"""

from typing import Any, Final

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from payguard.cel import RuleError
from payguard.console.draft import MAX_DAYS, backtest_draft
from payguard.console.rule_versions import RuleVersion, unified_diff
from payguard.console.shadow import ShadowError, in_shadow
from payguard.console.stats import figures_of
from payguard.console.web import (
    PREFIX,
    ConsoleRefusal,
    ConsoleServices,
    audit_action,
    checked_form,
    render_page,
    required,
    session_of,
)
from payguard.ruleset import Ruleset

FIGURE_DAYS: Final = 7
MAX_RULESET_CHARS: Final = 1024 * 1024
MAX_FORM_BYTES: Final = 4 * MAX_RULESET_CHARS
"""A ruleset form, URL-encoded: YAML punctuation and non-ASCII text grow when encoded."""


def check_draft(services: ConsoleServices, text: str) -> tuple[Ruleset | None, str | None]:
    """The draft compiled, or None and the error in words (the rule and the reason)."""
    try:
        return services.engine.parse_ruleset(text), None
    except RuleError as exc:
        return None, str(exc)
    except (ValueError, TypeError, RecursionError) as exc:
        return None, str(exc)[:500]


def _publish(
    services: ConsoleServices, ruleset: Ruleset, login: str, note: str, back_to: int | None
) -> RuleVersion:
    engine = services.engine
    services.versions.ensure_current(
        engine.ruleset.version, engine.ruleset.source, at_ms=services.clock()
    )
    engine.publish_ruleset(ruleset)
    return services.versions.add(
        ruleset.version, ruleset.source, author=login, at_ms=services.clock(), note=note,
        rolled_back_to=back_to,
    )  # fmt: skip


def rule_handlers(services: ConsoleServices) -> list[HTTPRouteHandler]:
    signer, engine, versions = services.signer, services.engine, services.versions

    @get("/rules", sync_to_thread=False, opt={"scope": "decisions:read"})
    def rules_page(request: Request[Any, Any, Any]) -> Response[str]:
        figures = figures_of(services, FIGURE_DAYS)
        return render_page(
            "rules.html", session_of(request), signer, figures=figures, days=FIGURE_DAYS,
            ruleset=engine.ruleset,
        )  # fmt: skip

    @get("/rules/edit", sync_to_thread=False, opt={"scope": "rules:admin"})
    def editor(request: Request[Any, Any, Any]) -> Response[str]:
        return render_page(
            "rule_editor.html", session_of(request), signer, source=engine.ruleset.source,
            version=engine.ruleset.version, max_days=MAX_DAYS,
        )  # fmt: skip

    @post("/rules/check", opt={"scope": "rules:admin"}, request_max_body_size=MAX_FORM_BYTES)
    async def check(request: Request[Any, Any, Any]) -> Response[str]:
        fields = await checked_form(request, signer)
        ruleset, error = check_draft(services, fields.get("source", "")[:MAX_RULESET_CHARS])
        return render_page(
            "rule_check.html", session_of(request), signer, ruleset=ruleset, error=error
        )

    @post("/rules/backtest", opt={"scope": "rules:admin"}, request_max_body_size=MAX_FORM_BYTES)
    async def backtest(request: Request[Any, Any, Any]) -> Response[str]:
        fields = await checked_form(request, signer)
        days_text = fields.get("days", "7").strip()
        if not days_text.isdigit() or not 1 <= int(days_text) <= MAX_DAYS:
            raise ConsoleRefusal(422, f"days: a whole number from 1 to {MAX_DAYS}")
        ruleset, error = check_draft(
            services, required(fields, "source", max_len=MAX_RULESET_CHARS)
        )
        if ruleset is None:
            return render_page(
                "rule_check.html", session_of(request), signer, ruleset=None, error=error
            )
        figures = backtest_draft(engine, ruleset, int(days_text))
        return render_page("rule_backtest.html", session_of(request), signer, figures=figures)

    @post("/rules/publish", opt={"scope": "rules:admin"}, request_max_body_size=MAX_FORM_BYTES)
    async def publish(request: Request[Any, Any, Any]) -> Response[str]:
        fields = await checked_form(request, signer)
        session = session_of(request)
        source = required(fields, "source", max_len=MAX_RULESET_CHARS)
        shadow = fields.get("shadow") == "1"
        if shadow:  # the live rules as they are, the draft's new and changed ones in shadow
            try:
                source = in_shadow(source, engine.ruleset.source)
            except ShadowError as exc:
                raise ConsoleRefusal(422, str(exc)) from None
        ruleset, error = check_draft(services, source)
        if ruleset is None:
            raise ConsoleRefusal(422, f"source: {error}")
        previous = engine.ruleset.version
        note = fields.get("note", "").strip()[:500]
        if shadow:
            note = f"in shadow: {note}" if note else "in shadow"
        version = _publish(services, ruleset, session.login, note, None)
        audit_action(
            services, session, "ruleset.publish", "ruleset", {"version": previous},
            {"version": ruleset.version, "number": version.number, "note": note},
        )  # fmt: skip
        return Response(
            content="", status_code=303, headers={"Location": f"{PREFIX}/rules/versions"}
        )

    @get("/rules/versions", sync_to_thread=False, opt={"scope": "decisions:read"})
    def versions_page(request: Request[Any, Any, Any]) -> Response[str]:
        versions.ensure_current(
            engine.ruleset.version, engine.ruleset.source, at_ms=services.clock()
        )
        listed = versions.list()
        diffs = {}
        for v in listed:
            before = versions.previous(v.number)
            old = before.source if before is not None else ""
            old_name = f"#{before.number} {before.version}" if before is not None else "(none)"
            diffs[v.number] = unified_diff(old, v.source, old_name, f"#{v.number} {v.version}")
        return render_page(
            "rule_versions.html", session_of(request), signer, versions=listed, diffs=diffs,
            active=engine.ruleset.version,
        )  # fmt: skip

    @post("/rules/rollback/{number:int}", opt={"scope": "rules:admin"})
    async def rollback(request: Request[Any, Any, Any], number: FromPath[int]) -> Response[str]:
        fields = await checked_form(request, signer)
        session = session_of(request)
        target = versions.get(number)
        if target is None:
            raise ConsoleRefusal(404, f"version: no version #{number}")
        ruleset, error = check_draft(services, target.source)
        if ruleset is None:
            raise ConsoleRefusal(409, f"version #{number} no longer compiles: {error}")
        previous = engine.ruleset.version
        note = fields.get("note", "").strip()[:500] or f"roll back to #{number}"
        version = _publish(services, ruleset, session.login, note, number)
        audit_action(
            services, session, "ruleset.rollback", "ruleset", {"version": previous},
            {"version": ruleset.version, "number": version.number, "to": number},
        )  # fmt: skip
        return Response(
            content="", status_code=303, headers={"Location": f"{PREFIX}/rules/versions"}
        )

    return [rules_page, editor, check, backtest, publish, versions_page, rollback]
