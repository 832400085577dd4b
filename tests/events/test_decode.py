"""The edge: contract-v1 validation, money and time conversion, PII tokenization."""

import contextlib
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, get_args

import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from payguard.events import (
    CARRIER_TYPES,
    FEEDBACK_TYPES,
    MONEY_TYPES,
    Event,
    EventDecoder,
    EventError,
    Tokenizer,
    parse_ts,
    to_minor_units,
)
from payguard.events.contract import CardIn, EventType, Merchant, Payee
from payguard.events.decode import MAX_AMOUNT_FEN, MAX_TS_MS, MIN_TS_MS

KEY = b"test-key-0123456789abcdef"
OTHER_KEY = b"another-key-0123456789abcdef"
TS = 1_599_182_640_000  # 2020-09-04T09:24:00+08:00
PAN = "6222021234567890128"
PAN_BAD_LUHN = "4367421234567890123"  # not UnionPay (62), so Luhn applies
PAYEE_PAN = "6217001234567890122"
ID_NUMBER = "11010519491231002X"
PHONE = "+8613800138000"
TOKEN_RE = re.compile(r"(pan|idn|tel)_[0-9a-f]{32}")

ALL_TYPES = list(get_args(EventType))
DECODER = EventDecoder(Tokenizer(KEY))


def minimal(type_: str) -> dict[str, Any]:
    """The smallest valid event of `type_`."""
    event: dict[str, Any] = {"event_id": f"evt-{type_}", "type": type_, "ts": TS}
    if type_ in CARRIER_TYPES:
        event["phone"] = PHONE
    else:
        event["user_id"] = "u_10086"
    if type_ in MONEY_TYPES:
        event["amount"] = "1.00"
    if type_ == "card_bind":
        event["card"] = {"token": "vault_1"}
    if type_ in {"otp_verify", "challenge_result", "label"} | FEEDBACK_TYPES:
        event["ref_event_id"] = "evt-earlier"
    if type_ == "challenge_result":
        event.update(method="face", outcome="passed", device_id="dfp_1")
    if type_ == "label":
        event.update(label="not_fraud", source="analyst")
    return event


def encode(event: dict[str, Any]) -> bytes:
    return msgspec.json.encode(event)


def decode(event: dict[str, Any], decoder: EventDecoder = DECODER) -> Event:
    return decoder.decode(encode(event))


def error_of(event: dict[str, Any] | bytes | str) -> EventError:
    raw = event if isinstance(event, bytes | str) else encode(event)
    with pytest.raises(EventError) as info:
        DECODER.decode(raw)
    return info.value


def with_(type_: str = "login", **fields: Any) -> dict[str, Any]:
    return {**minimal(type_), **fields}


def without(type_: str, field: str) -> dict[str, Any]:
    event = minimal(type_)
    del event[field]
    return event


# --- types and required fields -------------------------------------------------------------


def test_type_list_is_the_documented_one() -> None:
    assert set(ALL_TYPES) == {
        *("register", "login", "logout", "password_reset", "phone_change"),
        *("profile_change", "kyc_verify"),
        *("sim_swap", "line_suspend", "line_resume", "call_forward_set", "sms_forward_set"),
        *("card_bind", "card_unbind", "otp_send", "otp_verify"),
        *("payment", "transfer", "withdrawal", "loan_apply", "loan_disburse"),
        *("investment_buy", "investment_redeem", "refund", "fraud_report", "chargeback"),
        *("label", "challenge_result"),
    }
    assert len(ALL_TYPES) == 28


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_every_type_accepted_with_minimal_fields(type_: str) -> None:
    event = decode(minimal(type_))
    assert event.type == type_
    assert event.event_id == f"evt-{type_}"
    assert event.ts == TS
    assert event.currency == "CNY"
    assert event.attrs == {}


@pytest.mark.parametrize("type_", sorted(CARRIER_TYPES))
def test_carrier_signal_needs_phone_not_user_id(type_: str) -> None:
    assert decode(minimal(type_)).user_id is None
    assert error_of(without(type_, "phone")).field == "phone"
    # a user_id does not stand in for the phone
    assert error_of({**without(type_, "phone"), "user_id": "u_1"}).field == "phone"


