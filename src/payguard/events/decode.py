"""Decode raw JSON into validated, tokenized `Event`s: the only door into payguard.

Every rule of contract v1 that msgspec's type system cannot express (conditional required
fields, checksums, time formats, money precision) is checked here, and each failure names
the field. After `EventDecoder.decode` returns, no later stage re-validates.
"""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from payguard.events.contract import (
    CARRIER_TYPES,
    MONEY_TYPES,
    OUTCOME_TYPES,
    REF_REQUIRED_TYPES,
    STEP_UP_METHODS,
    Event,
    EventIn,
    Merchant,
    Payee,
)
from payguard.events.errors import EventError
from payguard.events.tokenize import Tokenizer, clear_pii_in
from payguard.types import DAY_MS, EpochMs, Fen

T = TypeVar("T")

MIN_TS_MS: EpochMs = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TS_MS: EpochMs = 4_102_444_800_000  # 2100-01-01T00:00:00Z
MAX_AMOUNT_FEN: Fen = 10**13
_CURRENCY_EXPONENT = {"JPY": 0, "KRW": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3}
_MSGSPEC_PATH = re.compile(r"at `\$(?P<path>[^`]*)`")
_MSGSPEC_FIELD = re.compile(r"field `(?P<name>[^`]+)`")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_NO_PHONE: tuple[None, None] = (None, None)


_SEXAGESIMAL: dict[str, int] = {f"{n:02d}": n for n in range(60)}
"""Two ASCII digits of a minute or a second (00..59) to their value."""
_HOURS: dict[str, int] = {}
"""`YYYY-MM-DDTHH` + offset of a time `parse_ts` parsed in full → epoch ms of that hour's
start (`_hour_and_rest`); cleared when it grows past `_HOURS_KEPT` (a stream's hours)."""
_HOURS_KEPT = 4_096


def _hour_and_rest(value: str) -> tuple[str, int] | None:
    """For `YYYY-MM-DDTHH:MM:SS` + `Z` or `±HH:MM` (no fraction): (the hour with its
    offset, the ms from that hour's start); None for any other shape or an MM or SS not
    00..59. The hour is valid only once a full parse of a time with it succeeded."""
    if len(value) not in (20, 25) or value[13] != ":" or value[16] != ":":
        return None
    minute = _SEXAGESIMAL.get(value[14:16])
    second = _SEXAGESIMAL.get(value[17:19])
    if minute is None or second is None:
        return None
    return value[:13] + value[19:], (minute * 60 + second) * 1_000


def parse_ts(value: str | int) -> EpochMs:
    """RFC 3339 with an explicit offset, or integer epoch milliseconds, to epoch ms.

    A time whose date, hour and offset a time parsed before had is its hour's start plus
    its minutes and seconds (`_HOURS`): events come in order, many to an hour, and the
    full parse was 3 % of a replay (issue 11). Exactly what the full parse answers: the
    rest of such a time is two valid two-digit numbers at fixed places."""
    if isinstance(value, int):
        ms = value
    elif (split := _hour_and_rest(value)) is not None and (
        start := _HOURS.get(split[0])  # one read: another thread may clear it
    ) is not None:
        ms = start + split[1]
    else:
        ms = _parse_rfc3339(value)
        if split is not None and MIN_TS_MS <= ms < MAX_TS_MS:
            if len(_HOURS) >= _HOURS_KEPT:
                _HOURS.clear()
            _HOURS[split[0]] = ms - split[1]
    if not MIN_TS_MS <= ms < MAX_TS_MS:
        raise EventError("ts", "outside 2000-01-01..2100-01-01 (epoch ms expected, not seconds)")
    return ms


def _parse_rfc3339(value: str) -> EpochMs:
    """The full parse of an RFC 3339 time with an explicit offset (EventError on `ts`)."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise EventError("ts", "not RFC 3339 (e.g. 2020-09-04T09:24:00+08:00)")
    if match.group("offset") is None:
        raise EventError("ts", "RFC 3339 time needs an offset, e.g. +08:00 or Z")
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        raise EventError("ts", "not a valid date and time (RFC 3339)") from None
    ms: EpochMs = (parsed - _EPOCH) // _ONE_MS  # exact: no float on the way
    return ms


def to_minor_units(amount: Decimal, currency: str, field: str = "amount") -> Fen:
    """Exact conversion of decimal major units to integer minor units; no float on the way."""
    if amount.is_finite() and amount > 0 and -20 <= amount.adjusted() <= 14:
        # The common case as an exact ratio (a quarter of the digit-by-digit path's cost);
        # every error, and any amount the ratio does not settle, takes the path below.
        numerator, denominator = amount.as_integer_ratio()
        scale: int = 10 ** _CURRENCY_EXPONENT.get(currency, 2)
        minor, rest = divmod(numerator * scale, denominator)
        if not rest and minor <= MAX_AMOUNT_FEN:
            return minor
    if not amount.is_finite():
        raise EventError(field, "must be a finite number")
    if amount <= 0:
        raise EventError(field, "must be greater than 0")
    exponent = _CURRENCY_EXPONENT.get(currency, 2)
    # Integer arithmetic on the coefficient: Decimal.scaleb rounds to the context precision
    # (28 digits) and overflows or underflows on huge exponents, so it is not exact.
    _, digits, exp = amount.as_tuple()
    assert isinstance(exp, int)  # finite
    shift = exp + exponent  # minor units = coefficient * 10**shift
    if shift < 0:
        if any(digits[shift:]):
            raise EventError(field, f"more than {exponent} decimal places for {currency}")
        digits, shift = digits[:shift], 0
    if len(digits) + shift > len(str(MAX_AMOUNT_FEN)):
        raise EventError(field, "too large")
    minor = int("".join(map(str, digits)) + "0" * shift)
    if minor > MAX_AMOUNT_FEN:
        raise EventError(field, "too large")
    return minor


def to_major_units(minor: Fen, currency: str) -> str:
    """Integer minor units back to the decimal string a client sends (`966800` CNY ->
    `"9668.00"`): exact, with the currency's own number of decimals, no float."""
    exponent = _CURRENCY_EXPONENT.get(currency, 2)
    if exponent == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{part:0{exponent}d}"


