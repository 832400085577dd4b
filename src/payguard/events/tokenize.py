"""Validation and keyed-hash tokenization of card, ID and phone numbers.

A token is `HMAC-SHA256(key, kind:normalized value)` truncated to 128 bits, so the same PAN
always maps to the same token (features can count it) but the clear value cannot be
recovered without the key. Validation (Luhn, GB 11643 checksum, E.164 + numbering plan) is
slow in pure Python (~15 µs), so results are memoised per distinct value in a bounded LRU;
the cache lives only in process memory, never on disk.

Validation refuses only what cannot be a real customer's identifier (wrong shape, failed
checksum, impossible date or length): an event refused at the edge is a customer refused
outright, while a doubtful value that is accepted can still be weighed by the rules (e.g.
`phone_plan_valid`).
"""

import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import date
from functools import cache, lru_cache

import phonenumbers
from phonenumbers import ValidationResult
from stdnum import luhn, numdb

from payguard.events.contract import Card, CardIn
from payguard.events.errors import EventError
from payguard.types import DAY_MS, EpochMs

_PAN_RE = re.compile(r"\d{12,19}", re.ASCII)
_E164_RE = re.compile(r"\+[1-9]\d{6,14}", re.ASCII)
_ID_RE = re.compile(r"\d{17}[\dX]|\d{15}", re.ASCII)
_PAN_SEPARATORS = str.maketrans("", "", " -")
_CACHE_SIZE = 1 << 16

_ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # GB 11643: 7, 9, 10, 5, ...
_ID_CHECK = "10X98765432"  # check character by weighted sum mod 11 (ISO 7064 MOD 11-2)
_ID_MIN_BIRTH = date(1900, 1, 1)
_EPOCH_DATE = date(1970, 1, 1)
PERMIT_REGIONS: frozenset[str] = frozenset({"810000", "820000", "830000"})
"""Region codes of the residence permits for Hong Kong, Macau and Taiwan residents
(港澳台居民居住证, since 2018); they are in no division list."""

_EXTRA_POSSIBLE_LENGTHS: dict[int, tuple[int, tuple[str, ...]]] = {86: (13, ("14", "1064"))}
"""National-number lengths the numbering-plan metadata lacks, per country calling code:
(length, prefixes). China's 13-digit IoT / M2M numbers (14x, 1064x) are issued and receive
SMS, yet `phonenumbers` calls them too long."""


def token_marker(version: int) -> str:
    """What a token of key version `version` carries after its kind: nothing for version 1
    (so tokens from before versioning stay valid), `v<n>_` from version 2 on."""
    return "" if version == 1 else f"v{version}_"


def _keyed_token(key: bytes, marker: str, kind: str, value: str) -> str:
    digest = hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind}_{marker}{digest[:32]}"


def _never(_: str) -> bool:
    return False


