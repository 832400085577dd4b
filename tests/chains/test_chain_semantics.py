"""The documented semantics of chain patterns, one behaviour per test (docs/chains.md)."""

from typing import Any, get_args

import pytest

from payguard.cel import RuleError
from payguard.chains import ChainMatcher, load_chains
from payguard.events import Event
from payguard.events.contract import EventType

EVENT_TYPES = get_args(EventType)
MINUTE = 60_000
T0 = 1_700_000_000_000
KNOWN = {"type", "success", "x"}


def chain(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "abc",
        "key": "user",
        "within": "1h",
        "steps": [{"events": ["login"]}, {"events": ["password_reset"]}, {"events": ["payment"]}],
    }
    return {**base, **overrides}


def matcher(*chains: dict[str, Any], **kwargs: Any) -> ChainMatcher:
    return ChainMatcher(load_chains(list(chains), KNOWN, EVENT_TYPES), **kwargs)


class Feed:
    def __init__(self, m: ChainMatcher) -> None:
        self.m = m
        self.seq = 0

    def __call__(self, type: str, minute: float, x: int = 0, **fields: Any) -> dict[str, Any]:
        """Snapshot then update one event; returns the snapshot."""
        self.seq += 1
        fields.setdefault("user_id", "u1")
        event = Event(event_id=f"e{self.seq}", type=type, ts=T0 + int(minute * MINUTE), **fields)
        variables = {"type": type, "success": event.success, "x": x}
        out = self.m.snapshot(event, variables)
        self.m.update(event, variables, self.seq)
        return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Bad-Name"}, "lower-case"),
        ({"key": "merchant"}, "key must be one of"),
        ({"steps": []}, "1 to 8 steps"),
        ({"emit_from_step": 4}, "emit_from_step"),
        ({"steps": [{"events": ["logn"]}]}, "unknown event type 'logn'"),
        ({"steps": [{"when": "succes == true"}]}, "did you mean `success`"),
        ({"steps": [{"when": "[1].all(v, v > 0)"}]}, "macros"),
        ({"steps": [{"when": "x =="}]}, "CEL syntax error"),
        ({"steps": [{"max_gap": "5m"}]}, "step 1 cannot have a max_gap"),
        ({"within": "soon"}, "bad duration"),
        ({"not_followed_by": {"when": "nope"}}, "not_followed_by: unknown identifier"),
        ({"extra": 1}, "bad chains structure"),
    ],
)
def test_invalid_chains_are_refused_with_the_chain_named(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(RuleError, match=message):
        matcher(chain(**change))


def test_duplicate_chain_names_are_refused() -> None:
    with pytest.raises(RuleError, match="duplicate"):
        matcher(chain(), chain())


def test_features_describe_earlier_events_and_completes_this_one() -> None:
    feed = Feed(matcher(chain()))
    assert feed("login", 0)["chain_abc_step"] == 0
    assert feed("password_reset", 10)["chain_abc_step"] == 1
    paying = feed("payment", 20)
    assert paying["chain_abc_matched"] is False  # the chain is not complete before it
    assert paying["chain_abc_completes"] is True  # … and this event completes it
    assert paying["chain_abc_step"] == 2
    assert paying["chain_abc_started_minutes_ago"] == 20
    after = feed("logout", 30)
    assert after["chain_abc_matched"] is True
    assert after["chain_abc_step"] == 3
    assert after["chain_abc_completes"] is False


def test_emit_from_step_matches_a_prefix() -> None:
    feed = Feed(matcher(chain(emit_from_step=2)))
    feed("login", 0)
    assert feed("password_reset", 1)["chain_abc_completes"] is True
    assert feed("logout", 2)["chain_abc_matched"] is True


def test_total_bound_expires_a_match() -> None:
    feed = Feed(matcher(chain()))
    feed("login", 0)
    feed("password_reset", 10)
    feed("payment", 20)
    assert feed("logout", 60)["chain_abc_matched"] is True  # exactly the bound: alive
    late = feed("logout", 61)
    assert (late["chain_abc_matched"], late["chain_abc_step"]) == (False, 0)
    assert late["chain_abc_started_minutes_ago"] == 1_000_000_000


def test_a_step_beyond_its_max_gap_does_not_extend() -> None:
    steps = [{"events": ["login"]}, {"events": ["payment"], "max_gap": "5m"}]
    feed = Feed(matcher(chain(steps=steps)))
    feed("login", 0)
    assert feed("payment", 6)["chain_abc_completes"] is False
    feed("login", 7)
    assert feed("payment", 12)["chain_abc_completes"] is True  # from the second login


def test_not_followed_by_kills_matches_and_never_takes_a_step() -> None:
    neg = {"events": ["login"], "when": "x == 9"}
    feed = Feed(matcher(chain(not_followed_by=neg)))
    feed("login", 0)
    feed("password_reset", 5)
    killer = feed("login", 6, x=9)
    assert killer["chain_abc_step"] == 2
    assert feed("payment", 7)["chain_abc_completes"] is False
    assert feed("password_reset", 8)["chain_abc_step"] == 0  # the killer started nothing


def test_conditions_see_the_variables() -> None:
    steps = [{"events": ["login"], "when": "x >= 2"}, {"events": ["payment"]}]
    feed = Feed(matcher(chain(steps=steps)))
    feed("login", 0, x=1)
    assert feed("payment", 1)["chain_abc_completes"] is False
    feed("login", 2, x=2)
    assert feed("payment", 3)["chain_abc_completes"] is True


def test_partitions_are_separate_and_carrier_signals_reach_linked_accounts() -> None:
    steps = [{"events": ["sim_swap"]}, {"events": ["payment"]}]
    feed = Feed(matcher(chain(steps=steps)))
    feed("login", 0, user_id="u1", phone="tel_1")
    feed("login", 0, user_id="u2", phone="tel_2")
    feed("sim_swap", 1, user_id=None, phone="tel_1")
    assert feed("payment", 2, user_id="u1")["chain_abc_completes"] is True
    assert feed("payment", 2, user_id="u2")["chain_abc_completes"] is False


def test_links_owned_elsewhere_are_read_not_kept() -> None:
    """With `accounts_of` (the engine passes the feature state's), the matcher reaches a
    carrier signal's accounts through it and keeps no links of its own: one owner."""
    links: dict[str, tuple[str, ...]] = {}

    def accounts_of(event: Event) -> tuple[str, ...]:
        if event.user_id is not None:
            return (event.user_id,)
        return links.get(event.phone or "", ())

    steps = [{"events": ["sim_swap"]}, {"events": ["payment"]}]
    m = matcher(chain(steps=steps), accounts_of=accounts_of)
    feed = Feed(m)
    feed("login", 0, user_id="u1", phone="tel_1")
    feed("sim_swap", 1, user_id=None, phone="tel_1")  # nobody linked yet: reaches no one
    assert feed("payment", 2, user_id="u1")["chain_abc_completes"] is False
    links["tel_1"] = ("u1",)
    feed("sim_swap", 3, user_id=None, phone="tel_1")
    assert feed("payment", 4, user_id="u1")["chain_abc_completes"] is True
    assert m._phone_users == {}


def test_needed_limits_the_work_and_the_names() -> None:
    m = matcher(chain(), chain(name="other"))
    event = Event(event_id="x", type="login", ts=T0, user_id="u1")
    assert m.snapshot(event, {"type": "login"}, set()) == {}
    needed = frozenset({"chain_other_step", "chain_other_completes"})
    assert m.snapshot(event, {"type": "login"}, needed) == {
        "chain_other_step": 0,
        "chain_other_completes": False,  # step 1 of 3: it emits at the last step
    }
    m.update(event, {"type": "login"}, 1)
    reset = Event(event_id="y", type="password_reset", ts=T0 + MINUTE, user_id="u1")
    assert m.snapshot(reset, {"type": "password_reset"}, needed) == {
        "chain_other_step": 1,
        "chain_other_completes": False,
    }
    assert len(m.snapshot(reset, {"type": "password_reset"})) == 8  # None: every name


def test_a_failing_condition_is_not_met_and_counted() -> None:
    steps = [{"events": ["login"], "when": "x > 0"}]
    m = matcher(chain(steps=steps))
    event = Event(event_id="x", type="login", ts=T0, user_id="u1")
    assert m.snapshot(event, {"type": "login"})["chain_abc_completes"] is False
    assert m.errors == 1


def test_variables_for_lists_only_conditions_of_that_type() -> None:
    steps = [{"events": ["login"], "when": "x > 0"}, {"events": ["payment"], "when": "success"}]
    m = matcher(chain(steps=steps))
    assert m.variables_for("login") == {"x"}
    assert m.variables_for("payment") == {"success"}
    assert m.variables_for("logout") == frozenset()


def test_state_is_bounded_and_expires() -> None:
    steps = [{"events": ["login"]}, {"events": ["payment"]}]

    def run(max_partials: int) -> ChainMatcher:
        m = matcher(chain(steps=steps), lateness_ms=30 * MINUTE, max_partials=max_partials)
        feed = Feed(m)
        for i in range(10):  # later starts, earlier ends: none dominates another
            feed("login", 1 + i)
            feed("payment", 30 - i)
        return m

    assert len(run(100).parts[0]["u1"][1]) == 10
    capped = run(2)
    assert [p[0] for p in capped.parts[0]["u1"][1]] == [T0 + 9 * MINUTE, T0 + 10 * MINUTE]
    Feed(capped)("logout", 500, user_id="other")
    assert capped.sweep() == 0


def test_export_restore_needs_the_same_patterns() -> None:
    m = matcher(chain())
    Feed(m)("login", 0)
    data = m.export()
    same = matcher(chain())
    same.restore(data)
    assert same.export() == data
    with pytest.raises(ValueError, match="other patterns"):
        matcher(chain(within="2h")).restore(data)


def test_conditions_run_as_python_where_exact_and_through_cel_otherwise() -> None:
    steps = [
        {"events": ["login"], "when": "success == true && x >= 1"},
        {"events": ["payment"], "when": "size(type) > 3"},  # a function: CEL only
    ]
    m = matcher(chain(steps=steps), types={"type": "string", "success": "bool?", "x": "int"})
    step_checks, _ = m._checks[0]
    assert step_checks[0] is not None and step_checks[1] is None
    feed = Feed(m)
    assert feed("login", 0, x=1, success=True)["chain_abc_step"] == 0
    assert feed("payment", 1)["chain_abc_step"] == 1
    assert feed("payment", 2)["chain_abc_step"] == 2  # the CEL condition held
    event = Event(event_id="m", type="login", ts=T0 + 3 * MINUTE, user_id="u2", success=True)
    m.snapshot(event, {"type": "login", "success": True})  # x missing: Python raises, CEL errs
    assert m.errors == 1
    m.update(event, {"type": "login", "success": True}, 99)
    assert m.errors == 1  # evaluated once for the snapshot and the update
