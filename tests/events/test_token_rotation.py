"""Token keys carry a version and can be rotated (issue 14): version 1 tokens are what they
always were, later versions say theirs (`pan_v2_…`), and during a rotation an entity seen
under the previous key keeps its token, so its feature counts continue across a restart."""

import hashlib
import hmac
from pathlib import Path

import pytest

from payguard.config import load_settings
from payguard.engine import Engine
from payguard.events import Tokenizer

KEY_1 = "rotation-test-key-version-one-0123456789"
KEY_2 = "rotation-test-key-version-two-9876543210"
PAN = "6222021234567890128"
OTHER_PAN = "6253625491032988"
T0 = 1_790_000_000_000
COUNT = "distinct_user_card_bind_by_card_30d"


def test_version_1_tokens_are_unchanged() -> None:
    digest = hmac.new(KEY_1.encode(), f"pan:{PAN}".encode(), hashlib.sha256).hexdigest()
    assert Tokenizer(KEY_1.encode()).token("pan", PAN) == f"pan_{digest[:32]}"


def test_later_versions_carry_their_number() -> None:
    token = Tokenizer(KEY_2.encode(), version=2).token("tel", "+8613800138000")
    assert token.startswith("tel_v2_") and len(token) == len("tel_v2_") + 32
    assert token != Tokenizer(KEY_1.encode()).token("tel", "+8613800138000")


def test_previous_token_kept_only_when_known() -> None:
    old = Tokenizer(KEY_1.encode()).token("pan", PAN)
    rotating = Tokenizer(
        KEY_2.encode(), version=2, previous=KEY_1.encode(), known={old}.__contains__
    )
    assert rotating.token("pan", PAN) == old
    assert rotating.token("pan", OTHER_PAN).startswith("pan_v2_")


def test_bad_versions_and_short_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        Tokenizer(KEY_2.encode(), version=1, previous=KEY_1.encode())
    with pytest.raises(ValueError):
        Tokenizer(KEY_2.encode(), version=2, previous=b"short")


def _open(data_dir: Path, **env: str) -> Engine:
    return Engine.open(load_settings(env={"PAYGUARD_DATA_DIR": str(data_dir), **env}))


def _bind(engine: Engine, event_id: str, user: str, minutes: int, pan: str) -> int:
    """Decide a card binding; the count of distinct users who bound the card before it."""
    raw = (
        f'{{"event_id":"{event_id}","type":"card_bind","ts":{T0 + minutes * 60_000},'
        f'"user_id":"{user}","card":{{"number":"{pan}"}}}}'
    )
    event = engine.decoder.decode(raw)
    before = engine.features.snapshot(event, engine.features.plan([COUNT]))[COUNT]
    engine.process(event)
    engine.flush()
    return int(before)


def test_an_entity_seen_before_rotation_is_the_same_entity_after(tmp_path: Path) -> None:
    engine = _open(tmp_path, PAYGUARD_TOKEN_KEY=KEY_1)
    assert [_bind(engine, f"b{i}", f"u{i}", i, PAN) for i in range(2)] == [0, 1]
    engine.close()

    rotated = {"PAYGUARD_TOKEN_KEY": KEY_2, "PAYGUARD_TOKEN_KEY_VERSION": "2"}
    engine = _open(tmp_path, **rotated, PAYGUARD_TOKEN_KEY_PREVIOUS=KEY_1)
    try:
        assert _bind(engine, "b2", "u2", 2, PAN) == 2  # the count continues
        assert _bind(engine, "b3", "u3", 3, OTHER_PAN) == 0
        recorded = engine.recorder.get_event("b3")
        assert recorded is not None and recorded.card is not None
        assert recorded.card.token.startswith("pan_v2_")  # new entities get the new key
    finally:
        engine.close()

    engine = _open(tmp_path, **rotated)  # the previous key dropped: the card is a stranger
    try:
        assert _bind(engine, "b4", "u4", 4, PAN) == 0
    finally:
        engine.close()


def test_settings_refuse_a_previous_key_without_a_version() -> None:
    with pytest.raises(ValueError, match="PAYGUARD_TOKEN_KEY_VERSION"):
        load_settings(env={"PAYGUARD_TOKEN_KEY": KEY_2, "PAYGUARD_TOKEN_KEY_PREVIOUS": KEY_1})
