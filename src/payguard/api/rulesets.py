"""`/v1/ruleset`: read the active ruleset, validate and hot-swap a new one (audited)."""

import logging
import time
from typing import Any, Final

import msgspec
from litestar import Request, get, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import RawBody

from payguard.api.access import actor_of
from payguard.api.errors import (
    ApiError,
    BadField,
    InvalidRuleset,
    NotFound,
    TooLarge,
    documented_error,
)
from payguard.api.openapi import RulesetOperation
from payguard.auth import AuditLog
from payguard.cel import RuleError
from payguard.engine import Engine

log = logging.getLogger("payguard.api")

MAX_RULESET_BYTES: Final = 1024 * 1024
RULESET_MEDIA_TYPES: Final = frozenset(
    {"text/yaml", "application/yaml", "application/x-yaml", "text/x-yaml", "text/plain"}
)


class RulesetInfo(msgspec.Struct):
    version: str
    source: str


class RulesetVersion(msgspec.Struct):
    version: str


def ruleset_handlers(engine: Engine, audit: AuditLog) -> list[HTTPRouteHandler]:
    """The ruleset routes over `engine`; every swap is written to `audit`."""

    @get(
        "/v1/ruleset",
        sync_to_thread=False,
        summary="The active ruleset",
        description="Its version (`<file version>+<sha256 prefix>`) and YAML source.",
        tags=["rules"],
    )
    def get_ruleset() -> RulesetInfo:
        ruleset = engine.ruleset
        return RulesetInfo(version=ruleset.version, source=ruleset.source)

    @put(
        "/v1/ruleset",
        sync_to_thread=False,
        status_code=200,
        summary="Validate and hot-swap the ruleset",
        description=(
            "Body: ruleset YAML (content type text/yaml, application/yaml or text/plain). "
            "Every rule is compiled and every identifier checked against the feature "
            "catalog; on error → 422 naming the rule, with the position of a syntax error "
            "or the nearest known name for an unknown identifier, and the active ruleset "
            "stays. On success later decisions carry the new version; feature state is "
            "untouched. Workers sharing a board (docs/scale.md) all take it within a "
            "second, and a restarted one starts from it; a lone process keeps it in "
            "memory: a restart loads the configured file."
        ),
        tags=["rules"],
        request_max_body_size=MAX_RULESET_BYTES,
        operation_class=RulesetOperation,
        responses={
            400: documented_error(BadField, "Not UTF-8"),
            413: documented_error(TooLarge, "Body too large"),
            415: documented_error(NotFound, "Not YAML/text"),
            422: documented_error(InvalidRuleset, "Ruleset rejected"),
        },
    )
    def put_ruleset(request: Request[Any, Any, Any], body: RawBody) -> RulesetVersion:
        media_type, _ = request.content_type
        if media_type not in RULESET_MEDIA_TYPES:
            raise ApiError(
                415, {"error": "unsupported_media_type", "reason": "send YAML as text/yaml"}
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            reason = f"not valid UTF-8 at byte {exc.start}"
            bad = BadField(error="bad_request", field="body", reason=reason)
            raise ApiError(400, bad) from None
        try:
            ruleset = engine.parse_ruleset(text)
        except RuleError as exc:
            log.info("rejected ruleset: rule=%r reason=%r", exc.rule, exc.message)
            raise ApiError(422, exc.to_dict()) from None
        except (ValueError, TypeError, RecursionError) as exc:
            log.info("rejected ruleset: %s", type(exc).__name__)
            raise ApiError(
                422, InvalidRuleset(error="invalid_ruleset", rule="-", reason=str(exc)[:500])
            ) from None
        previous = engine.ruleset.version
        engine.publish_ruleset(ruleset)
        log.warning("ruleset swapped: %s -> %s", previous, ruleset.version)
        actor, actor_name = actor_of(request)
        audit.record(
            actor,
            "ruleset.publish",
            "ruleset",
            {"version": previous},
            {"version": ruleset.version},
            at_ms=time.time_ns() // 1_000_000,
            actor_name=actor_name,
        )
        return RulesetVersion(version=ruleset.version)

    return [get_ruleset, put_ruleset]