class EventDecoder:
    """Validates and tokenizes contract-v1 events. One instance per process; thread-safe reads."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._one = msgspec.json.Decoder(EventIn)
        self._many = msgspec.json.Decoder(list[EventIn])

    def decode(self, raw: bytes | str) -> Event:
        """One JSON object to an `Event`; raises `EventError` naming the field."""
        return self.validate(_shape(self._one, raw))

    def decode_many(self, raw: bytes | str) -> list[EventIn]:
        """A JSON array of events, checked for shape only; call `validate` on each."""
        return _shape(self._many, raw)

    def validate(self, wire: EventIn) -> Event:
        try:
            return self._validate(wire)
        except EventError as exc:
            exc.event_id = wire.event_id
            raise

    def _validate(self, wire: EventIn) -> Event:
        tok = self._tokenizer
        ts = parse_ts(wire.ts)
        if wire.type in CARRIER_TYPES:
            if wire.phone is None:
                raise EventError("phone", f"required for carrier signal `{wire.type}`")
        elif wire.user_id is None:
            raise EventError("user_id", f"required for `{wire.type}`")
        if wire.type in REF_REQUIRED_TYPES and wire.ref_event_id is None:
            raise EventError("ref_event_id", f"required for `{wire.type}`")
        if wire.type in MONEY_TYPES and wire.amount is None:
            raise EventError("amount", f"required for `{wire.type}`")
        if wire.type == "card_bind" and wire.card is None:
            raise EventError("card", "required for `card_bind`")
        _check_outcome_fields(wire)
        if wire.attrs:
            _check_attrs(wire.attrs)
        payee = None
        if wire.payee is not None:
            payee_card = tok.card(wire.payee.card, "payee.card") if wire.payee.card else None
            payee = Payee(id=wire.payee.id, card=payee_card, name=wire.payee.name)
        phone, phone_valid = tok.phone_plan(wire.phone) if wire.phone is not None else _NO_PHONE
        id_number = self._id_number(wire.id_number, ts) if wire.id_number is not None else None
        # Positional, in `Event`'s field order (each named): msgspec matched these 26
        # keywords at ~4 µs an event, a 10th of the decoder (issue 11); tests/events/
        # test_decode.py checks every field lands where its name says.
        return Event(
            wire.event_id,  # event_id
            wire.type,  # type
            ts,  # ts
            wire.user_id,  # user_id
            wire.device_id,  # device_id
            wire.ip,  # ip
            wire.user_agent,  # user_agent
            wire.city,  # city
            phone,  # phone
            id_number,  # id_number
            tok.card(wire.card, "card") if wire.card is not None else None,  # card
            (  # amount
                to_minor_units(wire.amount, wire.currency) if wire.amount is not None else None
            ),
            wire.currency,  # currency
            (  # merchant
                Merchant(id=wire.merchant.id, category=wire.merchant.category)
                if wire.merchant is not None
                else None
            ),
            payee,  # payee
            wire.channel,  # channel
            wire.success,  # success
            wire.method,  # method
            wire.ref_event_id,  # ref_event_id
            wire.attrs,  # attrs
            wire.outcome,  # outcome
            wire.label,  # label
            wire.source,  # source
            wire.scenario,  # scenario
            wire.note,  # note
            phone_valid,  # phone_valid
        )

    def _id_number(self, number: str, ts: EpochMs) -> str:
        """The ID number's token; its holder must be born by the event's day (a day of
        slack covers every time zone, as the birth date is a local date)."""
        token, born_ms = self._tokenizer.resident_id(number)
        if born_ms > ts + DAY_MS:
            raise EventError("id_number", "its birth date is after the event")
        return token


_OUTCOME_FIELDS: tuple[tuple[str, str], ...] = (
    ("outcome", "challenge_result"),
    ("label", "label"),
    ("source", "label"),
    ("scenario", "label"),
    ("note", "label"),
)
"""Fields that belong to one outcome type each: sent with another type they are refused,
not ignored (a `label` field on a payment is a client bug, not a verdict)."""


def _check_outcome_fields(wire: EventIn) -> None:
    """The fields `challenge_result` and `label` require, and no outcome field elsewhere.
    Whether the referenced decision offered the method is checked later, against the log
    (payguard.outcomes), since the decoder knows no decisions."""
    if (  # every other event: none of `_OUTCOME_FIELDS`, read without the loop (issue 11)
        wire.outcome is None
        and wire.label is None
        and wire.source is None
        and wire.scenario is None
        and wire.note is None
        and wire.type not in OUTCOME_TYPES
    ):
        return
    for field, owner in _OUTCOME_FIELDS:
        if getattr(wire, field) is not None and wire.type != owner:
            raise EventError(field, f"only for `{owner}`, not `{wire.type}`")
    if wire.type == "challenge_result":
        if wire.method is None:
            raise EventError("method", "required for `challenge_result`")
        if wire.method not in STEP_UP_METHODS:
            allowed = ", ".join(sorted(STEP_UP_METHODS))
            raise EventError("method", f"not a step-up method a challenge offers ({allowed})")
        if wire.outcome is None:
            raise EventError("outcome", "required for `challenge_result`")
        if wire.device_id is None:
            raise EventError("device_id", "required for `challenge_result`")
    elif wire.type == "label":
        if wire.label is None:
            raise EventError("label", "required for `label`")
        if wire.source is None:
            raise EventError("source", "required for `label`")
        if wire.note is not None and (kind := clear_pii_in(wire.note)):
            raise EventError("note", f"contains {kind} in clear; leave it out of the note")


def _check_attrs(attrs: dict[str, Any]) -> None:
    """Refuse clear PANs and ID numbers anywhere in `attrs`, nested objects and arrays too."""
    stack: list[tuple[str, Any]] = [("attrs", attrs)]
    while stack:  # iterative: nesting depth is bounded only by the body size
        path, value = stack.pop()
        if isinstance(value, str):
            if kind := clear_pii_in(value):
                raise EventError(path, f"contains {kind} in clear; use its own field")
        elif isinstance(value, dict):
            stack.extend((f"{path}.{key}", item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))


def _shape(decoder: "msgspec.json.Decoder[T]", raw: bytes | str) -> T:
    """Decode the wire shape, turning every failure into an `EventError`."""
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise _from_msgspec(exc, raw) from None
    except UnicodeDecodeError as exc:  # msgspec's answer to bad bytes inside a string
        raise EventError("$", not_utf8(exc), malformed=True) from None
    except RecursionError:  # msgspec's answer to very deep nesting
        raise EventError("$", NESTED_TOO_DEEPLY, _event_id_of(raw), malformed=True) from None


NESTED_TOO_DEEPLY = "malformed JSON: nested too deeply"
"""The reason every JSON edge gives for a body msgspec cannot descend (RecursionError)."""


def not_utf8(exc: UnicodeDecodeError) -> str:
    """The reason every edge gives for a body that is not UTF-8 (msgspec raises
    UnicodeDecodeError, not DecodeError, for bad bytes in a key or a string value)."""
    return f"malformed JSON: not valid UTF-8 at byte {exc.start}"


def _from_msgspec(exc: msgspec.DecodeError, raw: bytes | str) -> EventError:
    """Turn msgspec's message into (field path, reason) without echoing the payload."""
    path, reason = msgspec_field_and_reason(str(exc))
    if not isinstance(exc, msgspec.ValidationError):
        return EventError(path, f"malformed JSON: {reason}", _event_id_of(raw), malformed=True)
    if reason.startswith("Invalid enum value"):  # msgspec quotes the value: drop it
        reason = "Invalid enum value; see docs/events.md for the allowed values"
    return EventError(path, reason, _event_id_of(raw))


def msgspec_field_and_reason(message: str) -> tuple[str, str]:
    """msgspec's error message as (field path without `$.`, or `$` for the whole body;
    reason without the path). A missing or unknown field is named by the field itself.
    Shared by every edge that decodes with msgspec (events, OTP and hold requests)."""
    path_match = _MSGSPEC_PATH.search(message)
    path = path_match.group("path").lstrip(".") if path_match else ""
    name_match = _MSGSPEC_FIELD.search(message)
    if name_match and ("missing required" in message or "unknown field" in message):
        path = f"{path}.{name_match.group('name')}".lstrip(".")
    return path or "$", _MSGSPEC_PATH.sub("", message).strip(" -")


def _event_id_of(raw: bytes | str) -> str | None:
    """Best effort: the event_id of a payload that failed validation, for error lines."""
    try:
        obj: Any = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None
    if isinstance(obj, dict) and isinstance(obj.get("event_id"), str):
        return str(obj["event_id"])[:128]
    return None
