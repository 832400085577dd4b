"""The engine on a shared state claims each event_id before deciding it: a repeat sent
to another worker answers the first decision, another payload is a conflict, and an
event that is refused gives its claim back at once."""

import uuid
from collections.abc import Iterator

import pytest
from state_support import clean_client, engine, feature_ruleset_text, redis_state, redis_url

from payguard.engine import DuplicateEventError, Engine
from payguard.events import EventError

PAYMENT = (
    b'{"event_id":"%s","type":"payment","ts":1790000000000,"user_id":"u1","amount":"12.00",'
    b'"merchant":{"id":"m1","category":"ecommerce"}}'
)


@pytest.fixture
def workers() -> Iterator[list[Engine]]:
    url = redis_url()
    prefix = f"c{uuid.uuid4().hex[:10]}"
    text = feature_ruleset_text()
    yield [engine(text, state=redis_state(url, prefix)) for _ in range(2)]
    clean_client(url, prefix).close()


def test_a_repeat_on_another_worker_answers_the_first_decision(workers: list[Engine]) -> None:
    first, second = workers
    raw = PAYMENT % b"p-1"
    decision, repeat = first.process(first.decoder.decode(raw))
    assert not repeat
    again, repeat = second.process(second.decoder.decode(raw))
    assert repeat
    assert again == decision


def test_another_payload_under_a_claimed_id_is_a_conflict(workers: list[Engine]) -> None:
    first, second = workers
    first.process(first.decoder.decode(PAYMENT % b"p-2"))
    other = (PAYMENT % b"p-2").replace(b"12.00", b"13.00")
    with pytest.raises(DuplicateEventError):
        second.process(second.decoder.decode(other))


def test_a_refused_event_gives_its_claim_back(workers: list[Engine]) -> None:
    first, second = workers
    label = b'{"event_id":"l-1","type":"label","ts":1790000000000,"ref_event_id":"nowhere",'
    label += b'"label":"fraud","source":"bank"}'
    with pytest.raises(EventError):
        first.process(first.decoder.decode(label))
    with pytest.raises(EventError):  # refused again on its merits, not "still being decided"
        second.process(second.decoder.decode(label))