class Tokenizer:
    """Turns clear PII into stable tokens; raises `EventError` on impossible values."""

    def __init__(
        self,
        key: bytes,
        *,
        version: int = 1,
        previous: bytes | None = None,
        known: Callable[[str], bool] | None = None,
    ) -> None:
        """`key` is version `version` of the token key. During a rotation, `previous` is
        version `version - 1` and `known` says whether a token is already in payguard's
        state: a value whose previous-version token is known keeps that token, so an
        entity seen before the rotation stays the same entity (its counts continue);
        values first seen after it get current-version tokens. Once windows no longer
        hold previous-version tokens, drop `previous` (docs/security.md)."""
        if len(key) < 16 or (previous is not None and len(previous) < 16):
            raise ValueError("token key must be at least 16 bytes")
        if version < 1 or (previous is not None and version < 2):
            raise ValueError("token key versions start at 1; a previous key needs version >= 2")
        self._key = key
        self._marker = token_marker(version)
        self._previous = previous
        self._previous_marker = token_marker(version - 1)
        self._known = known if known is not None else _never
        self.pan: Callable[[str], tuple[str, str, str]] = lru_cache(_CACHE_SIZE)(self._pan)
        self.resident_id: Callable[[str], tuple[str, EpochMs]] = lru_cache(_CACHE_SIZE)(
            self._resident_id
        )
        self.phone_plan: Callable[[str], tuple[str, bool]] = lru_cache(_CACHE_SIZE)(
            self._phone_plan
        )

    def token(self, kind: str, value: str) -> str:
        """`<kind>_<marker><128-bit hex>`; the marker names the key version (none for 1)."""
        if self._previous is not None:
            earlier = _keyed_token(self._previous, self._previous_marker, kind, value)
            if self._known(earlier):
                return earlier
        return _keyed_token(self._key, self._marker, kind, value)

    def id_number(self, number: str) -> str:
        """The token of a resident ID number (see `resident_id`)."""
        return self.resident_id(number)[0]

    def phone(self, number: str) -> str:
        """The token of an E.164 phone number (see `phone_plan`)."""
        return self.phone_plan(number)[0]

    def card(self, card: CardIn, field: str) -> Card:
        """Tokenize a card object; exactly one of `number` and `token` must be given."""
        if (card.number is None) == (card.token is None):
            raise EventError(field, "give exactly one of `number` and `token`")
        if card.number is not None:
            try:
                token, bin_, last4 = self.pan(card.number)
            except EventError as exc:  # name the card's own path, e.g. `payee.card.number`
                raise EventError(f"{field}.number", exc.reason) from None
            return Card(token=token, bin=bin_, last4=last4, bank=card.bank, kind=card.kind)
        assert card.token is not None
        return Card(token=card.token, bank=card.bank, kind=card.kind)

    def _pan(self, number: str) -> tuple[str, str, str]:
        """12-19 digits passing Luhn; UnionPay (BIN 62) PANs of 16-19 digits need not pass.

        UnionPay's rules never required a Luhn check digit and Chinese issuers hold live
        62-cards that fail it, so refusing them would refuse real customers; every other
        network's PANs do carry one, and there a failure is almost always a typo."""
        digits = number.translate(_PAN_SEPARATORS)
        if not _PAN_RE.fullmatch(digits):
            raise EventError("card.number", "a card number has 12 to 19 digits")
        if not luhn.is_valid(digits) and not (digits.startswith("62") and len(digits) >= 16):
            raise EventError("card.number", "fails the Luhn checksum")
        return self.token("pan", digits), digits[:6], digits[-4:]

    def _resident_id(self, number: str) -> tuple[str, EpochMs]:
        """(token, birth date as epoch ms at 00:00 UTC) of a resident ID number.

        The token hashes the canonical 18-character form (see `canonical_resident_id`), so
        `…x`, `…X`, padded and first-generation spellings of one person's number agree.
        The caller compares the birth date with the event time (no clock here)."""
        canonical, born = canonical_resident_id(number)
        return self.token("idn", canonical), (born - _EPOCH_DATE).days * DAY_MS

    def _phone_plan(self, number: str) -> tuple[str, bool]:
        """(token of the canonical E.164 form, whether the number is valid in its
        country's numbering plan).

        Only a number no plan of its country code could hold is refused: not `+` and 7-15
        digits, an unknown country code, or a national number of a length the country's
        plan never uses (`phonenumbers.is_possible_number`, which looks at lengths only,
        plus `_EXTRA_POSSIBLE_LENGTHS`). A length the plan allows only for local dialling
        (no area code) is refused too: an E.164 number always carries its area code.
        Failing `is_valid_number` (an unknown prefix: a new range, an IoT or virtual
        operator, stale metadata) is not refused; it is reported as `False` for rules."""
        if not _E164_RE.fullmatch(number):
            raise EventError("phone", "must be E.164, e.g. +8613800138000")
        try:
            parsed = phonenumbers.parse(number)
        except phonenumbers.NumberParseException as exc:
            if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
                raise EventError("phone", "unknown country calling code") from None
            raise EventError("phone", f"cannot be parsed: {exc}") from None
        if impossible := _impossible_length(parsed):
            raise EventError("phone", impossible)
        # One subscriber, one token: hash the canonical form (`+86013800138000` is accepted
        # by the parser as `+8613800138000`).
        canonical = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        return self.token("tel", canonical), phonenumbers.is_valid_number(parsed)


