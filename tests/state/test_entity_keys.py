"""The generated entity-key function of the Redis state (`_hids_code`) against the brute
force it replaced: every kind's own key extractor (`FeatureState.kinds`, pairs keyed
`a|b`), the watched kinds' and the phone, over random events with any field missing."""

from hypothesis import given, settings
from hypothesis import strategies as st

from payguard.events import Event
from payguard.events.contract import Card, Merchant, Payee
from payguard.features import FeatureState, load_catalog
from payguard.features.spec import ENTITY_EXTRACTORS
from payguard.state.redis import _hids_code

FEATURES = FeatureState(load_catalog())
KINDS = [(kind.by, kind.key) for kind in FEATURES.kinds]
WATCHED = list(FEATURES.export()["watch"]["kinds"])

text = st.sampled_from(["a", "b", "7", "x|y"]) | st.text(min_size=1, max_size=4)
maybe = st.none() | text
ips = st.none() | st.sampled_from(["10.1.2.3", "223.104.93.115", "::1", "2001:db8::7", "junk"])


@st.composite
def events(draw: st.DrawFn) -> Event:
    card = draw(st.none() | text.map(lambda t: Card(token=t)))
    merchant = draw(st.none() | st.builds(Merchant, id=text, category=text))
    payee = draw(st.none() | st.builds(Payee, id=text))
    return Event(
        event_id="e", type="payment", ts=1, user_id=draw(maybe), device_id=draw(maybe),
        ip=draw(ips), city=draw(maybe), phone=draw(maybe), id_number=draw(maybe),
        card=card, merchant=merchant, payee=payee, channel=draw(maybe),
    )  # fmt: skip


def _brute(event: Event, extra: list[str]) -> set[tuple[str, str]]:
    found = {(by, k) for by, key in KINDS if (k := key(event)) is not None}
    for name in extra:
        if (k := ENTITY_EXTRACTORS[name](event)) is not None:
            found.add((name, k))
    return found


@settings(max_examples=300, deadline=None)
@given(events())
def test_generated_keys_match_each_kinds_extractor(event: Event) -> None:
    kinds = [by for by, _ in KINDS]
    assert _hids_code(kinds, [])(event) == _brute(event, [])
    extra = [*WATCHED, "phone"]
    assert _hids_code(kinds, extra)(event) == _brute(event, extra)
