"""Incremental chain matching equals a brute-force enumeration over random streams.

Random patterns (1–4 steps, event-type filters, CEL conditions, total bounds, per-step
gaps, emit prefixes, `not_followed_by`, `user` or `device` partitions) run over random
streams (several accounts and devices, carrier signals that reach accounts only through
their phone, repeated and out-of-order times within the lateness). Before every event both
sides answer every chain feature, and every reason's event ids must be a match the brute
force also finds. Export/restore mid-stream continues identically. Conditions run through
CEL, or as Python when the matcher is given the variables' types; the variables come as a
dict or as a function the matcher calls at most once per event.
"""

from typing import Any, get_args

import msgspec
from chain_reference import ChainReference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payguard.chains import ChainMatch, ChainMatcher, ChainSpec, load_chains
from payguard.events import Event
from payguard.events.contract import EventType

EVENT_TYPES = get_args(EventType)
MINUTE = 60_000
LATENESS = 2 * MINUTE
TYPES = ["login", "payment", "card_bind", "otp_verify", "sim_swap"]
CONDITIONS = [None, None, None, "x == 1", "x >= 1", "y == 0", "x == 2 || y == 1", "amount > 5"]
KNOWN = {"type", "x", "y", "amount"}
VARIABLE_TYPES = {"type": "string", "x": "int", "y": "int", "amount": "int"}


@st.composite
def specs(draw: st.DrawFn) -> list[ChainSpec]:
    chains = []
    for i in range(draw(st.integers(1, 3))):
        n = draw(st.integers(1, 4))
        steps = []
        for j in range(n):
            steps.append(
                {
                    "events": draw(st.none() | st.lists(st.sampled_from(TYPES), min_size=1)),
                    "when": draw(st.sampled_from(CONDITIONS)),
                    "max_gap": None if j == 0 else draw(st.sampled_from([None, None, "3m", "30m"])),
                }
            )
        chain: dict[str, Any] = {
            "name": f"c{i}",
            "key": draw(st.sampled_from(["user", "user", "device"])),
            "within": draw(st.sampled_from(["10m", "1h", "3h"])),
            "steps": steps,
            "emit_from_step": draw(st.none() | st.integers(1, n)),
        }
        if draw(st.booleans()):
            chain["not_followed_by"] = {
                "events": draw(st.none() | st.lists(st.sampled_from(TYPES), min_size=1)),
                "when": draw(st.sampled_from(["x == 2 && y == 1", "y == 1", None])),
            }
        chains.append(msgspec.convert(chain, ChainSpec))
    return chains


@st.composite
def streams(draw: st.DrawFn, max_events: int = 40) -> list[tuple[Event, dict[str, Any]]]:
    n = draw(st.integers(1, max_events))
    clock = newest = 1_700_000_000_000
    out = []
    for i in range(n):
        clock += draw(st.sampled_from([0, MINUTE, 2 * MINUTE, 5 * MINUTE, 30 * MINUTE, 3_600_000]))
        newest = max(newest, clock)
        ts = newest - draw(st.sampled_from([0, 0, MINUTE, LATENESS]))
        kind = draw(st.sampled_from(TYPES))
        carrier = kind == "sim_swap"
        event = Event(
            event_id=f"e{i}",
            type=kind,
            ts=ts,
            user_id=None if carrier else draw(st.sampled_from(["u0", "u1"])),
            device_id=None if carrier else draw(st.sampled_from([None, "d0", "d1"])),
            phone=draw(st.sampled_from([None, "tel_0", "tel_1"])),
        )
        variables = {
            "type": kind,
            "x": draw(st.integers(0, 2)),
            "y": draw(st.integers(0, 1)),
            "amount": draw(st.integers(0, 9)),
        }
        out.append((event, variables))
    return out


def _check_reasons(matches: list[ChainMatch], allowed: dict[str, set[tuple[str, ...]]]) -> None:
    found = {m.chain: m for m in matches}
    assert set(found) == set(allowed)
    for name, match in found.items():
        assert match.event_ids in allowed[name], (name, match)
        assert len(match.event_ids) == match.step


class _Lazy:
    """Variables as a function, counting its calls."""

    def __init__(self, variables: dict[str, Any]) -> None:
        self.variables = variables
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return self.variables


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(), streams(), st.none() | st.integers(1, 40), st.booleans(), st.booleans())
def test_matcher_equals_brute_force(
    chain_specs: list[ChainSpec],
    stream: list[tuple[Event, dict[str, Any]]],
    cut: int | None,
    typed: bool,
    lazy: bool,
) -> None:
    raw = [msgspec.to_builtins(s) for s in chain_specs]
    patterns = load_chains(raw, KNOWN, EVENT_TYPES)
    options: dict[str, Any] = {"lateness_ms": LATENESS, "max_partials": 1_000, "sweep_every": 3}
    options["types"] = VARIABLE_TYPES if typed else None
    fast = ChainMatcher(patterns, **options)
    slow = ChainReference(chain_specs)
    for seq, (event, variables) in enumerate(stream, start=1):
        if seq == cut:
            again = ChainMatcher(patterns, **options)
            again.restore(fast.export())
            fast = again
        expected, allowed = slow.snapshot(event, variables)
        passed: dict[str, Any] | _Lazy = _Lazy(variables) if lazy else variables
        values, matches = fast.read(event, passed)
        assert values == expected, (seq, event)
        _check_reasons(matches, allowed)
        fast.update(event, passed, seq)
        slow.update(event, variables)
        assert not isinstance(passed, _Lazy) or passed.calls <= 1
