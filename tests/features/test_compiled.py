"""The generated feature code: event values read inline agree with the extractors, and a
failure inside generated code shows its line (features.compiled, payguard.generated)."""

import traceback
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from payguard.events import Card, Event, Merchant, Payee
from payguard.features import FeatureState, load_catalog
from payguard.features.compiled import key_expr, match_expr, value_lines
from payguard.features.spec import (
    VALUE_CODE,
    VALUE_EXTRACTORS,
    Catalog,
    EventFilter,
    FeatureSpec,
    source_network,
)
from payguard.generated import filename_of, source_of

IPS = ["10.0.0.1", "10.0.0.200", "2001:db8::1", "::ffff:10.0.0.9", "999.1.1.1", "nonsense"]


@st.composite
def events(draw: st.DrawFn) -> Event:
    maybe = lambda values: draw(st.sampled_from([None, *values]))  # noqa: E731
    return Event(
        event_id="e1",
        type=draw(st.sampled_from(["payment", "login", "transfer", "sim_swap"])),
        ts=draw(st.integers(min_value=0, max_value=2**45)),
        user_id=maybe(["u0", "u|1"]),
        device_id=maybe(["d0"]),
        ip=maybe(IPS),
        city=maybe(["Chengdu"]),
        phone=maybe(["tel_a"]),
        id_number=maybe(["id_1"]),
        card=maybe([Card(token="pan_1")]),
        amount=maybe([0, 1, 10**7]),
        merchant=maybe([Merchant(id="m0", category="gift_card"), Merchant(id="m1")]),
        payee=maybe([Payee(id="p0"), Payee(id="u0", card=Card(token="pan_3"))]),
        channel=maybe(["app", "api"]),
    )


@given(events())
def test_value_code_reads_what_the_extractors_read(event: Event) -> None:
    assert VALUE_CODE.keys() == VALUE_EXTRACTORS.keys()
    names = list(VALUE_CODE)
    namespace: dict[str, Any] = {"source_network": source_network, "event": event}
    exec("\n".join(value_lines(names, "event")), namespace)
    for name in names:
        assert namespace[f"v_{name}"] == VALUE_EXTRACTORS[name](event), name


@given(events())
def test_pair_keys_join_the_parts_or_are_absent(event: Event) -> None:
    namespace: dict[str, Any] = {"source_network": source_network, "event": event}
    exec("\n".join(value_lines(VALUE_CODE, "event")), namespace)
    for by in ("user+device", "merchant+net", "user+merchant+card"):
        parts = [VALUE_EXTRACTORS[p](event) for p in by.split("+")]
        want = None if any(p is None for p in parts) else "|".join(parts)
        assert eval(key_expr(by), namespace) == want, by


FILTERS = st.builds(
    EventFilter,
    types=st.just(["payment"]),
    success=st.sampled_from([None, True, False]),
    categories=st.sampled_from([None, [], ["gift_card"], ["gift_card", "food"]]),
    channels=st.sampled_from([None, ["api"], ["app", "api"]]),
    outcomes=st.sampled_from([None, ["passed"], ["failed", "abandoned"]]),
    methods=st.sampled_from([None, ["face"], ["face", "sms"]]),
)


@given(events(), FILTERS, st.sampled_from([None, True, False]))
def test_inline_filter_test_agrees_with_matches(event: Event, flt: EventFilter, ok: Any) -> None:
    """The filters' tests inlined in the update code (`match_expr`) keep an event exactly
    when `EventFilter.matches` does, on every field it reads."""
    event = msgspec.structs.replace(event, success=ok)
    for outcome, method in (("passed", "face"), ("failed", "sms"), (None, None)):
        event = msgspec.structs.replace(event, outcome=outcome, method=method)
        assert eval(match_expr(flt, "event"), {"event": event}) is flt.matches(event)


def test_snapshot_traceback_shows_the_generated_line() -> None:
    state = FeatureState(load_catalog())
    plan = state.plan(["count_login_fail_by_ip_10m"], "login")
    event = Event(event_id="e1", type="login", ts=1, ip="10.0.0.1")
    try:
        plan.read([], event, {})  # no entity tables: the lookup fails inside the code
    except IndexError as exc:
        text = "".join(traceback.format_exception(exc))
    else:
        raise AssertionError("expected an IndexError")
    assert filename_of(plan.read) in text
    assert "<payguard snapshot login #" in text
    assert "record = entities[" in text


def test_each_plan_and_filer_has_its_own_commented_source() -> None:
    state = FeatureState(load_catalog())
    names = ["count_login_fail_by_ip_10m", "is_new_device_any_by_user_90d"]
    first, second = state.plan(names, "login"), state.plan(names, "login")
    assert filename_of(first.read) != filename_of(second.read)
    source = source_of(first.read)
    for name in names:
        assert f"# feature {name}" in source
    own, referenced, payee = state.filers("login")
    assert "<payguard update login #" in filename_of(own)
    assert "# watched history" in source_of(own)
    assert "referenced" in filename_of(referenced)
    assert payee is None


def test_register_dates_the_account_in_a_catalog_without_user_streams() -> None:
    """The watched-history bookkeeping of a `register` reads the account even when no
    stream of the catalog is keyed by user (the generated code once failed with NameError)."""
    catalog = Catalog(
        filters={"login_fail": EventFilter(types=["login"], success=False)},
        features=[FeatureSpec(how="count", over="login_fail", by="ip", windows=["10m"])],
    ).validate()
    state = FeatureState(catalog)
    state.update(Event(event_id="r1", type="register", ts=5, user_id="u1", ip="10.0.0.1"))
    assert state.watch.registered == {"u1": 5}