@pytest.mark.parametrize("type_", sorted(set(ALL_TYPES) - CARRIER_TYPES))
def test_non_carrier_types_need_user_id(type_: str) -> None:
    err = error_of({**without(type_, "user_id"), "phone": PHONE})
    assert err.field == "user_id"
    assert type_ in err.reason


@pytest.mark.parametrize("type_", sorted(MONEY_TYPES))
def test_money_types_need_amount(type_: str) -> None:
    assert error_of(without(type_, "amount")).field == "amount"


@pytest.mark.parametrize(
    "type_", ["otp_verify", "fraud_report", "chargeback", "label", "challenge_result"]
)
def test_ref_event_id_required(type_: str) -> None:
    assert error_of(without(type_, "ref_event_id")).field == "ref_event_id"


def test_card_bind_needs_card() -> None:
    assert error_of(without("card_bind", "card")).field == "card"


@pytest.mark.parametrize("type_", ["loan_disburse", "otp_send", "login", "refund"])
def test_ref_event_id_optional_elsewhere(type_: str) -> None:
    event = decode(with_(type_, ref_event_id="evt-x"))
    assert event.ref_event_id == "evt-x"
    assert decode(minimal(type_)).ref_event_id is None


@pytest.mark.parametrize("field", ["event_id", "type", "ts"])
def test_always_required(field: str) -> None:
    assert error_of(without("login", field)).field == field


@pytest.mark.parametrize("event_id", ["", "x" * 129])
def test_event_id_length(event_id: str) -> None:
    assert error_of(with_(event_id=event_id)).field == "event_id"
    assert decode(with_(event_id="x" * 128)).event_id == "x" * 128


def test_amount_optional_outside_money_types_but_still_checked() -> None:
    assert decode(with_("chargeback", amount="10.00")).amount == 1000
    assert error_of(with_("chargeback", amount="-1")).field == "amount"


# --- time ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2020-09-04T09:24:00+08:00", TS),
        ("2020-09-04T01:24:00Z", TS),
        ("2020-09-04T01:24:00z", TS),
        ("2020-09-04t01:24:00+00:00", TS),
        ("2020-09-04 01:24:00Z", TS),
        ("2020-09-03T20:24:00-05:00", TS),
        ("2020-09-04T01:24:00.123Z", TS + 123),
        ("2020-09-04T01:24:00.5Z", TS + 500),
        ("2020-09-04T01:24:00.123999999Z", TS + 123),  # truncated, not rounded
        (TS, TS),
        (MIN_TS_MS, MIN_TS_MS),
        (MAX_TS_MS - 1, MAX_TS_MS - 1),
        ("2000-01-01T00:00:00Z", MIN_TS_MS),
    ],
)
def test_time_forms(ts: str | int, expected: int) -> None:
    assert decode(with_(ts=ts)).ts == expected


@pytest.mark.parametrize(
    "ts",
    [
        "2020-09-04T09:24:00",  # naive: no offset
        "2020-09-04",  # a date is not a time
        "yesterday",
        "",
        "1599182640000",  # epoch ms must be a JSON integer, not a string
        "2020-09-04T09:24+08:00",  # seconds are required by RFC 3339
        "20200904T092400Z",  # ISO 8601 basic format is not RFC 3339
        "2020-W36-5T09:24:00Z",  # week date
        "2020-09-04T09:24:00+0800",  # offset without colon
        "2020-02-30T00:00:00Z",  # no such day
        "2016-12-31T23:59:60Z",  # leap seconds are not representable
        "2020-09-04T09:24:00+24:00",
        "2020-09-04T09:24:00Z\n",
        "２０２０-09-04T09:24:00Z",  # full-width digits
        1_599_182_640,  # seconds instead of ms
        0,
        -1,
        MIN_TS_MS - 1,
        MAX_TS_MS,
        "2100-01-01T00:00:00Z",
        "1999-12-31T23:59:59.999Z",
        10**30,
        1_599_182_640_000.0,  # a float is not an integer
        True,
        None,
    ],
)
def test_time_rejected(ts: Any) -> None:
    err = error_of(with_(ts=ts))
    assert err.field == "ts"
    assert err.event_id == "evt-login"


def test_naive_time_reason_mentions_offset() -> None:
    assert "offset" in error_of(with_(ts="2020-09-04T09:24:00")).reason


def test_seconds_reason_mentions_milliseconds() -> None:
    assert "ms" in error_of(with_(ts=1_599_182_640)).reason


