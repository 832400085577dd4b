"""Real customers' identifiers are accepted; only impossible ones are refused (issue 11).

Each table lists real-world edge cases: what a customer may genuinely carry (accepted,
tokenized to one canonical form) and what cannot be an identifier at all (refused, with
the field and the reason named).
"""

from datetime import date, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from payguard.events import Event, EventDecoder, EventError, Tokenizer
from payguard.events.tokenize import (
    PERMIT_REGIONS,
    _id_check,
    clear_pii_in,
    resident_id_regions,
)

KEY = b"identifiers-test-key-0123456789"
TOKENIZER = Tokenizer(KEY)
DECODER = EventDecoder(TOKENIZER)
TS = 1_599_182_640_000  # 2020-09-04T09:24:00+08:00
EVENT_DAY = date(2020, 9, 4)


def event(**fields: Any) -> dict[str, Any]:
    return {"event_id": "evt-id", "type": "kyc_verify", "ts": TS, "user_id": "u_1", **fields}


def decode(**fields: Any) -> Event:
    return DECODER.decode(msgspec.json.encode(event(**fields)))


def refusal(**fields: Any) -> EventError:
    with pytest.raises(EventError) as info:
        decode(**fields)
    return info.value


# --- resident ID numbers -------------------------------------------------------------------

ID_ACCEPTED = [
    # (number as sent, canonical form it is tokenized as, why it is real)
    ("510104197707160255", "510104197707160255", "Jinjiang district, created 1990; born 1977"),
    ("110118196003030021", "110118196003030021", "Miyun district, created 2015; born 1960"),
    ("110103198005120017", "110103198005120017", "Chongwen district, abolished 2010"),
    ("810000199408230021", "810000199408230021", "Hong Kong residents' residence permit"),
    ("820000198511020046", "820000198511020046", "Macau residents' residence permit"),
    ("83000019700101003X", "83000019700101003X", "Taiwan residents' residence permit"),
    ("83000019700101003x", "83000019700101003X", "lower-case check character"),
    (" 510104197707160255 ", "510104197707160255", "surrounding spaces"),
    ("\t11010519491231002X\n", "11010519491231002X", "surrounding whitespace"),
    ("110105491231002", "11010519491231002X", "15-digit first generation, upgraded"),
    ("11010519000101001X", "11010519000101001X", "born on 1900-01-01"),
    ("110105200002290013", "110105200002290013", "born on a leap day"),
    ("440305202009040013", "440305202009040013", "born on the event's day"),
    ("510000198001010013", "510000198001010013", "province-level code in GB/T 2260"),
    ("360426199101010071", "360426199101010071", "python-stdnum's own example"),
]


@pytest.mark.parametrize(("number", "canonical", "why"), ID_ACCEPTED)
def test_id_number_accepted(number: str, canonical: str, why: str) -> None:
    assert decode(id_number=number).id_number == TOKENIZER.token("idn", canonical), why


ID_REFUSED = [
    # (number, reason contains, what is wrong)
    ("11010519491231002", "17 digits", "17 characters"),
    ("11010519491231002X1", "17 digits", "19 characters"),
    ("1101051949123100", "17 digits", "16 digits"),
    ("", "17 digits", "empty"),
    ("11010519491231002Y", "17 digits", "check character neither a digit nor X"),
    ("X10105194912310021", "17 digits", "X elsewhere than last"),
    ("110105 19491231002X", "17 digits", "inner space"),
    ("１１０１０５１９４９１２３１００２X", "17 digits", "full-width digits"),
    ("110105194912310021", "check character", "wrong check digit"),
    ("110105194921310022", "check character", "two digits swapped"),
    ("110105194913310021", "calendar date", "month 13"),
    ("110105194902300020", "calendar date", "30 February"),
    ("110105194912000021", "calendar date", "day 00"),
    ("110105190002290017", "calendar date", "29 February 1900 (not a leap year)"),
    ("110105189912310015", "before 1900", "born 1899"),
    ("440305202009060014", "after the event", "born two days after the event"),
    ("519999198001010012", "never a Chinese division", "county code never assigned"),
    ("000000198001010013", "never a Chinese division", "region 000000"),
    ("990000198001010012", "never a Chinese division", "province 99"),
    ("84000019800101001X", "never a Chinese division", "no residence permit region 84"),
    ("519999800101001", "never a Chinese division", "15 digits, region never assigned"),
    ("110105491331002", "calendar date", "15 digits, month 13"),
]


@pytest.mark.parametrize(("number", "reason", "what"), ID_REFUSED)
def test_id_number_refused(number: str, reason: str, what: str) -> None:
    err = refusal(id_number=number)
    assert (err.field, err.event_id) == ("id_number", "evt-id"), what
    assert reason in err.reason, what
    assert not number.strip() or number.strip() not in err.reason  # no echo of the value


