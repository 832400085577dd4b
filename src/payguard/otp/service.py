"""The OTP service: transaction-bound one-time codes whose every step payguard decides.

`send` binds a fresh code to one transaction (account, amount, currency, counterparty)
and to the context that asked (device, session, IP), records an `otp_send` event through
the engine, stores only the code's keyed hash, and hands the message to the delivery.
`verify` judges a presented code against its challenge (closed? expired? same context?
same transaction? right code?), spends it or counts the failure atomically in the OTP
store, and records an `otp_verify` event with the result, so rules see every attempt:
wrong codes (`count_otp_fail_by_user_1h`), codes presented from another device (the
fake-customer-service pattern), codes tried against another amount.

Two decisions gate an SMS code, because an SMS code proves nothing while the phone is
at risk (SIM swap, forwarding): with `ref_event_id`, the decision of the payment being
authorised must have offered `sms_otp`; and payguard's own decision for the `otp_send`
must allow it (allow, or a challenge that offers `sms_otp`). Otherwise nothing is sent.
"""

import hmac
import logging
import sqlite3
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, NamedTuple, ParamSpec, TypeVar, cast

import msgspec

from payguard.config import Settings
from payguard.decision import Decision
from payguard.events import Event, EventError, Merchant, Payee, Tokenizer, to_minor_units
from payguard.otp.binding import Binding, Context, Counterparty, context_refusal, session_digest
from payguard.otp.codes import code_hash, code_matches, new_challenge_id, new_code
from payguard.otp.delivery import (
    Delivery,
    DeliveryError,
    JsonlOutbox,
    MemoryOutbox,
    OutboundMessage,
)
from payguard.otp.messages import major_units, render
from payguard.otp.store import Challenge, OtpStore, State
from payguard.otp.wire import (
    MerchantRef,
    OtpError,
    PayeeRef,
    SendRequest,
    SendResult,
    VerifyRequest,
    VerifyResult,
    VerifyResultCode,
)
from payguard.types import Fen

if TYPE_CHECKING:
    from payguard.engine import Engine

log = logging.getLogger("payguard.otp")
P = ParamSpec("P")
T = TypeVar("T")

