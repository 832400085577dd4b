"""The dispatcher against a real receiver on loopback, on a fake clock and a seeded
random source: retries follow the documented schedule exactly, every attempt is
recorded, deliveries end delivered or failed, and a failed one can be sent again."""

import random
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from receiver import OLD_SECRET, SECRET, T0, Receiver

from payguard.webhooks import (
    Dispatcher,
    Outbox,
    OutboxError,
    RetryPolicy,
    WebhookNotifier,
)
from payguard.webhooks.dispatcher import MAX_BACKOFF_MS

SEED = 20261206


class FakeClock:
    def __init__(self, now_ms: int = T0) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def seconds(self) -> int:
        return self.now_ms // 1000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def receiver(clock: FakeClock) -> Iterator[Receiver]:
    started = Receiver([SECRET], clock_s=clock.seconds).start()
    yield started
    started.stop()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    opened = Outbox(tmp_path / "webhooks.db")
    yield opened
    opened.close()


def _queue_one(outbox: Outbox, url: str, clock: FakeClock, event_id: str = "ev-1") -> str:
    notifier = WebhookNotifier(outbox, [url], clock=clock)
    notifier.outcome_changed(event_id, "decided", "hold:revoked", {"hold_id": f"hold-{event_id}"})
    notifier.flush()
    [delivery] = outbox.find(subject=event_id, limit=10)
    return delivery.delivery_id


def _dispatcher(outbox: Outbox, clock: FakeClock, policy: RetryPolicy, **kw: object) -> Dispatcher:
    secrets = kw.pop("secrets", [SECRET])
    assert isinstance(secrets, list)
    return Dispatcher(outbox, secrets, policy, clock=clock, rng=random.Random(SEED))


def test_retries_follow_the_backoff_schedule_until_the_receiver_accepts(
    outbox: Outbox, receiver: Receiver, clock: FakeClock
) -> None:
    receiver.fail_first = 3
    policy = RetryPolicy(timeout_ms=5_000, backoff_ms=1_000, max_attempts=5)
    dispatcher = _dispatcher(outbox, clock, policy)
    delivery_id = _queue_one(outbox, receiver.url, clock)
    twin = random.Random(SEED)  # draws the same jitter the dispatcher draws
    expected_at = [T0]
    for failed in (1, 2, 3):
        assert dispatcher.deliver_due() == 1
        delivery = outbox.get(delivery_id)
        assert delivery is not None and delivery.state == "pending"
        due = clock.now_ms + policy.delay_ms(failed, twin.random())
        assert delivery.next_attempt_ms == due
        clock.now_ms = due - 1
        assert dispatcher.deliver_due() == 0, "nothing is sent before it is due"
        clock.now_ms = due
        expected_at.append(due)
    assert dispatcher.deliver_due() == 1
    delivery = outbox.get(delivery_id)
    assert delivery is not None
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 4, 200)
    attempts = outbox.attempts(delivery_id)
    assert [(a.number, a.at_ms, a.status, a.error) for a in attempts] == [
        (1, expected_at[0], 500, None),
        (2, expected_at[1], 500, None),
        (3, expected_at[2], 500, None),
        (4, expected_at[3], 200, None),
    ]
    assert all(a.duration_ms >= 0 for a in attempts)
    assert receiver.accepted == {delivery_id: 1}
    seen = [(r.delivery_id, r.headers["Payguard-Attempt"]) for r in receiver.requests]
    assert seen == [(delivery_id, str(n)) for n in (1, 2, 3, 4)]
    first = receiver.requests[0]
    assert first.headers["Payguard-Event-Type"] == "outcome.changed"
    assert first.json["id"] == delivery_id and first.json["type"] == "outcome.changed"
    assert first.json["data"] == {
        "event_id": "ev-1",
        "old_state": "decided",
        "new_state": "hold:revoked",
        "detail": {"hold_id": "hold-ev-1"},
    }
    assert {r.body for r in receiver.requests} == {first.body}, "the body never changes"
    assert dispatcher.deliver_due() == 0 and outbox.next_due_ms() is None


def test_after_max_attempts_it_is_failed_and_a_manual_retry_starts_a_new_round(
    outbox: Outbox, receiver: Receiver, clock: FakeClock
) -> None:
    receiver.fail_all = True
    policy = RetryPolicy(backoff_ms=1_000, max_attempts=3)
    dispatcher = _dispatcher(outbox, clock, policy)
    delivery_id = _queue_one(outbox, receiver.url, clock)
    for _ in range(3):
        due = outbox.next_due_ms()
        assert due is not None
        clock.now_ms = due
        assert dispatcher.deliver_due() == 1
    failed = outbox.get(delivery_id)
    assert failed is not None
    assert (failed.state, failed.attempts, failed.last_status) == ("failed", 3, 500)
    assert failed.finished_ms is not None and outbox.next_due_ms() is None
    assert [d.delivery_id for d in outbox.find(state="failed", limit=10)] == [delivery_id]

    receiver.fail_all = False
    clock.now_ms += 3_600_000
    again = outbox.retry(delivery_id, clock.now_ms)
    assert (again.state, again.round_attempts, again.attempts) == ("pending", 0, 3)
    assert dispatcher.deliver_due() == 1
    done = outbox.get(delivery_id)
    assert done is not None and (done.state, done.attempts) == ("delivered", 4)
    assert [a.status for a in outbox.attempts(delivery_id)] == [500, 500, 500, 200]
    with pytest.raises(OutboxError, match="is delivered, not failed") as conflict:
        outbox.retry(delivery_id, clock.now_ms)
    assert conflict.value.status == 409
    with pytest.raises(OutboxError, match="no such delivery") as unknown:
        outbox.retry("whd_nope", clock.now_ms)
    assert unknown.value.status == 404