def test_ts_checked_before_conditional_fields() -> None:
    """Regression: a bad `ts` with no user_id used to report `user_id`."""
    assert error_of({"event_id": "e1", "type": "login", "ts": "yesterday"}).field == "ts"
    assert error_of({"event_id": "e2", "type": "sim_swap", "ts": 5}).field == "ts"
    assert error_of({"event_id": "e3", "type": "payment", "ts": "x", "user_id": "u"}).field == "ts"


@given(
    st.integers(MIN_TS_MS, MAX_TS_MS - 1),
    st.integers(-14 * 60, 14 * 60).map(lambda minutes: minutes - minutes % 15),
)
def test_rfc3339_is_exact_to_the_millisecond(ms: int, offset_minutes: int) -> None:
    tz = timezone(timedelta(minutes=offset_minutes))
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    text = when.astimezone(tz).isoformat(timespec="milliseconds")
    assert parse_ts(text) == ms
    assert parse_ts(ms) == ms


# --- money ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "fen"),
    [
        ("0.1", "CNY", 10),
        (0.1, "CNY", 10),
        ("0.2", "CNY", 20),
        ("0.3", "CNY", 30),
        (0.3, "CNY", 30),
        ("0.01", "CNY", 1),
        ("88.50", "CNY", 8850),
        ("88.500", "CNY", 8850),  # trailing zeros are not extra precision
        (88.5, "CNY", 8850),
        ("4999.00", "CNY", 499_900),
        (20000.5, "CNY", 2_000_050),
        ("1", "CNY", 100),
        (1, "CNY", 100),
        (1e2, "CNY", 10_000),
        ("1E+2", "CNY", 10_000),
        ("19.99", "USD", 1999),
        ("1000", "JPY", 1000),
        (1000, "JPY", 1000),
        ("1000.0", "JPY", 1000),
        ("5000", "KRW", 5000),
        ("1.234", "BHD", 1234),
        ("100000000000", "CNY", MAX_AMOUNT_FEN),
        ("10000000000000", "JPY", MAX_AMOUNT_FEN),
        ("1.15", "CNY", 115),  # 1.15 * 100 == 114.99999999999999 in float
        (1.15, "CNY", 115),
        ("0.29", "CNY", 29),  # int(0.29 * 100) == 28 in float
        (0.29, "CNY", 29),
        ("99999999999.99", "CNY", 9_999_999_999_999),
        (99999999999.99, "CNY", 9_999_999_999_999),
    ],
)
def test_amount_conversion_exact(amount: str | float, currency: str, fen: int) -> None:
    event = decode(with_("payment", amount=amount, currency=currency))
    assert event.amount == fen
    assert isinstance(event.amount, int)
    assert event.currency == currency


def test_point_one_plus_point_two_is_point_three() -> None:
    a = decode(with_("payment", amount="0.1")).amount
    b = decode(with_("payment", amount=0.2)).amount
    c = decode(with_("payment", amount="0.3")).amount
    assert a is not None and b is not None
    assert a + b == c == 30


def test_number_amount_read_from_its_digits_not_a_float() -> None:
    raw = b'{"event_id":"e","type":"payment","ts":1599182640000,"user_id":"u","amount":0.29}'
    assert DECODER.decode(raw).amount == 29


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("88.888", "CNY"),
        ("0.001", "CNY"),
        (0.001, "CNY"),
        ("1.5", "JPY"),
        ("0.1", "KRW"),
        ("1.2345", "BHD"),
        ("0", "CNY"),
        (0, "CNY"),
        ("0.00", "CNY"),
        ("-0", "CNY"),
        ("-1", "CNY"),
        (-0.01, "CNY"),
        ("NaN", "CNY"),
        ("nan", "CNY"),
        ("-NaN", "CNY"),
        ("sNaN", "CNY"),
        ("Infinity", "CNY"),
        ("-Infinity", "CNY"),
        ("inf", "CNY"),
        ("100000000000.01", "CNY"),
        ("100000000001", "CNY"),
        (1e400, "CNY"),
        ("1E+999999999", "CNY"),  # used to raise decimal.Overflow, not EventError
        ("1E-999999999", "CNY"),  # used to be accepted as 0 fen
        ("0.01000000000000000000000000000001", "CNY"),  # used to round to 1 fen
        ("abc", "CNY"),
        ("", "CNY"),
        (True, "CNY"),
        ([1], "CNY"),
        ({"value": "1"}, "CNY"),
    ],
)
def test_amount_rejected(amount: Any, currency: str) -> None:
    err = error_of(with_("payment", amount=amount, currency=currency))
    assert err.field == "amount"


