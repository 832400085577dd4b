"""`parse_ts` answers a time whose hour it parsed before from that hour's start
(`decode._HOURS`): held to the full parse (`_parse_rfc3339` and the range check), the
same ms or the same refusal, on times near valid ones and on mangled ones."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payguard.events import EventError
from payguard.events import decode as decode_module
from payguard.events.decode import MAX_TS_MS, MIN_TS_MS, _parse_rfc3339, parse_ts


def _reference(value: str) -> int | str:
    """The full parse alone: epoch ms, or the refusal's reason."""
    try:
        ms = _parse_rfc3339(value)
    except EventError as exc:
        return exc.reason
    if not MIN_TS_MS <= ms < MAX_TS_MS:
        return "out of range"
    return ms


def _answer(value: str) -> int | str:
    try:
        return parse_ts(value)
    except EventError as exc:
        return "out of range" if exc.reason.startswith("outside") else exc.reason


_VALID2 = ["00", "07", "23", "59"]
_DIGITS2 = st.sampled_from(_VALID2 * 4 + ["24", "60", "99", "5", "0x", "٣٣", " 1"])
"""Mostly valid two digits (so that hours get cached), some not."""
_HOUR_PARTS = st.builds(
    lambda year, month, day, sep, hour: f"{year}-{month}-{day}{sep}{hour}",
    st.sampled_from(["2016"] * 4 + ["1999", "2000", "2099", "2100"]),
    st.sampled_from(["01", "02", "12", "01", "02", "12", "13"]),
    st.sampled_from(["01", "01", "29", "30", "31"]),
    st.sampled_from(["T", "T", "t", " "]),
    _DIGITS2,
)
_OFFSETS = st.sampled_from(["Z", "+08:00", "-05:30"] * 2 + ["z", "+08:30", "", "+8:00", "+08:00Z"])
_RESTS = st.tuples(_DIGITS2, _DIGITS2, st.sampled_from(["", "", "", ".5", ".123"]), _OFFSETS)


@st.composite
def _times(draw: st.DrawFn) -> list[str]:
    """Times sharing a few hours, their minutes, seconds, fractions and offsets valid or
    not; each after a valid time of its hour and offset (so that the hour is cached, if
    the hour and the offset are valid)."""
    hours = draw(st.lists(_HOUR_PARTS, min_size=1, max_size=4))
    picks = draw(st.lists(st.tuples(st.sampled_from(hours), _RESTS), min_size=1, max_size=30))
    times = []
    for hour, (mm, ss, frac, offset) in picks:
        times += [f"{hour}:30:30{offset}", f"{hour}:{mm}:{ss}{frac}{offset}"]
    return times


@settings(max_examples=300, deadline=None)
@given(_times())
def test_a_time_in_an_hour_seen_is_what_the_full_parse_says(values: list[str]) -> None:
    decode_module._HOURS.clear()
    for value in values:
        assert _answer(value) == _reference(value), value


def test_the_hours_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_module, "_HOURS_KEPT", 3)
    decode_module._HOURS.clear()
    for hour in range(10):
        ts = parse_ts(f"2016-09-03T{hour:02d}:10:57Z")
        assert ts == parse_ts(f"2016-09-03T{hour:02d}:10:57+00:00")
        assert len(decode_module._HOURS) <= 3
    assert parse_ts("2016-09-03T09:59:59Z") == _parse_rfc3339("2016-09-03T09:59:59Z")


@pytest.mark.parametrize(
    ("warm", "value"),
    [
        ("2016-09-03T08:00:00+08:00", "2016-09-03T08:10x57+08:00"),  # no colon before SS
        ("2016-09-03T08:00:00+08:00", "2016-09-03T08:10:5700:00"),  # no offset sign
        ("2016-09-03T08:00:00+08:00", "2016-09-03T08:10:57+08:00:00"),  # offset too long
        ("2016-09-03T08:00:00+08:00", "2016-09-03T08:10:57+0800"),  # offset too short
        ("2016-09-03T08:00:00Z", "2016-09-03T08:10:57ZZ"),
        ("2016-09-03T08:00:00Z", "2016-09-03T08:10:57.1Z"),  # a fraction: the full parse
        ("2016-09-03T08:00:00+08:00", "2016-09-03T08:10:57.12345"),  # as long, no offset
        ("2000-01-01T08:45:00+08:30", "2000-01-01T08:10:00+08:30"),  # before 2000 in UTC
        ("2099-12-31T23:00:00-00:30", "2099-12-31T23:45:00-00:30"),  # 2100 in UTC
        ("2016-09-03T08:00:00+08:00", "2016-09-03T08:59:59+08:00"),
    ],
)
def test_shapes_next_to_a_cached_hour(warm: str, value: str) -> None:
    decode_module._HOURS.clear()
    assert _answer(warm) == _reference(warm)
    assert _answer(value) == _reference(value)