def _impossible_length(parsed: phonenumbers.PhoneNumber) -> str | None:
    """Why no plan of the number's country code has numbers of its length, or None."""
    result = phonenumbers.is_possible_number_with_reason(parsed)
    if result == ValidationResult.IS_POSSIBLE:
        return None
    national = phonenumbers.national_significant_number(parsed)
    extra = _EXTRA_POSSIBLE_LENGTHS.get(parsed.country_code or 0)
    if extra is not None and len(national) == extra[0] and national.startswith(extra[1]):
        return None
    country = f"+{parsed.country_code}"
    if result == ValidationResult.TOO_LONG:
        return f"too many digits for any number under {country}"
    if result in (ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        return f"too few digits for a full number under {country} (area code included)"
    return f"no number under {country} has this many digits"


@cache
def resident_id_regions() -> frozenset[str]:
    """Every region code a resident ID number can carry: each code, county level or above,
    that is or ever was in GB/T 2260 (python-stdnum's `cn/loc` list, built from Wikipedia's
    tables of the codes with the years each was in use), plus `PERMIT_REGIONS`. About
    6,900 codes, built once (~0.1 s) on first use.

    python-stdnum's own `ric.is_valid` also demands that the division existed in the
    holder's birth year, which refuses real numbers: a number keeps the code of where it
    was issued, so `510104197707160255` (Chengdu Jinjiang district, created 1990, holder
    born 1977) is genuine. A code in no edition of the list was never issued."""
    codes = set(PERMIT_REGIONS)
    for _, low, high, _, counties in numdb.get("cn/loc").prefixes:
        for province in range(int(low), int(high) + 1):
            for _, c_low, c_high, props, _ in counties:
                if "county" in props:
                    codes.update(
                        f"{province:02d}{c:04d}" for c in range(int(c_low), int(c_high) + 1)
                    )
    return frozenset(codes)


def canonical_resident_id(number: str) -> tuple[str, date]:
    """The 18-character upper-case form of a resident ID number and its birth date; raises
    `EventError` naming `id_number`.

    Accepted: 17 digits and a check digit or `X`/`x` (GB 11643, ISO 7064 MOD 11-2),
    surrounding whitespace ignored; a valid birth date from 1900-01-01; a region code from
    `resident_id_regions`. A 15-digit first-generation number (no check digit, two-digit
    birth year in the 1900s) is accepted and converted the way the Ministry of Public
    Security upgraded them (insert `19`, append the check digit): those cards stopped
    being valid documents in 2013, but banks' older records still carry them, and the
    conversion gives the holder the same token as their 18-character number. It has no
    checksum, so a mistyped one passes if its date and region are plausible.
    """
    text = number.strip().upper()
    if not _ID_RE.fullmatch(text):
        raise EventError("id_number", "must be 17 digits and a check digit or X (or 15 digits)")
    if len(text) == 15:
        body = f"{text[:6]}19{text[6:]}"
        text = body + _id_check(body)
    elif text[17] != _id_check(text[:17]):
        raise EventError("id_number", "fails the GB 11643 check character")
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise EventError("id_number", "its birth date is not a calendar date") from None
    if born < _ID_MIN_BIRTH:
        raise EventError("id_number", "its birth date is before 1900")
    if text[:6] not in resident_id_regions():
        raise EventError("id_number", "its region code was never a Chinese division")
    return text, born


def is_resident_id(text: str) -> bool:
    """Whether `text` (18 characters) is an acceptable resident ID number."""
    try:
        canonical_resident_id(text)
    except EventError:
        return False
    return True


def _id_check(body: str) -> str:
    """The GB 11643 check character of 17 digits."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]


_LOOKS_LIKE_PAN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
_LOOKS_LIKE_ID = re.compile(r"(?<![\dXx])\d{17}[\dXx](?![\dXx])")


def clear_pii_in(text: str) -> str | None:
    """Name the kind of clear PII found in free text (`attrs` values), or None.

    Clients sometimes stuff a PAN or ID number into free-form attributes; those would reach
    storage untokenized, so the edge refuses them instead. Only Luhn-valid digit runs and
    18-character ID numbers are looked for: the UnionPay PANs that fail Luhn and 15-digit
    ID numbers are accepted in their own fields, but any 16-19 (or 15) digit order number
    would look like them here.
    """
    for match in _LOOKS_LIKE_PAN.finditer(text):
        if luhn.is_valid(match.group()):
            return "a card number"
    for match in _LOOKS_LIKE_ID.finditer(text):
        if is_resident_id(match.group()):
            return "a resident ID number"
    return None
