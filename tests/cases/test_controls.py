"""The analysts' controls on the decision path (`ControlIndex.adjust`, an index by
entity) against a brute-force reference that scans every control for each event."""

from hypothesis import given, settings
from hypothesis import strategies as st

from payguard.cases import BLOCK_RULE, STEP_UP_RULE, Control, ControlIndex
from payguard.cases.controls import entities_of
from payguard.events import Card, Event
from payguard.rules import RuleHit
from payguard.types import MONEY_OUT_TYPES

RULES = ("r1", "r2", "r3")
ENTITIES = [("account", "u1"), ("account", "u2"), ("card", "pan_x"), ("device", "d1")]


def hit(rule: str) -> RuleHit:
    return RuleHit(rule, "hit", "live", "challenge", 10, rule, rule, ("face",))


def reference(controls: list[Control], event: Event, hits: list[RuleHit]) -> set[str]:
    """The rules of the adjusted hits, by scanning every control."""
    named = set(entities_of(event))
    live = [
        c
        for c in controls
        if (c.entity_kind, c.entity_id) in named and (c.until_ts is None or event.ts < c.until_ts)
    ]
    snoozed = {c.rule for c in live if c.kind == "snooze_rule"}
    rules = {h.rule for h in hits if h.rule not in snoozed}
    if any(c.kind == "block" for c in live):
        rules.add(BLOCK_RULE)
    if any(c.kind == "step_up" for c in live) and event.type in MONEY_OUT_TYPES:
        rules.add(STEP_UP_RULE)
    return rules


def control(i: int, kind: str, entity: tuple[str, str], rule: str, until: int | None) -> Control:
    snoozed = rule if kind == "snooze_rule" else None
    return Control(f"c{i}", kind, entity[0], entity[1], "case", 0, snoozed, until)  # type: ignore[arg-type]


_CONTROLS = st.lists(
    st.builds(
        control,
        st.integers(0, 10**6),
        st.sampled_from(["block", "step_up", "snooze_rule"]),
        st.sampled_from(ENTITIES),
        st.sampled_from(RULES),
        st.one_of(st.none(), st.integers(1, 100)),
    ),
    max_size=12,
    unique_by=lambda c: c.control_id,
)


@settings(max_examples=300, deadline=None)
@given(
    controls=_CONTROLS,
    removed=st.integers(0, 12),
    user=st.sampled_from(["u1", "u2", None]),
    card=st.booleans(),
    device=st.booleans(),
    type_=st.sampled_from(["payment", "login", "transfer"]),
    ts=st.integers(0, 120),
    hit_rules=st.sets(st.sampled_from(RULES)),
)
def test_adjust_agrees_with_a_scan_of_every_control(
    controls: list[Control],
    removed: int,
    user: str | None,
    card: bool,
    device: bool,
    type_: str,
    ts: int,
    hit_rules: set[str],
) -> None:
    index = ControlIndex(controls, ["face"])
    kept = controls[removed:]
    for control in controls[:removed]:
        index.remove(control)
    event = Event(
        event_id="e",
        type=type_,
        ts=ts,
        user_id=user,
        card=Card(token="pan_x") if card else None,
        device_id="d1" if device else None,
    )
    hits = [hit(rule) for rule in sorted(hit_rules)]
    adjusted = index.adjust(event, hits)
    assert {h.rule for h in adjusted} == reference(kept, event, hits)
    assert len(adjusted) == len({h.rule for h in adjusted})
