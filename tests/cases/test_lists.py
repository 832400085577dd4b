"""Allow and deny lists: rules read them (`card in deny_list('stolen_cards')`), a change
is seen by the next event without a restart, clear numbers are tokenized at once and
never stored, every change is audited, and a list is what a restart reads back."""

import uuid
from pathlib import Path

import pytest
from casetools import OTHER_PAN, PAN, payment, transfer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payguard.auth import Actor
from payguard.cel import RuleError, check_condition
from payguard.cel.lists import membership, variable
from payguard.events import Tokenizer
from payguard.generated import source_of
from payguard.lists import ListError, ListService
from payguard.rules import list_reads

LEAD = Actor("user:lead", "Lee")


def test_a_deny_listed_card_blocks_the_next_event_on_it_and_only_it(listed_world) -> None:  # type: ignore[no-untyped-def]
    world = listed_world
    assert payment(world, "p0", "u1", "10.00", card={"number": PAN}).action == "allow"
    world.lists.create(
        "deny", "stolen_cards", "card", owner="fraud team", reason="reported", actor=LEAD,
        now_ms=world.clock.now,
    )  # fmt: skip
    entry = world.lists.add(
        "deny", "stolen_cards", PAN, reason="owner reported theft", actor=LEAD,
        now_ms=world.clock.now,
    )  # fmt: skip
    assert entry.value == world.tokenizer.pan(PAN)[0]
    blocked = payment(world, "p1", "u9", "10.00", card={"number": PAN})
    assert blocked.action == "block" and blocked.reasons[0].rule == "stolen_card"
    assert payment(world, "p2", "u1", "10.00", card={"number": OTHER_PAN}).action == "allow"
    world.lists.remove(
        "deny", "stolen_cards", entry.entry_id, reason="found", actor=LEAD, now_ms=world.clock.now
    )
    assert payment(world, "p3", "u9", "10.00", card={"number": PAN}).action == "allow"


def test_an_entry_expires(listed_world) -> None:  # type: ignore[no-untyped-def]
    world = listed_world
    now = world.clock.now
    world.lists.create(
        "deny", "stolen_cards", "card", owner="o", reason="r", actor=LEAD, now_ms=now
    )
    world.lists.add(
        "deny", "stolen_cards", PAN, reason="r", actor=LEAD, now_ms=now, expires_ms=now + 1000
    )
    assert payment(world, "p1", "u1", "1.00", card={"number": PAN}).action == "block"
    world.clock.now = now + 1000
    assert payment(world, "p2", "u1", "1.00", card={"number": PAN}, ts=now + 1000).action == (
        "allow"
    )


def test_an_allow_list_lets_a_vouched_payee_through(listed_world) -> None:  # type: ignore[no-untyped-def]
    world = listed_world
    now = world.clock.now
    assert transfer(world, "t1", "u1", "20000.00", payee={"id": "utility"}).action == "review"
    world.lists.create(
        "allow", "trusted_payees", "payee", owner="o", reason="r", actor=LEAD, now_ms=now
    )
    world.lists.add(
        "allow", "trusted_payees", "utility", reason="the water board", actor=LEAD, now_ms=now
    )
    assert transfer(world, "t2", "u1", "20000.00", payee={"id": "utility"}).action == "allow"
    assert transfer(world, "t3", "u1", "20000.00", payee={"id": "x"}).action == "review"


def test_a_list_of_another_subject_never_matches(listed_world) -> None:  # type: ignore[no-untyped-def]
    """`stolen_cards` must hold cards: a device list of that name is not read by the rule."""
    world = listed_world
    now = world.clock.now
    token = world.tokenizer.pan(PAN)[0]
    world.lists.create(
        "deny", "stolen_cards", "device", owner="o", reason="r", actor=LEAD, now_ms=now
    )
    world.lists.add("deny", "stolen_cards", token, reason="r", actor=LEAD, now_ms=now)
    assert payment(world, "p1", "u1", "1.00", card={"number": PAN}).action == "allow"


def test_clear_numbers_are_tokenized_at_once_and_never_stored(listed_world) -> None:  # type: ignore[no-untyped-def]
    world = listed_world
    now = world.clock.now
    phone, id_number = "+8613800138000", "11010519491231002X"
    for subject, name, value in (
        ("card", "cards", PAN),
        ("phone", "phones", phone),
        ("id_number", "ids", id_number),
    ):
        world.lists.create("deny", name, subject, owner="o", reason="r", actor=LEAD, now_ms=now)
        entry = world.lists.add("deny", name, value, reason="r", actor=LEAD, now_ms=now)
        assert entry.value != value and entry.value.split("_")[0] in ("pan", "tel", "idn")
    world.lists.close()
    world.audit.close()
    for path in world.data_dir.glob("*.db*"):
        raw = path.read_bytes()
        for clear in (PAN, phone, "13800138000", id_number):
            assert clear.encode() not in raw, (path.name, clear)
    world.reopen()


def test_bad_values_are_refused_naming_the_field(listed_world) -> None:  # type: ignore[no-untyped-def]
    world = listed_world
    now = world.clock.now
    world.lists.create("deny", "cards", "card", owner="o", reason="r", actor=LEAD, now_ms=now)
    lists, who = world.lists, {"actor": LEAD, "now_ms": now}
    cases = [
        (lambda: lists.add("deny", "cards", "1234", reason="r", **who), "value", 422),
        (lambda: lists.add("deny", "nope", PAN, reason="r", **who), "name", 404),
        (
            lambda: lists.add("deny", "cards", PAN, reason="r", expires_ms=now, **who),
            "expires_ms",
            422,
        ),
        (lambda: lists.add("deny", "cards", PAN, reason=f"pan {PAN}", **who), "reason", 422),
        (lambda: lists.create("deny", "cards", "card", owner="o", reason="r", **who), "name", 409),
        (lambda: lists.remove("deny", "cards", "le_x", reason="r", **who), "entry_id", 404),
    ]
    for call, field, status in cases:
        with pytest.raises(ListError) as refused:
            call()
        assert (refused.value.field, refused.value.status) == (field, status)


