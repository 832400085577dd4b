"""`POST /v1/otp/send` and `POST /v1/otp/verify` over one `OtpService` (docs/otp.md).

Bodies are read raw and decoded by the OTP service's own shapes (`payguard.otp.wire`),
so a rejection names its field in the same `{"error", "field", "reason"}` body as the rest
of the API, and Litestar never parses or logs a body that may hold a card or phone
number. Like the event handlers, these run on the event loop (`sync_to_thread=False`):
the engine and the service are not thread-safe, and each call costs microseconds.
"""

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.params import RawBody
from litestar.types import ExceptionHandlersMap

from payguard.api.errors import documented_error
from payguard.api.openapi import schema_of
from payguard.engine import Engine
from payguard.otp import (
    OtpError,
    OtpErrorBody,
    OtpService,
    SendRequest,
    SendResult,
    VerifyRequest,
    VerifyResult,
    decode_send,
    decode_verify,
)

SEND_SCHEMA = schema_of(
    SendRequest,
    title="OTP send request",
    description=(
        "Give exactly one of `merchant` and `payee`, and `amount` — or `ref_event_id`, the "
        "decided event being authorised, whose binding they then default to (and must "
        'equal). `amount` in decimal major units ("300.00"); `phone` E.164, tokenized, '
        "never stored in clear; `device_id`, `session_id`, `ip` required while "
        "otp_same_device, otp_same_session, otp_same_ip are on. Unknown fields are rejected."
    ),
)
VERIFY_SCHEMA = schema_of(
    VerifyRequest,
    title="OTP verify request",
    description=(
        "The code, and the transaction and context it is presented for: any difference "
        "from what the code was bound to refuses it. Unknown fields are rejected."
    ),
)
SEND_EXAMPLE: dict[str, Any] = {
    "user_id": "u_10086",
    "device_id": "dfp_e93b5d10",
    "session_id": "sess-7f3a",
    "amount": "300.00",
    "merchant": {"id": "m_5521", "category": "ecommerce", "name": "京东商城"},
    "phone": "+8613800138000",
    "channel": "app",
}
VERIFY_EXAMPLE: dict[str, Any] = {
    "challenge_id": "otp_5f0c6d1e9a2b4c7d8e9f0a1b2c3d4e5f",
    "code": "123456",
    "user_id": "u_10086",
    "device_id": "dfp_e93b5d10",
    "session_id": "sess-7f3a",
    "amount": "300.00",
    "merchant": {"id": "m_5521"},
    "channel": "app",
}


def _body(schema: Schema, example: dict[str, Any], description: str) -> RequestBody:
    return RequestBody(
        content={"application/json": OpenAPIMediaType(schema=schema, example=example)},
        description=description,
        required=True,
    )


@dataclass
class OtpSendOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _body(SEND_SCHEMA, SEND_EXAMPLE, "The transaction to bind a code to.")


@dataclass
class OtpVerifyOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _body(VERIFY_SCHEMA, VERIFY_EXAMPLE, "A code and its transaction.")


def _spec(description: str) -> ResponseSpec:
    return documented_error(OtpErrorBody, description)


_encode_json = msgspec.json.Encoder().encode


def _on_otp_error(_: Request[Any, Any, Any], exc: OtpError) -> Response[bytes]:
    """An OtpError as the API's error body (the field named), with its status."""
    return Response(
        content=_encode_json(exc.body()), status_code=exc.status, media_type=MediaType.JSON
    )


def otp_handlers(engine: Engine, service: OtpService) -> list[HTTPRouteHandler]:
    """The two OTP routes over `service` (whose engine is `engine`), for `create_app`.
    They answer OtpError themselves (route-level handler), so they depend on nothing in
    `app.py` and `app.py` only lists them."""
    settings = engine.settings
    errors: ExceptionHandlersMap = {OtpError: _on_otp_error}

    @post(
        "/v1/otp/send",
        sync_to_thread=False,
        status_code=200,
        summary="Send a one-time code bound to one transaction",
        description=(
            "Binds a new 6-digit code to the account, the exact amount and currency, the "
            "merchant or payee, and the device and session asking; records an `otp_send` "
            "event (decided like any other) and hands the message (zh or en: amount, payee, "
            "purpose, and the warning that staff never ask for codes) to the delivery. "
            "The answer never holds the code. Refused (409) when payguard's decision for "
            "the `otp_send`, or for the `ref_event_id` being authorised, does not allow an "
            "SMS code."
        ),
        tags=["otp"],
        request_max_body_size=settings.max_body_bytes,
        operation_class=OtpSendOperation,
        exception_handlers=errors,
        responses={
            400: _spec("Malformed JSON"),
            404: _spec("Unknown ref_event_id"),
            409: _spec(
                "Refused: the decision does not allow an SMS code, or the binding "
                "differs from the referenced event"
            ),
            422: _spec("Invalid request (the field is named)"),
            502: _spec("The delivery failed; the code was closed unused"),
        },
    )
    def otp_send(body: RawBody) -> SendResult:
        return service.send(decode_send(body))

    @post(
        "/v1/otp/verify",
        sync_to_thread=False,
        status_code=200,
        summary="Verify a one-time code for the transaction it was bound to",
        description=(
            "200 for every judged attempt: `verified` and `result` (`ok`, `wrong_code`, "
            "`expired`, `used`, `locked`, `binding_changed`, `other_device`, "
            "`other_session`, `other_ip`, ...), `attempts_left`, and payguard's decision "
            "for the recorded `otp_verify` event. Single use; dead after the configured "
            "number of wrong codes, on expiry, or when presented from another device or "
            "session or for another amount or payee."
        ),
        tags=["otp"],
        request_max_body_size=settings.max_body_bytes,
        operation_class=OtpVerifyOperation,
        exception_handlers=errors,
        responses={
            400: _spec("Malformed JSON"),
            404: _spec("Unknown challenge_id"),
            422: _spec("Invalid request (the field is named)"),
        },
    )
    def otp_verify(body: RawBody) -> VerifyResult:
        return service.verify(decode_verify(body))

    return [otp_send, otp_verify]