def test_region_list_holds_every_division_ever_and_the_permits() -> None:
    regions = resident_id_regions()
    assert regions >= PERMIT_REGIONS
    assert {"510104", "110103", "110118", "440305", "110105"} <= regions
    assert not {"519999", "000000", "990000", "840000"} & regions
    assert all(len(code) == 6 and code.isdigit() for code in regions)
    assert len(regions) > 6000  # county-level codes of every edition, not a province list


def _id_numbers() -> st.SearchStrategy[tuple[str, str]]:
    """(as sent, canonical): a region from the accepted set, a birth date from 1900-01-01 to
    the event's day, any sequence code, the right check character, any accepted spelling."""
    regions = st.sampled_from(sorted(resident_id_regions()))
    born = st.dates(date(1900, 1, 1), EVENT_DAY)
    sequence = st.integers(0, 999)
    spelling = st.sampled_from(["{}", "{} ", " {}", "\t{}\n"])

    def build(region: str, day: date, seq: int, lower: bool, form: str) -> tuple[str, str]:
        body = f"{region}{day:%Y%m%d}{seq:03d}"
        canonical = body + _id_check(body)
        sent = canonical.lower() if lower else canonical
        return form.format(sent), canonical

    return st.builds(build, regions, born, sequence, st.booleans(), spelling)


@given(_id_numbers())
def test_any_well_formed_id_number_decodes(case: tuple[str, str]) -> None:
    sent, canonical = case
    assert decode(id_number=sent).id_number == TOKENIZER.token("idn", canonical)


@given(_id_numbers(), st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_error_is_refused(case: tuple[str, str], at: int, shift: int) -> None:
    """MOD 11-2 catches every single-digit substitution, so a typo never gets a token."""
    _, canonical = case
    typo = f"{canonical[:at]}{(int(canonical[at]) + shift) % 10}{canonical[at + 1 :]}"
    assert refusal(id_number=typo).field == "id_number"


@given(
    st.sampled_from(sorted(resident_id_regions())), st.dates(date(1900, 1, 1), date(1999, 12, 31))
)
def test_first_generation_number_has_its_upgrades_token(region: str, born: date) -> None:
    """One person, one token: the 15-digit number and its 18-character upgrade agree."""
    old = f"{region}{born:%y%m%d}123"
    body = f"{region}{born:%Y%m%d}123"
    assert decode(id_number=old).id_number == decode(id_number=body + _id_check(body)).id_number


@given(st.dates(EVENT_DAY + timedelta(days=2), date(2099, 12, 31)))
def test_birth_after_the_event_is_refused(born: date) -> None:
    body = f"510104{born:%Y%m%d}025"
    assert "after the event" in refusal(id_number=body + _id_check(body)).reason


def test_attrs_guard_finds_numbers_stdnum_refused() -> None:
    """The attrs PII guard uses the same acceptance: a real number in clear is caught."""
    assert clear_pii_in("身份证 510104197707160255") == "a resident ID number"
    assert clear_pii_in("permit 83000019700101003x") == "a resident ID number"
    assert clear_pii_in("order 519999198001010012") is None


# --- phone numbers -------------------------------------------------------------------------

PHONE_ACCEPTED = [
    # (number, canonical E.164, valid in the plan, what it is)
    ("+8613800138000", "+8613800138000", True, "China Mobile"),
    ("+86013800138000", "+8613800138000", True, "national prefix after +86"),
    ("+8619212345678", "+8619212345678", True, "China Broadnet 192"),
    ("+8616512345678", "+8616512345678", True, "virtual operator 165"),
    ("+8617012345678", "+8617012345678", True, "virtual operator 170"),
    ("+8614012345678", "+8614012345678", False, "IoT 140, 11 digits"),
    ("+861440123456789", "+861440123456789", False, "IoT 1440, 13 digits"),
    ("+861064812345678", "+861064812345678", False, "M2M 10648, 13 digits"),
    ("+8610000000000", "+8610000000000", False, "unassigned mobile-length range"),
    ("+862012345678", "+862012345678", True, "Guangzhou landline"),
    ("+85291234567", "+85291234567", True, "Hong Kong mobile"),
    ("+85212345678", "+85212345678", False, "Hong Kong, unassigned range"),
    ("+886912345678", "+886912345678", True, "Taiwan mobile"),
    ("+12015550123", "+12015550123", True, "US"),
    ("+19995550123", "+19995550123", False, "NANP area code 999 not in service"),
    ("+447700900123", "+447700900123", False, "UK range reserved for drama"),
]


@pytest.mark.parametrize(("number", "canonical", "valid", "what"), PHONE_ACCEPTED)
def test_phone_accepted(number: str, canonical: str, valid: bool, what: str) -> None:
    decoded = decode(phone=number)
    assert decoded.phone == TOKENIZER.token("tel", canonical), what
    assert decoded.phone_valid is valid, what


PHONE_REFUSED = [
    # (number, reason contains, what is wrong)
    ("13800138000", "E.164", "no country code"),
    ("8613800138000", "E.164", "no plus"),
    ("+86 138 0013 8000", "E.164", "spaces"),
    ("+86-138-0013-8000", "E.164", "hyphens"),
    ("+0123456789", "E.164", "country code 0"),
    ("+8613800138000123", "E.164", "16 digits"),
    ("+86١٣800138000", "E.164", "Arabic-Indic digits"),
    ("+8613800138000\n", "E.164", "trailing newline"),
    ("", "E.164", "empty"),
    ("+99912345678", "unknown country calling code", "country code 999"),
    ("+861381234567890", "too many digits", "13 national digits outside IoT ranges"),
    ("+8612345", "too few digits", "5 national digits"),
    ("+8610999", "too few digits", "local-only length: area code missing"),
    ("+1201555012", "too few digits", "9 digits in NANP"),
    ("+120155501234", "too many digits", "11 digits in NANP"),
]


@pytest.mark.parametrize(("number", "reason", "what"), PHONE_REFUSED)
def test_phone_refused(number: str, reason: str, what: str) -> None:
    err = refusal(phone=number)
    assert err.field == "phone", what
    assert reason in err.reason, what


def test_phone_valid_is_none_without_a_phone() -> None:
    assert decode().phone_valid is None


def test_phone_valid_is_not_sent_when_absent() -> None:
    """omit_defaults: an event without a phone encodes as before the field existed."""
    assert b"phone_valid" not in msgspec.json.encode(decode())


@given(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True))
def test_any_e164_shaped_number_is_accepted_or_refused_as_phone(number: str) -> None:
    try:
        decoded = decode(phone=number)
    except EventError as exc:
        assert exc.field == "phone"
    else:
        assert decoded.phone is not None and decoded.phone_valid is not None