def test_a_delivery_past_its_max_age_is_failed_without_waiting(
    outbox: Outbox, receiver: Receiver, clock: FakeClock
) -> None:
    receiver.fail_all = True
    policy = RetryPolicy(backoff_ms=60_000, max_attempts=10, max_age_ms=30_000)
    dispatcher = _dispatcher(outbox, clock, policy)
    delivery_id = _queue_one(outbox, receiver.url, clock)
    assert dispatcher.deliver_due() == 1
    delivery = outbox.get(delivery_id)
    assert delivery is not None and (delivery.state, delivery.attempts) == ("failed", 1)


def test_refused_connections_and_timeouts_are_recorded_as_errors(
    outbox: Outbox, receiver: Receiver, clock: FakeClock
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}/hooks"
    closed.close()
    policy = RetryPolicy(timeout_ms=200, backoff_ms=1_000, max_attempts=5)
    dispatcher = _dispatcher(outbox, clock, policy)
    refused = _queue_one(outbox, dead_url, clock, "ev-refused")
    receiver.delay_s = 1.0
    slow = _queue_one(outbox, receiver.url, clock, "ev-slow")
    assert dispatcher.deliver_due() == 2
    [refusal] = outbox.attempts(refused)
    assert refusal.status is None and refusal.error is not None
    assert refusal.error.startswith("ConnectionRefusedError")
    [timeout] = outbox.attempts(slow)
    assert timeout.status is None and timeout.error is not None and "timed out" in timeout.error
    for delivery_id in (refused, slow):
        delivery = outbox.get(delivery_id)
        assert delivery is not None and delivery.state == "pending"
        assert delivery.last_error is not None


def test_during_rotation_a_receiver_holding_only_the_old_secret_accepts(
    outbox: Outbox, clock: FakeClock
) -> None:
    old_only = Receiver([OLD_SECRET], clock_s=clock.seconds).start()
    try:
        delivery_id = _queue_one(outbox, old_only.url, clock)
        dispatcher = _dispatcher(outbox, clock, RetryPolicy(), secrets=[SECRET, OLD_SECRET])
        assert dispatcher.deliver_due() == 1
        assert old_only.accepted == {delivery_id: 1}
        header = old_only.requests[0].headers["Payguard-Signature"]
        assert header.startswith(f"t={T0 // 1000},v1=") and header.count("v1=") == 2
    finally:
        old_only.stop()


def test_a_wrong_secret_is_refused_by_the_receiver_and_retried(
    outbox: Outbox, receiver: Receiver, clock: FakeClock
) -> None:
    delivery_id = _queue_one(outbox, receiver.url, clock)
    dispatcher = _dispatcher(outbox, clock, RetryPolicy(), secrets=["whsec-wrong-000000000000"])
    assert dispatcher.deliver_due() == 1
    delivery = outbox.get(delivery_id)
    assert delivery is not None and (delivery.state, delivery.last_status) == ("pending", 400)
    assert not receiver.accepted


def test_the_thread_delivers_what_the_notifier_writes_and_stops(
    tmp_path: Path, receiver: Receiver, clock: FakeClock
) -> None:
    outbox = Outbox(tmp_path / "webhooks.db")
    dispatcher = _dispatcher(outbox, clock, RetryPolicy())
    notifier = WebhookNotifier(outbox, [receiver.url], clock=clock, on_written=dispatcher.wake)
    dispatcher.start()
    try:
        for n in range(5):
            notifier.outcome_changed(f"ev-{n}", "decided", "hold:released", {})
        notifier.flush()
        deadline = time.monotonic() + 30
        while len(receiver.accepted) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        dispatcher.stop()
        outbox.close()
    assert sorted(receiver.accepted.values()) == [1] * 5


@given(
    backoff=st.integers(1, 3_600_000),
    attempt=st.integers(1, 60),
    jitter=st.floats(0, 1, exclude_max=True),
)
def test_each_delay_lies_in_the_upper_half_of_the_doubled_ceiling(
    backoff: int, attempt: int, jitter: float
) -> None:
    ceiling = backoff
    for _ in range(attempt - 1):  # brute force: double, then cap
        ceiling = min(ceiling * 2, MAX_BACKOFF_MS)
    ceiling = min(ceiling, MAX_BACKOFF_MS)
    delay = RetryPolicy(backoff_ms=backoff).delay_ms(attempt, jitter)
    assert ceiling // 2 <= delay <= ceiling


class _BrokenTransport:
    """A transport with a bug: it raises something no network error is."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
        raise ValueError("header value has a newline")


def test_a_transport_bug_is_recorded_as_a_failed_attempt_not_a_stall(
    outbox: Outbox, clock: FakeClock
) -> None:
    delivery_id = _queue_one(outbox, "http://127.0.0.1:9/hooks", clock)
    dispatcher = Dispatcher(
        outbox, [SECRET], RetryPolicy(), transport=_BrokenTransport(), clock=clock
    )
    assert dispatcher.deliver_due() == 1
    [attempt] = outbox.attempts(delivery_id)
    assert attempt.error == "ValueError: header value has a newline" and attempt.status is None
    delivery = outbox.get(delivery_id)
    assert delivery is not None and delivery.state == "pending"