def test_amount_precision_reason_names_currency() -> None:
    assert "CNY" in error_of(with_("payment", amount="88.888")).reason
    assert "JPY" in error_of(with_("payment", amount="1.5", currency="JPY")).reason


@pytest.mark.parametrize("currency", ["cny", "CN", "CNYX", "", "人民币", 156, None])
def test_currency_shape(currency: Any) -> None:
    assert error_of(with_("payment", currency=currency)).field == "currency"


@given(
    st.decimals(
        min_value=Decimal("0.01"),
        max_value=Decimal("100000000000"),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_to_minor_units_matches_exact_decimal_arithmetic(amount: Decimal) -> None:
    assert to_minor_units(amount, "CNY") == int(amount * 100)
    # and through the wire, as a string and as a JSON number
    assert decode(with_("payment", amount=str(amount))).amount == int(amount * 100)
    raw = encode(with_("payment", amount="AMOUNT")).replace(b'"AMOUNT"', str(amount).encode())
    assert DECODER.decode(raw).amount == int(amount * 100)


@given(st.decimals(allow_nan=True, allow_infinity=True), st.sampled_from(["CNY", "JPY", "BHD"]))
def test_to_minor_units_only_raises_event_error(amount: Decimal, currency: str) -> None:
    try:
        fen = to_minor_units(amount, currency)
    except EventError as exc:
        assert exc.field == "amount"
    else:
        assert 0 < fen <= MAX_AMOUNT_FEN
        exponent = {"CNY": 2, "JPY": 0, "BHD": 3}[currency]
        assert Decimal(fen) == amount.scaleb(exponent)


# --- cards ---------------------------------------------------------------------------------


def test_card_number_is_tokenized_keeping_bin_and_last4() -> None:
    event = decode(with_("card_bind", card={"number": PAN, "bank": "ICBC", "kind": "debit"}))
    assert event.card is not None
    assert TOKEN_RE.fullmatch(event.card.token)
    assert event.card.token.startswith("pan_")
    assert event.card.bin == "622202"
    assert event.card.last4 == "0128"
    assert event.card.bank == "ICBC"
    assert event.card.kind == "debit"


def test_card_token_kept_as_given() -> None:
    event = decode(with_("card_bind", card={"token": "vault_c0ffee", "kind": "credit"}))
    assert event.card is not None
    assert event.card.token == "vault_c0ffee"
    assert event.card.bin is None
    assert event.card.last4 is None
    assert event.card.kind == "credit"


@pytest.mark.parametrize(
    "card",
    [
        {"number": PAN, "token": "vault_1"},
        {},
        {"bank": "ICBC"},
        {"number": None, "token": None},
    ],
)
def test_card_needs_exactly_one_of_number_and_token(card: dict[str, Any]) -> None:
    err = error_of(with_("card_bind", card=card))
    assert err.field == "card"
    assert "exactly one" in err.reason


def test_payee_card_needs_exactly_one_of_number_and_token() -> None:
    payee = {"id": "p_1", "card": {"number": PAYEE_PAN, "token": "t"}}
    assert error_of(with_("transfer", payee=payee)).field == "payee.card"


@pytest.mark.parametrize(
    "number",
    [
        PAN_BAD_LUHN,
        "12345678901",  # 11 digits
        "62220212345678901280",  # 20 digits
        "6222-0212-3456-7890-12X",
        "",
        "٦٢٢٢٠٢١٢٣٤٥٦٧٨٩٠١٢٨",  # Arabic-Indic digits
        f"{PAN}\n",
    ],
)
def test_bad_card_number(number: str) -> None:
    assert error_of(with_("card_bind", card={"number": number})).field == "card.number"


def test_luhn_failure_reason() -> None:
    assert "Luhn" in error_of(with_("card_bind", card={"number": PAN_BAD_LUHN})).reason


def test_bad_payee_card_number_names_the_payee_path() -> None:
    """Regression: used to report `card.number` for the payee's card."""
    payee = {"id": "p_1", "card": {"number": PAN_BAD_LUHN}}
    assert error_of(with_("transfer", payee=payee)).field == "payee.card.number"
    # and the cached validation does not leak the payee path into the top-level card
    assert error_of(with_("card_bind", card={"number": PAN_BAD_LUHN})).field == "card.number"


def test_payee_with_card() -> None:
    payee = {"id": "p_1", "name": "李四", "card": {"number": PAYEE_PAN, "bank": "CCB"}}
    event = decode(with_("transfer", payee=payee))
    assert event.payee is not None
    assert event.payee.id == "p_1"
    assert event.payee.name == "李四"
    assert event.payee.card is not None
    assert event.payee.card.token.startswith("pan_")
    assert (event.payee.card.bin, event.payee.card.last4) == ("621700", "0122")


def test_card_separators_do_not_change_the_token() -> None:
    plain = decode(with_("card_bind", card={"number": PAN})).card
    spaced = decode(with_("card_bind", card={"number": "6222 0212 3456 7890 128"})).card
    dashed = decode(with_("card_bind", card={"number": "6222-0212-3456-7890-128"})).card
    assert plain == spaced == dashed


# --- ID numbers and phones -----------------------------------------------------------------


def test_id_number_tokenized_and_case_insensitive() -> None:
    upper = decode(with_(id_number=ID_NUMBER)).id_number
    lower = decode(with_(id_number=ID_NUMBER.lower())).id_number
    assert upper is not None and upper.startswith("idn_")
    assert TOKEN_RE.fullmatch(upper)
    assert upper == lower


@pytest.mark.parametrize(
    "id_number",
    [
        "110105194912310021",  # wrong check character
        "110105194912310022",
        "110105194913310025",  # month 13
        "11010519491231002",  # 17 characters
        "11010549123100",  # 14 digits
        "",
        "11010519491231002Y",
    ],
)
def test_bad_id_number(id_number: str) -> None:
    err = error_of(with_(id_number=id_number))
    assert err.field == "id_number"
    assert err.event_id == "evt-login"


def test_phone_tokenized() -> None:
    event = decode(with_(phone=PHONE))
    assert event.phone is not None
    assert event.phone.startswith("tel_")
    assert TOKEN_RE.fullmatch(event.phone)


def test_phone_token_is_per_subscriber() -> None:
    """The parser accepts the national prefix after +86; the token must not depend on it."""
    assert decode(with_(phone="+86013800138000")).phone == decode(with_(phone=PHONE)).phone


@pytest.mark.parametrize(
    "phone",
    [
        "13800138000",  # no country code
        "8613800138000",  # no plus
        "+86 138 0013 8000",  # spaces
        "+86-138-0013-8000",
        "+8612345",  # too short for CN
        "+86138001380001234",  # too long
        "+0123456789",
        "+861381234567890",  # 13 national digits outside the IoT ranges
        "+86١٣800138000",  # Arabic-Indic digits
        f"{PHONE}\n",
        "",
    ],
)
def test_bad_phone(phone: str) -> None:
    assert error_of(with_(phone=phone)).field == "phone"


def test_bad_phone_on_carrier_signal() -> None:
    assert error_of(with_("sim_swap", phone="13800138000")).field == "phone"


# --- tokens --------------------------------------------------------------------------------


def full_event() -> dict[str, Any]:
    return with_(
        "card_bind",
        phone=PHONE,
        id_number=ID_NUMBER,
        card={"number": PAN},
        payee={"id": "p_1", "card": {"number": PAYEE_PAN}},
    )


def test_tokens_deterministic_per_key() -> None:
    first = decode(full_event())
    again = decode(full_event())
    fresh = decode(full_event(), EventDecoder(Tokenizer(KEY)))
    assert first == again == fresh


def test_tokens_differ_across_keys() -> None:
    ours = decode(full_event())
    theirs = decode(full_event(), EventDecoder(Tokenizer(OTHER_KEY)))
    assert ours.card is not None and theirs.card is not None
    assert ours.payee is not None and ours.payee.card is not None
    assert theirs.payee is not None and theirs.payee.card is not None
    assert ours.card.token != theirs.card.token
    assert ours.payee.card.token != theirs.payee.card.token
    assert ours.id_number != theirs.id_number
    assert ours.phone != theirs.phone
    # BIN and last 4 are not secrets; they do not depend on the key
    assert (ours.card.bin, ours.card.last4) == (theirs.card.bin, theirs.card.last4)


def test_token_format_is_truncated_hmac_sha256() -> None:
    def expected(kind: str, value: str) -> str:
        digest = hmac.new(KEY, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}_{digest[:32]}"

    event = decode(full_event())
    assert event.card is not None
    assert event.card.token == expected("pan", PAN)
    assert event.id_number == expected("idn", ID_NUMBER)
    assert event.phone == expected("tel", PHONE)


def test_distinct_values_distinct_tokens() -> None:
    a = decode(with_("card_bind", card={"number": PAN})).card
    b = decode(with_("card_bind", card={"number": PAYEE_PAN})).card
    assert a is not None and b is not None
    assert a.token != b.token


def test_no_clear_pii_after_the_edge() -> None:
    event = decode(full_event())
    out = msgspec.json.encode(event).decode()
    for clear in (PAN, PAYEE_PAN, ID_NUMBER, ID_NUMBER.lower(), PHONE, PHONE[3:], "13800138000"):
        assert clear not in out
    assert repr(event).count("pan_") == 2
    for clear in (PAN, PAYEE_PAN, ID_NUMBER, "13800138000"):
        assert clear not in repr(event)


def test_short_key_refused() -> None:
    with pytest.raises(ValueError):
        Tokenizer(b"short")


# --- shape: unknown fields, wrong types, malformed JSON ------------------------------------


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (with_(amount_fen=100), "amount_fen"),
        (with_(userId="u"), "userId"),
        (with_("card_bind", card={"numbr": PAN}), "card.numbr"),
        (with_("card_bind", card={"token": "t", "cvv": "123"}), "card.cvv"),
        (with_(merchant={"id": "m", "mcc": "5999"}), "merchant.mcc"),
        (with_("transfer", payee={"id": "p", "bank": "CCB"}), "payee.bank"),
        (with_("transfer", payee={"id": "p", "card": {"token": "t", "x": 1}}), "payee.card.x"),
    ],
)
def test_unknown_fields_rejected_with_path(event: dict[str, Any], field: str) -> None:
    err = error_of(event)
    assert err.field == field
    assert err.event_id == event["event_id"]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (with_(user_id=10086), "user_id"),
        (with_(event_id=1), "event_id"),
        (with_(type="signup"), "type"),
        (with_(type=None), "type"),
        (with_(success="yes"), "success"),
        (with_(channel="mini_program"), "channel"),
        (with_(method="carrier_pigeon"), "method"),
        (with_(device_id=""), "device_id"),
        (with_(city="x" * 257), "city"),
        (with_(user_agent="x" * 1025), "user_agent"),
        (with_(attrs=[]), "attrs"),
        (with_(attrs=None), "attrs"),
        (with_(card="6222021234567890128"), "card"),
        (with_(card={"token": "t", "kind": "prepaid"}), "card.kind"),
        (with_(merchant={"id": "m", "category": "casino"}), "merchant.category"),
        (with_(merchant={"category": "game"}), "merchant.id"),
        (with_(merchant="m_1"), "merchant"),
        (with_("transfer", payee={"name": "李四"}), "payee.id"),
        (with_(phone=8613800138000), "phone"),
        (with_(ref_event_id=""), "ref_event_id"),
    ],
)
def test_wrong_type_names_the_field(event: dict[str, Any], field: str) -> None:
    assert error_of(event).field == field


