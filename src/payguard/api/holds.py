"""`GET /v1/holds`, `GET /v1/holds/{hold_id}` and `POST /v1/holds` over the engine's hold
book (docs/verification.md, "Holds").

A held transfer waits for its owner: these routes let the bank's trusted channels (the app
on a long-known device, the counter, the call centre after its own checks) and its staff
revoke or release it. Times are wall-clock epoch ms: a hold past its `release_ts` reads as
released. Errors use the API's `{"error", "field", "reason"}` body; the routes answer them
themselves, so `app.py` only lists them.
"""

import logging
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody
from litestar.params import FromPath, QueryParameter, RawBody
from litestar.types import ExceptionHandlersMap

from payguard.api.access import actor_of
from payguard.api.errors import documented_error, literal_param
from payguard.api.openapi import schema_of
from payguard.auth import AuditLog
from payguard.engine import Engine
from payguard.events import (
    NESTED_TOO_DEEPLY,
    msgspec_field_and_reason,
    not_utf8,
    to_major_units,
)
from payguard.holds import HOLD_STATES, Hold, HoldError, HoldState

log = logging.getLogger("payguard.api")

ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="at most this many, 1 to 1000")]
UserFilter = Annotated[str | None, QueryParameter(description="one account's holds")]


class HoldChange(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /v1/holds`: revoke or release one hold. `by` is who asked: the customer
    (through a trusted channel, named in `note`) or staff."""

    hold_id: ShortText
    action: Literal["revoke", "release"]
    by: Literal["customer", "staff"]
    note: Annotated[str, msgspec.Meta(max_length=512)] | None = None


class HoldView(Hold, frozen=True, kw_only=True):
    """A hold as the API shows it: `amount` stays in fen (contract v1), and `amount_major`
    is the same money as the client sent it, a decimal string in the currency's major unit
    (`"6000.00"` for 600000 fen CNY)."""

    amount_major: str

    @classmethod
    def of(cls, hold: Hold) -> "HoldView":
        return cls(
            **msgspec.structs.asdict(hold),
            amount_major=to_major_units(hold.amount, hold.currency),
        )


class HoldList(msgspec.Struct):
    holds: list[HoldView]


class HoldProblem(msgspec.Struct, omit_defaults=True):
    """400/422 (a bad body: `field` names it), 404 (unknown hold), 409 (no longer held)."""

    error: str
    reason: str
    field: str | None = None
    state: str | None = None


class _BadBody(Exception):
    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.field, self.reason = status, field, reason


_decode_change = msgspec.json.Decoder(HoldChange).decode


@dataclass
class HoldChangeOperation(Operation):
    """The body's schema, derived from `HoldChange` (the handler reads it raw)."""

    def __post_init__(self) -> None:
        schema = schema_of(HoldChange, title="Hold change")
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=schema)}, required=True
        )


_encode = msgspec.json.Encoder().encode


def _answer(status: int, body: HoldProblem) -> Response[bytes]:
    return Response(content=_encode(body), status_code=status, media_type=MediaType.JSON)


def _on_hold_error(_: Request[Any, Any, Any], exc: HoldError) -> Response[bytes]:
    if exc.status == 404:
        return _answer(404, HoldProblem(error="not_found", field="hold_id", reason=exc.reason))
    state = exc.reason.split()[1] if exc.reason.startswith("already ") else None
    return _answer(409, HoldProblem(error="conflict", reason=exc.reason, state=state))


def _on_bad_body(_: Request[Any, Any, Any], exc: _BadBody) -> Response[bytes]:
    error = "bad_request" if exc.status == 400 else "invalid_request"
    return _answer(exc.status, HoldProblem(error=error, field=exc.field, reason=exc.reason))


def decode_change(body: bytes) -> HoldChange:
    """The body, or _BadBody naming the field (400 for bad JSON, 422 for a bad value)."""
    try:
        return _decode_change(body)
    except msgspec.ValidationError as exc:
        field, reason = msgspec_field_and_reason(str(exc))
        raise _BadBody(422, "body" if field == "$" else field, reason) from None
    except msgspec.DecodeError as exc:
        raise _BadBody(400, "body", f"not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise _BadBody(400, "body", not_utf8(exc)) from None
    except RecursionError:
        raise _BadBody(400, "body", NESTED_TOO_DEEPLY) from None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def hold_handlers(engine: Engine, audit: AuditLog | None = None) -> list[HTTPRouteHandler]:
    """The hold routes over `engine.holds`, for `create_app`; each revoke or release is
    written to `audit` (who, the hold, held → its new state)."""
    errors: ExceptionHandlersMap = {HoldError: _on_hold_error, _BadBody: _on_bad_body}
    problem = documented_error(HoldProblem)

    @get(
        "/v1/holds",
        sync_to_thread=False,
        summary="List held, released or revoked operations",
        description=(
            "Newest first, as they stand now; filter by `user_id` and `state` (`held`, "
            "`released` or `revoked`)."
        ),
        tags=["holds"],
        exception_handlers=errors,
        responses={400: problem},
    )
    def list_holds(
        request: Request[Any, Any, Any], user_id: UserFilter = None, limit: Limit = 100
    ) -> HoldList:
        hold_state = literal_param(request.query_params.get("state"), HOLD_STATES, "state")
        found = engine.holds.find(user_id=user_id, state=hold_state, now_ms=_now_ms(), limit=limit)
        return HoldList([HoldView.of(hold) for hold in found])

    @get(
        "/v1/holds/{hold_id:str}",
        sync_to_thread=False,
        summary="One hold, as it stands now",
        tags=["holds"],
        exception_handlers=errors,
        responses={404: problem},
    )
    def get_hold(hold_id: FromPath[str]) -> HoldView:
        hold = engine.holds.get(hold_id)
        if hold is None:
            raise HoldError(hold_id, "no such hold", 404)
        return HoldView.of(hold.as_of(_now_ms()))

    @post(
        "/v1/holds",
        sync_to_thread=False,
        status_code=200,
        summary="Revoke or release a hold",
        description=(
            'Body `{"hold_id", "action": "revoke"|"release", "by": "customer"|"staff", '
            '"note"}`. Revoked, the money never leaves; released, it is paid out now. '
            "Only a hold still held can change (409 otherwise, with its state)."
        ),
        tags=["holds"],
        exception_handlers=errors,
        operation_class=HoldChangeOperation,
        request_max_body_size=engine.settings.max_body_bytes,
        responses={400: problem, 404: problem, 409: problem, 422: problem},
    )
    def change_hold(request: Request[Any, Any, Any], body: RawBody) -> HoldView:
        change = decode_change(body)
        state: HoldState = "revoked" if change.action == "revoke" else "released"
        now = _now_ms()
        hold = engine.resolve_hold(change.hold_id, state, at_ms=now, by=change.by, note=change.note)
        log.info("hold %s %s by %s", hold.hold_id, hold.state, hold.resolved_by)
        if audit is not None:
            actor, actor_name = actor_of(request)
            audit.record(
                actor,
                f"hold.{change.action}",
                hold.hold_id,
                {"state": "held"},
                {"state": hold.state, "by": hold.resolved_by},
                at_ms=now,
                actor_name=actor_name,
            )
        return HoldView.of(hold)

    return [list_holds, get_hold, change_hold]