def test_changes_are_audited_with_tokens_and_survive_a_restart(listed_world) -> None:  # type: ignore[no-untyped-def]
    world = listed_world
    now = world.clock.now
    world.lists.create("deny", "cards", "card", owner="o", reason="r", actor=LEAD, now_ms=now)
    entry = world.lists.add("deny", "cards", PAN, reason="theft", actor=LEAD, now_ms=now)
    actions = [(e.action, e.actor, e.target) for e in world.audit.find(action="list.")]
    assert actions == [
        ("list.create", "user:lead", "deny:cards"),
        ("list.add", "user:lead", "deny:cards"),
    ]
    assert world.audit.find(action="list.add")[0].after["value"] == entry.value
    world.lists.close()
    again = ListService.open(world.data_dir, world.tokenizer, None)
    try:
        assert again.contains("deny", "cards", "card", entry.value, now)
        assert [e.entry_id for e in again.entries("deny", "cards", now_ms=now)] == [entry.entry_id]
    finally:
        again.close()
    world.reopen()


# -- the CEL side -------------------------------------------------------------------------


def test_membership_is_rewritten_to_one_boolean_variable() -> None:
    checked = check_condition(
        "r", "card in deny_list('stolen_cards') && amount > 5", {"amount"}, list_reads=True
    )
    name = variable("deny", "stolen_cards", "card")
    assert name in checked.variables and checked.text == f"({name} && (amount > 5))"
    assert membership(name) == ("deny", "stolen_cards", "card")
    assert membership("amount") is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("deny_list('x') == null", "is read only as"),
        ("amount in deny_list('x')", "left of"),
        ("card in deny_list(name)", "literal list name"),
        ("card in deny_list('Bad-Name')", "literal list name"),
        ("card in deny_list('a', 'b')", "one argument"),
    ],
)
def test_other_uses_of_a_list_are_refused(text: str, says: str) -> None:
    with pytest.raises(RuleError, match=says):
        check_condition("r", text, {"amount", "name"}, list_reads=True)


def test_chain_steps_may_not_read_lists() -> None:
    with pytest.raises(RuleError, match="read by rules only"):
        check_condition("chain", "card in deny_list('x')", set())


def test_a_translated_rule_reads_the_list_natively(listed_world) -> None:  # type: ignore[no-untyped-def]
    """The membership variable is a plain bool, so the rule stays in the Python
    translation: the generated rule code names it and calls no CEL."""
    world = listed_world
    payment(world, "p1", "u1", "1.00", card={"number": PAN})
    code = dict(world.engine.generated_code("payment"))
    source = source_of(code[next(k for k in code if k.startswith("rules"))])
    assert "list__deny__stolen_cards__card" in source


# -- the index against a brute-force reference --------------------------------------------

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove"]),
        st.sampled_from(["cards", "devices"]),
        st.sampled_from(["a", "b", "c"]),
        st.one_of(st.none(), st.integers(1, 50)),
    ),
    max_size=40,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_OPS, probe_at=st.integers(0, 60))
def test_contains_agrees_with_a_scan_of_every_live_entry(
    tmp_path: Path, ops: list[tuple[str, str, str, int | None]], probe_at: int
) -> None:
    """`contains` reads an index kept beside the table; the reference reads the service's
    own list of entries (every one, expired included) and checks each by hand."""
    path = tmp_path / f"lists-{uuid.uuid4().hex}.db"
    lists = ListService(path, Tokenizer(b"property-test-key-0123456789"), None)
    try:
        for name in ("cards", "devices"):
            lists.create("deny", name, "device", owner="o", reason="r", actor=LEAD, now_ms=0)
        for op, name, value, ttl in ops:
            if op == "add":
                lists.add("deny", name, value, reason="r", actor=LEAD, now_ms=0, expires_ms=ttl)
            else:
                for entry in lists.entries("deny", name, now_ms=0, include_expired=True):
                    if entry.value == value:
                        lists.remove("deny", name, entry.entry_id, reason="r", actor=LEAD, now_ms=0)
                        break
        for name in ("cards", "devices"):
            every = lists.entries("deny", name, now_ms=0, include_expired=True)
            for value in ("a", "b", "c"):
                expected = any(
                    e.value == value and (e.expires_ms is None or probe_at < e.expires_ms)
                    for e in every
                )
                assert lists.contains("deny", name, "device", value, probe_at) is expected
        again = ListService(path, Tokenizer(b"property-test-key-0123456789"), None)
        try:
            for name in ("cards", "devices"):
                for value in ("a", "b", "c"):
                    assert again.contains("deny", name, "device", value, probe_at) is (
                        lists.contains("deny", name, "device", value, probe_at)
                    )
        finally:
            again.close()
    finally:
        lists.close()


def test_list_reads_come_in_name_order_whatever_the_set_order() -> None:
    """A decision's list values join its features in `list_reads`' order: in name order,
    not a set's (which follows the process's string hash seed), so every process stores
    one feature set for them, not one per order."""
    names = {
        variable("deny", f"list_{i}", subject) for i in range(4) for subject in ("card", "device")
    }
    assert list(list_reads(frozenset(names | {"amount"}))) == sorted(names)