def test_enum_error_points_to_docs() -> None:
    assert "docs/events.md" in error_of(with_(type="signup")).reason


def test_enum_error_does_not_echo_the_value() -> None:
    err = error_of(with_(card={"token": "t", "kind": PAN}))
    assert err.field == "card.kind"
    assert PAN not in err.reason


def test_optional_fields_accept_null() -> None:
    event = decode(with_(device_id=None, card=None, success=None, merchant=None, payee=None))
    assert event.device_id is None
    assert event.card is None


def test_merchant_category_defaults_to_other() -> None:
    event = decode(with_("payment", merchant={"id": "m_1"}))
    assert event.merchant is not None
    assert event.merchant.category == "other"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"event_id": "e1",',
        b"{'event_id': 'e1'}",
        b'{"event_id": "e1", "type": "login", "ts": 1599182640000, "user_id": "u",}',
        b"\xff\xfe",
        b"not json",
        b'{"event_id": "e1", "type": "login", "ts": 1599182640000, "user_id": "u"} x',
    ],
)
def test_malformed_json(raw: bytes) -> None:
    err = error_of(raw)
    assert err.field == "$"
    assert err.reason.startswith("malformed JSON")
    assert err.event_id is None


@pytest.mark.parametrize("raw", [b"[]", b"null", b"42", b'"event"', b"[{}]"])
def test_not_an_object(raw: bytes) -> None:
    err = error_of(raw)
    assert err.field == "$"
    assert not err.reason.startswith("malformed JSON")


