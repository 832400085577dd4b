"""Signatures: what `sign` writes, the receiver's own HMAC check and `verify` agree; a
rotated secret, a stale timestamp, a changed body and a malformed header are refused."""

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payguard.webhooks import SignatureError, sign, verify
from payguard.webhooks.signing import signature

NEW = "whsec-new-0123456789abcdef"
OLD = "whsec-old-fedcba9876543210"
T = 1_767_225_600


def test_the_header_has_the_time_and_one_v1_per_secret_in_order() -> None:
    body = b'{"id":"whd_1","type":"decision.review"}'
    header = sign(body, [NEW, OLD], timestamp_s=T)
    expected = [
        hmac.new(s.encode(), f"{T}.".encode() + body, hashlib.sha256).hexdigest()
        for s in (NEW, OLD)
    ]
    assert header == f"t={T},v1={expected[0]},v1={expected[1]}"


@pytest.mark.parametrize("held", [[NEW], [OLD], [OLD, NEW]])
def test_during_rotation_a_receiver_holding_either_secret_accepts(held: list[str]) -> None:
    body = b"{}"
    assert verify(body, sign(body, [NEW, OLD], timestamp_s=T), held, now_s=T + 10) == T


def test_after_rotation_the_dropped_secret_no_longer_verifies() -> None:
    with pytest.raises(SignatureError, match="no v1 signature matches"):
        verify(b"{}", sign(b"{}", [NEW], timestamp_s=T), [OLD], now_s=T)


def test_the_tolerance_window_is_inclusive_both_ways() -> None:
    header = sign(b"{}", [NEW], timestamp_s=T)
    assert verify(b"{}", header, [NEW], now_s=T + 300) == T
    assert verify(b"{}", header, [NEW], now_s=T - 300) == T
    for now in (T + 301, T - 301):
        with pytest.raises(SignatureError, match="tolerance 300 s"):
            verify(b"{}", header, [NEW], now_s=now)
    assert verify(b"{}", header, [NEW], now_s=T + 900, tolerance_s=900) == T


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "no Payguard-Signature header"),
        ("", "no Payguard-Signature header"),
        ("v1=abc", "no timestamp"),
        (f"t={T}", "no v1 signature"),
        (f"t={T},v0=abc", "no v1 signature"),
        ("t=soon,v1=abc", "not whole seconds"),
        (f"t={T},garbage", "malformed"),
    ],
)
def test_malformed_headers_are_refused_with_a_reason(header: str | None, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify(b"{}", header, [NEW], now_s=T)


def test_unknown_schemes_beside_v1_are_ignored() -> None:
    header = sign(b"{}", [NEW], timestamp_s=T).replace(",v1=", ",v2=zz,v1=")
    assert verify(b"{}", header, [NEW], now_s=T) == T


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        sign(b"{}", [], timestamp_s=T)


secrets = st.text(min_size=16, max_size=40)


@given(
    body=st.binary(max_size=300),
    keys=st.lists(secrets, min_size=1, max_size=3),
    t=st.integers(0, 2**40),
)
def test_any_signed_body_verifies_with_any_of_its_secrets(
    body: bytes, keys: list[str], t: int
) -> None:
    header = sign(body, keys, timestamp_s=t)
    for key in keys:
        assert verify(body, header, [key], now_s=t) == t


@given(
    body=st.binary(min_size=1, max_size=300),
    key=secrets,
    index=st.integers(min_value=0),
    flip=st.integers(1, 255),
)
def test_a_changed_body_or_timestamp_never_verifies(
    body: bytes, key: str, index: int, flip: int
) -> None:
    header = sign(body, [key], timestamp_s=T)
    i = index % len(body)
    changed = body[:i] + bytes([body[i] ^ flip]) + body[i + 1 :]
    with pytest.raises(SignatureError):
        verify(changed, header, [key], now_s=T)
    moved = header.replace(f"t={T}", f"t={T + 1}")
    with pytest.raises(SignatureError):
        verify(body, moved, [key], now_s=T)
    assert signature(body, key, T) in header