# --- cards ---------------------------------------------------------------------------------

CARD_ACCEPTED = [
    # (number, what it is)
    ("6222021234567890128", "UnionPay debit, passes Luhn"),
    ("6222021234567890123", "UnionPay 19 digits, fails Luhn"),
    ("6212345678901234", "UnionPay 16 digits, fails Luhn"),
    ("6212 3456 7890 1234", "UnionPay with spaces, fails Luhn"),
    ("4111111111111111", "Visa, passes Luhn"),
]


@pytest.mark.parametrize(("number", "what"), CARD_ACCEPTED)
def test_card_accepted(number: str, what: str) -> None:
    card = decode(type="card_bind", card={"number": number}).card
    digits = number.replace(" ", "")
    assert card is not None, what
    assert (card.token, card.bin, card.last4) == (
        TOKENIZER.token("pan", digits),
        digits[:6],
        digits[-4:],
    )


CARD_REFUSED = [
    # (number, reason contains, what is wrong)
    ("4111111111111112", "Luhn", "Visa failing Luhn"),
    ("4367421234567890123", "Luhn", "19 digits, not UnionPay, failing Luhn"),
    ("621234567890123", "Luhn", "62 but 15 digits, failing Luhn"),
    ("621234567890", "Luhn", "62 but 12 digits, failing Luhn"),
    ("12345678901", "12 to 19 digits", "11 digits"),
    ("62220212345678901280", "12 to 19 digits", "20 digits"),
    ("6222-0212-3456-7890-12X", "12 to 19 digits", "a letter"),
]


@pytest.mark.parametrize(("number", "reason", "what"), CARD_REFUSED)
def test_card_refused(number: str, reason: str, what: str) -> None:
    err = refusal(type="card_bind", card={"number": number})
    assert err.field == "card.number", what
    assert reason in err.reason, what


@given(st.from_regex(r"62[0-9]{14,17}", fullmatch=True))
def test_any_unionpay_pan_of_16_to_19_digits_is_accepted(number: str) -> None:
    card = decode(type="card_bind", card={"number": number}).card
    assert card is not None and card.bin == number[:6]


# --- what was refused before stays refused -------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ts": "yesterday"}, "ts"),
        ({"ts": 1599182640}, "ts"),
        ({"type": "payment", "amount": "-1.00"}, "amount"),
        ({"type": "payment", "amount": "0"}, "amount"),
        ({"amount_fen": 100}, "amount_fen"),
        ({"id_number": "510104197707160255", "attrs": {"id": "510104197707160255"}}, "attrs.id"),
    ],
)
def test_other_refusals_unchanged(fields: dict[str, Any], field: str) -> None:
    assert refusal(**fields).field == field