def test_decode_accepts_str_and_bytes() -> None:
    raw = encode(minimal("login"))
    assert DECODER.decode(raw) == DECODER.decode(raw.decode())


def test_error_to_dict_shape() -> None:
    err = error_of(with_("card_bind", event_id="evt-7", card={"number": PAN_BAD_LUHN}))
    assert err.to_dict() == {
        "error": "invalid_event",
        "field": "card.number",
        "reason": "fails the Luhn checksum",
        "event_id": "evt-7",
    }
    assert str(err) == "card.number: fails the Luhn checksum"
    assert isinstance(err, ValueError)


def test_error_to_dict_without_event_id() -> None:
    assert error_of(b"{").to_dict().keys() == {"error", "field", "reason"}


def test_shape_error_still_names_the_event() -> None:
    assert error_of(with_(event_id="evt-9", user_id=1)).event_id == "evt-9"


def test_errors_do_not_echo_pii() -> None:
    for event in (
        with_("card_bind", card={"number": PAN_BAD_LUHN}),
        with_(id_number="110105194912310021"),
        with_(phone="+861381234567890"),
        with_(attrs={"note": PAN}),
    ):
        err = error_of(event)
        text = str(err.to_dict())
        for clear in (PAN, PAN_BAD_LUHN, "110105194912310021", "1381234567890"):
            assert clear not in text


