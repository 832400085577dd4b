"""Validation and keyed-hash tokenization of card, ID and phone numbers.

A token is `HMAC-SHA256(key, kind:normalized value)` truncated to 128 bits, so the same PAN
always maps to the same token (features can count it) but the clear value cannot be
recovered without the key. Validation (Luhn, GB 11643 checksum, E.164 + numbering plan) is
slow in pure Python (~15 µs), so results are memoised per distinct value in a bounded LRU;
the cache lives only in process memory, never on disk.
"""

import hashlib
import hmac
import re
from collections.abc import Callable
from functools import lru_cache

import phonenumbers
from stdnum import luhn
from stdnum.cn import ric

from payguard.events.contract import Card, CardIn
from payguard.events.errors import EventError

_PAN_RE = re.compile(r"\d{12,19}", re.ASCII)
_E164_RE = re.compile(r"\+[1-9]\d{6,14}", re.ASCII)
_PAN_SEPARATORS = str.maketrans("", "", " -")
_CACHE_SIZE = 1 << 16


class Tokenizer:
    """Turns clear PII into stable tokens; raises `EventError` on invalid values."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("token key must be at least 16 bytes")
        self._key = key
        self.pan: Callable[[str], tuple[str, str, str]] = lru_cache(_CACHE_SIZE)(self._pan)
        self.id_number: Callable[[str], str] = lru_cache(_CACHE_SIZE)(self._id_number)
        self.phone: Callable[[str], str] = lru_cache(_CACHE_SIZE)(self._phone)

    def token(self, kind: str, value: str) -> str:
        digest = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}_{digest[:32]}"

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
        digits = number.translate(_PAN_SEPARATORS)
        if not _PAN_RE.fullmatch(digits):
            raise EventError("card.number", "a card number has 12 to 19 digits")
        if not luhn.is_valid(digits):
            raise EventError("card.number", "fails the Luhn checksum")
        return self.token("pan", digits), digits[:6], digits[-4:]

    def _id_number(self, number: str) -> str:
        normalized = number.strip().upper()
        if not ric.is_valid(normalized):
            raise EventError(
                "id_number", "not a valid resident ID number (length, birth date or checksum)"
            )
        return self.token("idn", normalized)

    def _phone(self, number: str) -> str:
        if not _E164_RE.fullmatch(number):
            raise EventError("phone", "must be E.164, e.g. +8613800138000")
        try:
            parsed = phonenumbers.parse(number)
        except phonenumbers.NumberParseException as exc:
            raise EventError("phone", f"cannot be parsed: {exc}") from None
        if not phonenumbers.is_valid_number(parsed):
            raise EventError("phone", "not a valid number in its country's numbering plan")
        # One subscriber, one token: hash the canonical form (`+86013800138000` is accepted
        # by the parser as `+8613800138000`).
        canonical = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        return self.token("tel", canonical)


_LOOKS_LIKE_PAN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
_LOOKS_LIKE_ID = re.compile(r"(?<![\dXx])\d{17}[\dXx](?![\dXx])")


def clear_pii_in(text: str) -> str | None:
    """Name the kind of clear PII found in free text (`attrs` values), or None.

    Clients sometimes stuff a PAN or ID number into free-form attributes; those would reach
    storage untokenized, so the edge refuses them instead.
    """
    for match in _LOOKS_LIKE_PAN.finditer(text):
        if luhn.is_valid(match.group()):
            return "a card number"
    for match in _LOOKS_LIKE_ID.finditer(text):
        if ric.is_valid(match.group().upper()):
            return "a resident ID number"
    return None
