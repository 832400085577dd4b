"""Logging in and out of the console (a password checked against `auth.users`)."""

from typing import Any

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromQuery

from payguard.console.session import SESSION_MS
from payguard.console.web import (
    PREFIX,
    PUBLIC,
    ConsoleServices,
    audit_action,
    checked_form,
    render_page,
    session_cookie,
    session_of,
)


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never an open redirect to another host."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/"


def login_handlers(services: ConsoleServices) -> list[HTTPRouteHandler]:
    signer = services.signer

    @get("/login", sync_to_thread=False, opt={"scope": PUBLIC})
    def login_page(next: FromQuery[str | None] = None) -> Response[str]:
        return render_page("login.html", None, signer, next=_safe_next(next), error=None)

    @post("/login", opt={"scope": PUBLIC})
    async def log_in(request: Request[Any, Any, Any]) -> Response[str]:
        form = await request.form()
        login, password = str(form.get("login", "")), str(form.get("password", ""))
        target = _safe_next(str(form.get("next", "")))
        user = services.users.verify(login.strip(), password) if login and password else None
        if user is None:
            services.audit.record(
                "anonymous", "console.login_failed", login[:64] or "-", None, None,
                at_ms=services.clock(),
            )  # fmt: skip
            error = "Unknown login or wrong password."
            return render_page("login.html", None, signer, 401, next=target, error=error)
        session, cookie = signer.issue(user.login, user.role, services.clock())
        audit_action(services, session, "console.login", user.login, None, {"role": user.role})
        secure = request.url.scheme == "https"
        return Response(
            content="",
            status_code=303,
            headers={"Location": target},
            cookies=[session_cookie(cookie, secure=secure, max_age=SESSION_MS // 1000)],
        )

    @post("/logout", opt={"scope": "decisions:read"})
    async def log_out(request: Request[Any, Any, Any]) -> Response[str]:
        await checked_form(request, signer)
        session = session_of(request)
        audit_action(services, session, "console.logout", session.login, None, None)
        return Response(
            content="",
            status_code=303,
            headers={"Location": PREFIX + "/login"},
            cookies=[session_cookie("", secure=request.url.scheme == "https", max_age=0)],
        )

    return [login_page, log_in, log_out]