# --- attrs ---------------------------------------------------------------------------------


def test_attrs_kept_as_given() -> None:
    attrs = {"app_version": "8.2.1", "score": 0.93, "flags": ["a", {"b": None}], "n": 12}
    assert decode(with_(attrs=attrs)).attrs == attrs


@pytest.mark.parametrize(
    ("attrs", "field"),
    [
        ({"note": PAN}, "attrs.note"),
        ({"note": f"pay with card {PAN} please"}, "attrs.note"),
        ({"note": "6222 0212 3456 7890 128", "x": ID_NUMBER}, "attrs.x"),
        ({"memo": {"text": PAN}}, "attrs.memo.text"),
        ({"history": ["ok", {"memo": ID_NUMBER}]}, "attrs.history[1].memo"),
        ({"deep": [[[f"id:{ID_NUMBER.lower()}"]]]}, "attrs.deep[0][0][0]"),
        ({"id": f"身份证{ID_NUMBER}"}, "attrs.id"),
    ],
)
def test_attrs_pii_guard(attrs: dict[str, Any], field: str) -> None:
    err = error_of(with_(attrs=attrs))
    assert err.field == field
    assert "in clear" in err.reason


@pytest.mark.parametrize(
    "attrs",
    [
        {"order": "20200904-123456789"},
        {"order": int(PAN)},  # numbers are not scanned
        {PAN: "key"},  # keys are not scanned
        {"short": "622202123456"},  # 12 digits: shorter than any PAN the guard looks for
        {"bad_luhn": PAN_BAD_LUHN},
        {"phone": "13800138000"},  # phones are not looked for
    ],
)
def test_attrs_pii_guard_lets_through(attrs: dict[str, Any]) -> None:
    assert decode(with_(attrs=attrs)).attrs == attrs


def test_attrs_deeply_nested_does_not_crash() -> None:
    nested: Any = PAN
    for _ in range(500):
        nested = [nested]
    raw = encode(with_(attrs={"deep": nested}))
    err = error_of(raw)
    assert err.field == "attrs.deep" + "[0]" * 500


@pytest.mark.parametrize("depth", [2000, 30000])
def test_very_deep_nesting_is_an_event_error(depth: int) -> None:
    """Regression: msgspec raises RecursionError past ~1000 levels (a 4 KiB body)."""
    deep = "[" * depth + "]" * depth
    raw = encode(with_(attrs={"a": "PLACEHOLDER"})).replace(b'"PLACEHOLDER"', deep.encode())
    err = error_of(raw)
    assert err.field == "$"
    with pytest.raises(EventError):
        DECODER.decode_many(b"[" + raw + b"]")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=12), st.text() | json_values, max_size=6))
