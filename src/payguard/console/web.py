"""What every console page shares: the services it reads, rendering, the session guard,
CSRF-checked forms and the audit entry an action writes.

Routes declare the scope they need in `opt={"scope": …}` (or `PUBLIC`); `session_guard`
reads the signed cookie, sends a visitor without a session to the login page and answers
403 to a user whose role lacks the scope. A state-changing handler reads its form through
`Page.form`, which refuses a request without the session's CSRF token.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import jinja2
import msgspec
from litestar import MediaType, Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.handlers import BaseRouteHandler
from markupsafe import Markup

from payguard.auth import AuditLog, UserStore
from payguard.cases import CaseService
from payguard.console.cache import Recent
from payguard.console.rule_versions import RuleVersions
from payguard.console.session import COOKIE, Session, Signer
from payguard.engine import Engine
from payguard.types import EpochMs

PREFIX: Final = "/console"
PUBLIC: Final = "public"
_SESSION_STATE: Final = "console_session"
FIGURES_TTL_S: Final = 60.0
QUEUE_SUMMARY_TTL_S: Final = 5.0


def now_ms() -> EpochMs:
    return time.time_ns() // 1_000_000


@dataclass
class ConsoleServices:
    """The services console pages call: the same ones the API routes call."""

    engine: Engine
    audit: AuditLog
    users: UserStore
    signer: Signer
    versions: RuleVersions
    cases: CaseService | None = None
    """The case service (payguard.cases) when the server runs one; None hides the queue."""
    clock: Callable[[], EpochMs] = now_ms
    figures: Recent[Any] = field(default_factory=lambda: Recent(FIGURES_TTL_S))
    """Counts over days of decisions (rules list, dashboard), by the days counted."""
    queue_summary: Recent[Any] = field(default_factory=lambda: Recent(QUEUE_SUMMARY_TTL_S))


class NeedsLogin(Exception):
    """No valid session: the guard's answer is a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class ConsoleRefusal(Exception):
    """403 (role lacks the scope, bad CSRF token) or 4xx for bad input, as an HTML page."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("payguard.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fen(amount: int | None) -> str:
    return "" if amount is None else f"¥{amount // 100:,}.{amount % 100:02d}"


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + " UTC"


def _json_script(value: Any) -> Markup:
    """JSON safe inside a <script> element (no `</script>` or `<!--` can close it)."""
    text = msgspec.json.encode(value).decode()
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


_templates.filters["fen"] = _fen
_templates.filters["when"] = _when
_templates.filters["json_script"] = _json_script


def html(body: str, status: int = 200) -> Response[str]:
    return Response(content=body, status_code=status, media_type=MediaType.HTML)


def render_page(
    template: str, session: Session | None, signer: Signer, status: int = 200, **context: Any
) -> Response[str]:
    """A whole page (or an htmx fragment: any template), with the session and its CSRF
    token in the context so every form can carry it."""
    csrf = signer.csrf_token(session) if session is not None else ""
    body = _templates.get_template(template).render(
        session=session, csrf=csrf, prefix=PREFIX, **context
    )
    return html(body, status)


def session_of(request: Request[Any, Any, Any]) -> Session:
    """The session the guard checked for this request."""
    session = request.scope.get("state", {}).get(_SESSION_STATE)
    if not isinstance(session, Session):
        raise NeedsLogin(PREFIX + "/")
    return session


def session_guard(services: ConsoleServices) -> Any:
    def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        needed = handler.opt.get("scope", "admin")
        if needed == PUBLIC:
            return
        session = services.signer.read(connection.cookies.get(COOKIE), services.clock())
        user = None if session is None else services.users.get(session.login)
        if session is None or user is None:
            raise NeedsLogin(connection.url.path)
        if not user.allows(needed):
            raise ConsoleRefusal(403, f"your role ({session.role}) may not do this ({needed})")
        connection.scope.setdefault("state", {})[_SESSION_STATE] = session

    return guard


def on_needs_login(request: Request[Any, Any, Any], exc: NeedsLogin) -> Response[str]:
    """A page → redirect to the login; an htmx request → tell htmx to go there itself."""
    target = f"{PREFIX}/login?next={quote(exc.next_path)}"
    if request.headers.get("hx-request"):
        return Response(content="", status_code=401, headers={"HX-Redirect": target})
    return Response(content="", status_code=303, headers={"Location": target})


def refusal_handler(signer: Signer) -> Any:
    def on_refusal(request: Request[Any, Any, Any], exc: ConsoleRefusal) -> Response[str]:
        session = request.scope.get("state", {}).get(_SESSION_STATE)
        return render_page("refused.html", session, signer, status=exc.status, reason=exc.reason)

    return on_refusal


async def checked_form(request: Request[Any, Any, Any], signer: Signer) -> dict[str, str]:
    """The posted form as text fields, after checking the session's CSRF token (a `csrf`
    field or the `X-CSRF-Token` header); 403 without it."""
    session = session_of(request)
    form = await request.form()
    fields = {key: str(value) for key, value in form.items() if isinstance(value, str)}
    token = fields.pop("csrf", None) or request.headers.get("x-csrf-token")
    if not signer.csrf_ok(session, token):
        raise ConsoleRefusal(403, "the form's CSRF token is missing or not this session's")
    return fields


def audit_action(
    services: ConsoleServices,
    session: Session,
    action: str,
    target: str,
    before: Any,
    after: Any,
) -> None:
    """One audit entry for a console action, by `user:<login>`."""
    services.audit.record(
        f"user:{session.login}",
        action,
        target,
        before,
        after,
        at_ms=services.clock(),
        actor_name=session.login,
    )


def session_cookie(value: str, *, secure: bool, max_age: int | None) -> Cookie:
    """HttpOnly, SameSite=Strict, scoped to the console's path."""
    return Cookie(
        key=COOKIE,
        value=value,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=secure,
        max_age=max_age,
    )


def required(fields: dict[str, str], name: str, *, max_len: int = 2000) -> str:
    """A required, trimmed form field, or 422 naming it."""
    value = fields.get(name, "").strip()
    if not value:
        raise ConsoleRefusal(422, f"{name}: required")
    if len(value) > max_len:
        raise ConsoleRefusal(422, f"{name}: at most {max_len} characters")
    return value