OTP_DATABASE_FILE: Final = "otp.db"
OUTBOX_FILE: Final = "otp-outbox.jsonl"
PURPOSES: Final = ("payment", "transfer", "withdrawal")
"""What a code can authorise: money leaving the account, to a merchant or a payee."""
Clock = Callable[[], int]
"""Now, in epoch milliseconds (injected by tests, so expiry is tested without sleeping)."""
_CLOSED: Final[dict[str, VerifyResultCode]] = {
    "used": "used",
    "locked": "locked",
    "expired": "expired",
    "invalidated": "invalidated",
    "superseded": "superseded",
    "undelivered": "undelivered",
}


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class OtpConfig(msgspec.Struct, frozen=True):
    """The rules a challenge is judged by (from `Settings.otp_*`)."""

    ttl_s: int = 300
    max_attempts: int = 5
    same_device: bool = True
    same_session: bool = True
    same_ip: bool = False
    signature: str = "payguard"
    """The sender signature that opens every message (【payguard】)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "OtpConfig":
        return cls(
            ttl_s=settings.otp_ttl_s,
            max_attempts=settings.otp_max_attempts,
            same_device=settings.otp_same_device,
            same_session=settings.otp_same_session,
            same_ip=settings.otp_same_ip,
        )


class _Verdict(NamedTuple):
    result: VerifyResultCode
    state: State
    code_matched: bool | None
    """Whether the code itself was right, for a refusal on context or binding (a right
    code from another device is a code read out to someone); None when not compared."""


class OtpService:
    """Sends and verifies transaction-bound codes over one engine (not thread-safe, like
    the engine: the HTTP layer calls it from the event loop only)."""

    def __init__(
        self,
        engine: "Engine",
        store: OtpStore,
        delivery: Delivery,
        *,
        config: OtpConfig | None = None,
        clock: Clock = wall_clock_ms,
        codes: Callable[[], str] = new_code,
    ) -> None:
        self.engine = engine
        self.store = store
        self.delivery = delivery
        self.config = config or OtpConfig.from_settings(engine.settings)
        self._clock = clock
        self._codes = codes
        self._key = engine.settings.token_key.encode()
        self._tokenizer = Tokenizer(self._key)

    @classmethod
    def for_engine(
        cls,
        engine: "Engine",
        *,
        delivery: Delivery | None = None,
        config: OtpConfig | None = None,
        clock: Clock = wall_clock_ms,
        codes: Callable[[], str] = new_code,
    ) -> "OtpService":
        """The default wiring: `otp.db` and the outbox file in the engine's data
        directory when it records to SQLite; both in memory for an in-memory engine."""
        settings = engine.settings
        on_disk = engine.recorder.on_disk
        store = OtpStore(settings.data_dir / OTP_DATABASE_FILE if on_disk else ":memory:")
        if delivery is None:
            if settings.otp_outbox is not None:
                delivery = JsonlOutbox(settings.otp_outbox)
            elif on_disk:
                delivery = JsonlOutbox(settings.data_dir / OUTBOX_FILE)
            else:
                delivery = MemoryOutbox()
        return cls(engine, store, delivery, config=config, clock=clock, codes=codes)

    def close(self) -> None:
        self.store.close()

    # -- send -------------------------------------------------------------------------------

    def send(self, request: SendRequest) -> SendResult:
        """Bind a new code to the request's transaction and context, record `otp_send`,
        store the code's hash and deliver the message; raises OtpError otherwise."""
        now = self._clock()
        config = self.config
        self._require_context(request)
        phone = self._edge(self._tokenizer.phone, request.phone) if request.phone else None
        counterparty = self._counterparty(request.merchant, request.payee)
        currency = request.currency
        amount = (
            self._fen(request.amount, currency or "CNY") if request.amount is not None else None
        )
        purpose: str | None = request.purpose
        if request.ref_event_id is not None:
            amount, currency, counterparty, purpose = self._from_reference(
                request, amount, counterparty
            )
        if amount is None:
            raise OtpError(
                422,
                "invalid_request",
                "amount",
                "required: a code is bound to the exact amount (or give ref_event_id)",
            )
        if counterparty is None:
            raise OtpError(
                422,
                "invalid_request",
                "merchant",
                "required: give the `merchant` or the `payee` the code authorises paying",
            )
        currency = currency or "CNY"
        purpose = purpose or ("payment" if counterparty.merchant is not None else "transfer")
        digest = Binding(request.user_id, amount, currency, counterparty).digest(self._key)
        challenge_id = new_challenge_id()
        event = Event(
            event_id=f"{challenge_id}-send",
            type="otp_send",
            ts=now,
            user_id=request.user_id,
            device_id=request.device_id,
            ip=request.ip,
            phone=phone,
            amount=amount,
            currency=currency,
            merchant=counterparty.merchant,
            payee=counterparty.payee,
            channel=request.channel,
            method="sms",
            ref_event_id=request.ref_event_id,
            attrs={"challenge_id": challenge_id, "purpose": purpose, "lang": request.lang},
        )
        decision = self._record(event)
        if not _permits_sms(decision):
            log.info(
                "otp refused challenge=%s user=%r: decision %s",
                challenge_id,
                request.user_id,
                decision.action,
            )
            raise OtpError(
                409,
                "otp_refused",
                "$",
                f"payguard decided `{_offer(decision)}` for this code request"
                f"{_because(decision)}; no code was sent",
                event.event_id,
            )
        code = self._codes()
        expires_at = now + config.ttl_s * 1000
        kind, party, _ = counterparty.key()
        self.store.insert(
            Challenge(
                challenge_id=challenge_id,
                send_event_id=event.event_id,
                user_id=request.user_id,
                binding_digest=digest,
                code_hash=code_hash(self._key, challenge_id, digest, code),
                purpose=purpose,
                amount=amount,
                currency=currency,
                counterparty=f"{kind}:{party}",
                device_id=request.device_id,
                session=session_digest(self._key, request.session_id),
                ip=request.ip,
                ref_event_id=request.ref_event_id,
                created_at=now,
                expires_at=expires_at,
            )
        )
        text = render(
            lang=request.lang,
            purpose=purpose,
            amount=amount,
            currency=currency,
            payee=counterparty.label(request.lang),
            code=code,
            ttl_s=config.ttl_s,
            signature=config.signature,
        )
        message = OutboundMessage(
            challenge_id=challenge_id,
            user_id=request.user_id,
            lang=request.lang,
            text=text,
            created_at=now,
            expires_at=expires_at,
            phone_token=phone,
        )
        try:
            self.delivery.deliver(message)
        except DeliveryError as exc:
            self.store.close_unused(challenge_id, "undelivered", now)
            log.warning("otp delivery failed challenge=%s: %s", challenge_id, exc)
            raise OtpError(502, "delivery_failed", "$", str(exc), event.event_id) from None
        log.info(
            "otp sent challenge=%s user=%r purpose=%s via %s",
            challenge_id,
            request.user_id,
            purpose,
            self.delivery.name,
        )
        return SendResult(
            challenge_id=challenge_id,
            event_id=event.event_id,
            purpose=purpose,
            amount=major_units(amount, currency),
            currency=currency,
            expires_at=expires_at,
            delivery=self.delivery.name,
            decision=decision,
        )

    def _require_context(self, request: SendRequest) -> None:
        """Every part of the context that verification compares must be known at send."""
        config = self.config
        for wanted, value, field, setting in (
            (config.same_device, request.device_id, "device_id", "otp_same_device"),
            (config.same_session, request.session_id, "session_id", "otp_same_session"),
            (config.same_ip, request.ip, "ip", "otp_same_ip"),
        ):
            if wanted and value is None:
                raise OtpError(
                    422,
                    "invalid_request",
                    field,
                    f"required: codes are bound to the {field.removesuffix('_id')} that asks "
                    f"for them ({setting})",
                )

    def _from_reference(
        self, request: SendRequest, amount: Fen | None, counterparty: Counterparty | None
    ) -> tuple[Fen, str, Counterparty, str]:
        """The binding of the decided event a send refers to, checked against what the
        request states; refused unless that event's decision offered `sms_otp`."""
        ref = request.ref_event_id
        assert ref is not None
        decision = self.engine.stored_decision(ref)
        event = self.engine.recorder.get_event(ref)
        if decision is None or event is None:
            raise OtpError(
                404, "not_found", "ref_event_id", "no recorded event with this event_id", ref
            )
        if event.user_id != request.user_id:
            raise OtpError(
                409, "otp_refused", "user_id", "the referenced event is another account's", ref
            )
        if not _offers_sms(decision):
            raise OtpError(
                409,
                "otp_refused",
                "ref_event_id",
                f"the decision for {ref!r} was `{_offer(decision)}`, which does not offer "
                f"sms_otp{_because(decision)}; no SMS code may authorise it",
                ref,
            )
        if event.type not in PURPOSES or event.amount is None:
            raise OtpError(
                409,
                "otp_refused",
                "ref_event_id",
                f"the referenced event is a `{event.type}`, not a payment, transfer or "
                "withdrawal with an amount",
                ref,
            )
        recorded = Counterparty(
            merchant=event.merchant, payee=event.payee if event.merchant is None else None
        )
        if event.merchant is None and event.payee is None:
            raise OtpError(
                409, "otp_refused", "ref_event_id", "the referenced event names no payee", ref
            )
        mismatch = _first_difference(request, amount, counterparty, event, recorded)
        if mismatch is not None:
            field, what = mismatch
            raise OtpError(
                409, "otp_refused", field, f"differs from the referenced event's {what}", ref
            )
        if counterparty is None:  # the recorded one (no display name for a merchant)
            counterparty = recorded
        return event.amount, event.currency, counterparty, event.type

    # -- verify -----------------------------------------------------------------------------

    def verify(self, request: VerifyRequest) -> VerifyResult:
        """Judge a presented code, spend it or count the failure, and record `otp_verify`."""
        now = self._clock()
        counterparty = self._counterparty(request.merchant, request.payee)
        if request.amount is None:
            raise OtpError(
                422, "invalid_request", "amount", "required: the amount the code authorises"
            )
        if counterparty is None:
            raise OtpError(
                422,
                "invalid_request",
                "merchant",
                "required: the `merchant` or the `payee` the code authorises paying",
            )
        amount = self._fen(request.amount, request.currency)
        presented = Binding(request.user_id, amount, request.currency, counterparty)
        digest = presented.digest(self._key)
        context = Context(
            request.device_id, session_digest(self._key, request.session_id), request.ip
        )
        with self.store.transaction():
            challenge = self.store.get(request.challenge_id)
            if challenge is None:
                raise OtpError(
                    404,
                    "not_found",
                    "challenge_id",
                    "no such challenge (unknown, or closed more than a day ago)",
                )
            verdict = self._judge(challenge, request.code, digest, context, now)
            failed = verdict.result == "wrong_code"
            closed_at = None if verdict.state == "live" else now
            self.store.record_attempt(
                challenge.challenge_id, failed=failed, state=verdict.state, closed_at=closed_at
            )
        attempt = challenge.verifications + 1
        failures = challenge.failures + int(failed)
        locked_now = challenge.state == "live" and verdict.state == "locked"
        attrs: dict[str, Any] = {
            "challenge_id": challenge.challenge_id,
            "result": verdict.result,
            "attempt": attempt,
            "purpose": challenge.purpose,
        }
        if verdict.code_matched is not None and verdict.result not in ("ok", "wrong_code"):
            attrs["code_matched"] = verdict.code_matched
        if locked_now:
            attrs["locked"] = True
        event = Event(
            event_id=f"{challenge.challenge_id}-verify-{attempt}",
            type="otp_verify",
            ts=now,
            user_id=challenge.user_id,
            device_id=request.device_id,
            ip=request.ip,
            channel=request.channel,
            method="sms",
            success=verdict.result == "ok",
            ref_event_id=challenge.send_event_id,
            attrs=attrs,
        )
        decision = self._record(event)
        level = logging.WARNING if verdict.result.startswith("other_") else logging.INFO
        log.log(
            level,
            "otp verify challenge=%s attempt=%d result=%s%s",
            challenge.challenge_id,
            attempt,
            verdict.result,
            " (locked)" if locked_now else "",
        )
        left = self.config.max_attempts - failures if verdict.state == "live" else 0
        return VerifyResult(
            challenge_id=challenge.challenge_id,
            verified=verdict.result == "ok",
            result=verdict.result,
            attempts_left=max(0, left),
            event_id=event.event_id,
            decision=decision,
        )

    def _judge(
        self, challenge: Challenge, code: str, digest: str, context: Context, now: int
    ) -> _Verdict:
        """The result of presenting `code` (for the transaction `digest`, from `context`),
        and the challenge's next state. Order matters: a closed or expired challenge is
        refused before its code is looked at; a code from another context or for another
        transaction kills the challenge (the code is now in other hands, or the
        transaction changed) whether or not it was right."""
        config = self.config
        if challenge.state != "live":
            return _Verdict(_CLOSED.get(challenge.state, "invalidated"), challenge.state, None)
        if now >= challenge.expires_at:
            return _Verdict("expired", "expired", None)
        matched = code_matches(
            self._key, challenge.challenge_id, challenge.binding_digest, code, challenge.code_hash
        )
        asked = Context(challenge.device_id, challenge.session, challenge.ip)
        refusal = context_refusal(
            asked,
            context,
            device=config.same_device,
            session=config.same_session,
            ip=config.same_ip,
        )
        if refusal is not None:
            return _Verdict(cast(VerifyResultCode, refusal), "invalidated", matched)
        if not hmac.compare_digest(digest.encode(), challenge.binding_digest.encode()):
            return _Verdict("binding_changed", "invalidated", matched)
        if not matched:
            locked = challenge.failures + 1 >= config.max_attempts
            return _Verdict("wrong_code", "locked" if locked else "live", False)
        return _Verdict("ok", "used", True)

    # -- shared -----------------------------------------------------------------------------

    def _record(self, event: Event) -> Decision:
        """Decide and durably record an OTP event like any other; the public decision."""
        engine = self.engine
        try:
            decision, _ = engine.process(event, commit=True)  # no state change if refused
            engine.flush()
        except Exception as exc:
            engine.discard_pending()
            if isinstance(exc, OSError | sqlite3.Error):
                log.exception("recording %s failed", event.type)
                raise OtpError(
                    503, "storage_unavailable", "$", "the event log could not be written"
                ) from None
            raise
        return decision.public()

    def _counterparty(
        self, merchant: MerchantRef | None, payee: PayeeRef | None
    ) -> Counterparty | None:
        if merchant is not None and payee is not None:
            raise OtpError(
                422, "invalid_request", "payee", "give exactly one of `merchant` and `payee`"
            )
        if merchant is not None:
            return Counterparty(
                merchant=Merchant(id=merchant.id, category=merchant.category),
                merchant_name=merchant.name,
            )
        if payee is not None:
            card = payee.card
            token = self._edge(self._tokenizer.card, card, "payee.card") if card else None
            return Counterparty(payee=Payee(id=payee.id, card=token, name=payee.name))
        return None

    def _fen(self, amount: Decimal, currency: str) -> Fen:
        return self._edge(to_minor_units, amount, currency, "amount")

    @staticmethod
    def _edge(check: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a contract check (tokenize, convert), turning EventError into a 422."""
        try:
            return check(*args, **kwargs)
        except EventError as exc:
            raise OtpError(422, "invalid_request", exc.field, exc.reason) from None


def _permits_sms(decision: Decision) -> bool:
    """payguard's answer to the `otp_send` lets an SMS code go out."""
    return decision.action == "allow" or _offers_sms(decision)


def _offers_sms(decision: Decision) -> bool:
    challenge = decision.challenge
    return decision.action == "challenge" and isinstance(challenge, list) and "sms_otp" in challenge


def _offer(decision: Decision) -> str:
    challenge = decision.challenge
    if decision.action == "challenge" and isinstance(challenge, list):
        return f"challenge: {', '.join(challenge)}"
    return decision.action


def _because(decision: Decision) -> str:
    codes = [r.code for r in decision.reasons]
    return f" (reasons: {', '.join(codes)})" if codes else ""


def _first_difference(
    request: SendRequest,
    amount: Fen | None,
    counterparty: Counterparty | None,
    event: Event,
    recorded: Counterparty,
) -> tuple[str, str] | None:
    """The first part of the binding the request states differently from the event."""
    if amount is not None and amount != event.amount:
        return "amount", "amount"
    if request.currency is not None and request.currency != event.currency:
        return "currency", "currency"
    if counterparty is not None and counterparty.key() != recorded.key():
        field = "merchant" if counterparty.merchant is not None else "payee"
        return field, "merchant or payee"
    if request.purpose is not None and request.purpose != event.type:
        return "purpose", "type"
    return None