def test_attrs_decode_never_raises_anything_but_event_error(attrs: dict[str, Any]) -> None:
    try:
        event = decode(with_(attrs=attrs))
    except EventError as exc:
        assert exc.field.startswith("attrs")
    else:
        assert event.attrs == msgspec.json.decode(msgspec.json.encode(attrs))


@settings(max_examples=200)
@given(
    st.sampled_from(["ts", "phone", "id_number", "amount", "currency", "user_id", "type"]),
    st.text(),
)
def test_any_string_in_any_field_only_raises_event_error(field: str, value: str) -> None:
    assume(not (field == "type" and value in ALL_TYPES))  # a valid type changes the rules
    try:
        decode(with_("payment", **{field: value}))
    except EventError as exc:
        assert exc.field == field


@settings(max_examples=200)
@given(st.text() | st.binary())
def test_arbitrary_input_only_raises_event_error(raw: str | bytes) -> None:
    with contextlib.suppress(EventError):
        DECODER.decode(raw)


@settings(max_examples=100)
@given(st.from_regex(r"\d{12,19}", fullmatch=True))
def test_card_number_fuzz(number: str) -> None:
    try:
        card = decode(with_("card_bind", card={"number": number})).card
    except EventError as exc:
        assert exc.field == "card.number"
    else:
        assert card is not None
        assert number.isascii()
        assert (card.bin, card.last4) == (number[:6], number[-4:])


_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
_PASSED_THROUGH = (
    "event_id",
    "type",
    "user_id",
    "device_id",
    "ip",
    "user_agent",
    "city",
    "currency",
    "channel",
    "success",
    "method",
    "ref_event_id",
    "attrs",
    "outcome",
    "label",
    "source",
    "scenario",
    "note",
)
"""The wire fields `Event` keeps as they are (the others are converted or tokenized)."""


@settings(max_examples=60)
@given(
    st.sampled_from(["transfer", "label", "challenge_result"]),
    st.fixed_dictionaries(
        {
            "event_id": _TEXT,
            "user_id": _TEXT,
            "device_id": _TEXT,
            "ip": _TEXT,
            "user_agent": _TEXT,
            "city": _TEXT,
            "ref_event_id": _TEXT,
            "scenario": _TEXT,
            "note": _TEXT,
            "success": st.booleans(),
            "channel": st.sampled_from(["app", "web", "atm"]),
            "currency": st.sampled_from(["CNY", "USD", "JPY"]),
            "attrs": st.dictionaries(_TEXT, st.integers(0, 9), max_size=2),
        }
    ),
)
def test_every_field_lands_where_its_name_says(type_: str, fields: dict[str, Any]) -> None:
    """`_validate` builds the `Event` positionally (keywords cost µs): every field of an
    event that sets them all (distinct values) must come out under its own name."""
    wire: dict[str, Any] = {**fields, "type": type_, "ts": TS, "amount": "12"}
    wire.update(phone=PHONE, id_number=ID_NUMBER, card={"number": PAN, "bank": "ICBC"})
    wire.update(merchant={"id": "m_1", "category": "travel"}, payee={"id": "p_1"})
    if type_ == "challenge_result":
        wire.update(method="face", outcome="passed")
    if type_ == "label":
        wire.update(label="fraud", source="analyst")
    else:  # a label's own fields
        del wire["scenario"], wire["note"]
    event = decode(wire)
    expected = {name: wire.get(name) for name in _PASSED_THROUGH}
    tokenizer = Tokenizer(KEY)
    expected.update(
        ts=TS,
        amount=12 if wire["currency"] == "JPY" else 1_200,
        phone=tokenizer.phone_plan(PHONE)[0],
        phone_valid=tokenizer.phone_plan(PHONE)[1],
        id_number=tokenizer.resident_id(ID_NUMBER)[0],
        card=tokenizer.card(msgspec.convert(wire["card"], CardIn), "card"),
        merchant=Merchant(id="m_1", category="travel"),
        payee=Payee(id="p_1"),
    )
    assert {f.name for f in msgspec.structs.fields(Event)} == set(expected)
    assert {name: getattr(event, name) for name in expected} == expected
