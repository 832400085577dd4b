"""Group commit (api/commits.py): many requests' events, one commit, each answered after it.

What must hold, whatever the timing: events decided concurrently are decided in arrival
order as one sequential process would decide them; a request is answered only once its
event is durable; a failed commit answers 503 to its requests and to every request
decided behind them, and leaves every state as it was; a kill -9 in the middle of the
traffic loses no answered event and applies none twice.
"""

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiserver import Server
from durable_support import (
    admin_key,
    card_bind,
    fill_disk,
    fill_log,
    free_port,
    recent_ms,
    serve_env,
    settings,
    start_serve,
    state,
    stop,
    transfer,
    wait_until_serving,
)
from hypothesis import given
from hypothesis import settings as settings_for_hypothesis
from hypothesis import strategies as st

from payguard.api.commits import GroupCommitter
from payguard.decision import Decision
from payguard.engine import SNAPSHOT_FILE, Engine, StorageError
from payguard.events import Event
from payguard.sim.population import luhn_complete


def _stream(prefix: str, n_users: int = 3, per_user: int = 6) -> list[dict[str, Any]]:
    """Card binds (a review from the third within the hour) and transfers (a hold from
    1,000 yuan), interleaved across accounts, so that decisions depend on earlier events."""
    events = []
    start = recent_ms(60)
    for i in range(per_user):
        for u in range(n_users):
            user = f"{prefix}-u{u}"
            ts = start + len(events) * 1_000
            if i % 2 == 0:
                pan = luhn_complete(f"6222021{u:03d}{i:07d}0")
                events.append(card_bind(f"{prefix}-{u}-{i}", user, int(ts), pan))
            else:
                amount = "3000.00" if i == 3 else "20.00"
                events.append(transfer(f"{prefix}-{u}-{i}", user, int(ts), amount))
    return events


def _decoded(engine: Engine, bodies: list[dict[str, Any]]) -> list[Event]:
    return [engine.decoder.decode(json.dumps(body).encode()) for body in bodies]


def _what(decision: Decision) -> tuple[str, int, list[str]]:
    return decision.action, decision.score, [r.rule for r in decision.reasons]


def _big(body: dict[str, Any]) -> dict[str, Any]:
    """Too large for the free space left in a page: its insert needs a new one."""
    return {**body, "attrs": {"note": "n" * 20_000}}


def test_concurrent_events_are_decided_in_order_and_share_one_commit(tmp_path: Path) -> None:
    bodies = _stream("c")
    for name in ("sequential", "grouped"):
        (tmp_path / name).mkdir()
    sequential = Engine.open(settings(tmp_path / "sequential"))
    grouped = Engine.open(settings(tmp_path / "grouped"))
    try:
        expected = [
            _what(sequential.process(e, commit=True)[0]) for e in _decoded(sequential, bodies)
        ]
        assert {action for action, _, _ in expected} >= {"allow", "review", "hold"}
        committer = GroupCommitter(grouped)

        async def concurrently() -> list[tuple[Decision, bool]]:
            events = _decoded(grouped, bodies)
            return await asyncio.gather(*(committer.process(e) for e in events))

        answered = asyncio.run(concurrently())
        assert [_what(d) for d, _ in answered] == expected
        assert grouped.metrics.group_commits == 1, "all were decided before the first commit"
        assert grouped.metrics.group_committed_events == len(bodies)
        assert grouped.recorder.last_seq() == len(bodies)
        assert state(grouped) == state(sequential)
        committer.close()
    finally:
        sequential.close()
        grouped.close()


def test_a_failed_commit_refuses_its_batch_and_the_one_behind_it(tmp_path: Path) -> None:
    engine = Engine.open(settings(tmp_path))
    committer = GroupCommitter(engine)
    accepted = _decoded(engine, _stream("ok", n_users=2, per_user=4))
    refused = _decoded(engine, [_big(b) for b in _stream("no", n_users=2, per_user=4)])
    recorder = engine.recorder
    real_commit = recorder.commit_sealed
    writing = threading.Event()
    release = threading.Event()

    def held_commit(sealed: Any) -> None:
        """The real commit, once the test has queued a second batch behind it; after it
        fails the disk has room again, so the batch behind is refused by the policy (its
        decisions read the failed events), not by a full disk of its own."""
        writing.set()
        release.wait(timeout=30)
        try:
            real_commit(sealed)
        finally:
            fill_log(engine, full=False)

    async def scenario() -> list[Any]:
        for event in accepted:
            await committer.process(event)
        before = state(engine)
        fill_log(engine, full=True)
        recorder.commit_sealed = held_commit  # type: ignore[method-assign]
        first = asyncio.create_task(committer.process(refused[0]))
        while not writing.is_set():
            await asyncio.sleep(0.001)  # the first batch is being written
        behind = [asyncio.create_task(committer.process(e)) for e in refused[1:]]
        await asyncio.sleep(0)  # decided, queued behind the failing commit
        assert recorder.is_pending(refused[-1].event_id)
        release.set()
        results = await asyncio.gather(first, *behind, return_exceptions=True)
        assert state(engine) == before, "no count, link, chain or hold of the refused"
        return results

    try:
        results = asyncio.run(scenario())
        assert all(isinstance(r, StorageError) for r in results), results
        assert engine.metrics.storage_errors == 1
        assert engine.recorder.last_seq() == len(accepted)
        assert all(engine.recorder.lookup(e.event_id) is None for e in refused)
        assert engine.holds.find(user_id="no-u0", now_ms=0, limit=10) == []

        recorder.commit_sealed = real_commit  # type: ignore[method-assign]
        retried = asyncio.run(committer.process(refused[0]))
        assert retried[1] is False and engine.recorder.last_seq() == len(accepted) + 1
        committer.close()
    finally:
        engine.close()


def _post_all(url: str, bodies: list[dict[str, Any]], clients: int) -> list[httpx.Response]:
    """POST every body, `clients` at a time from as many threads and connections."""
    answers: list[httpx.Response | None] = [None] * len(bodies)

    def worker(k: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in range(k, len(bodies), clients):
                answers[i] = http.post("/v1/events", json=bodies[i])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def test_concurrent_clients_over_http_all_durable_or_all_refused(tmp_path: Path) -> None:
    server = Server(tmp_path, settings(tmp_path)).start()
    try:
        bodies = _stream("h", n_users=8, per_user=8)
        answers = _post_all(server.url, bodies, clients=16)
        assert [a.status_code for a in answers] == [200] * len(bodies)
        for body, answer in zip(bodies, answers, strict=True):
            stored = server.engine.recorder.lookup(body["event_id"])
            assert stored is not None and stored.decision.action == answer.json()["action"]
        assert server.engine.recorder.last_seq() == len(bodies)
        metrics = httpx.get(f"{server.url}/metrics").text
        assert f"payguard_group_committed_events_total {len(bodies)}.0" in metrics

        before = state(server.engine)
        fill_disk(server, full=True)
        refused = _post_all(server.url, [_big(b) for b in _stream("f", 8, 2)], clients=16)
        assert {(a.status_code, a.text) for a in refused} == {
            (503, '{"error":"storage_unavailable"}')
        }
        assert state(server.engine) == before
        assert server.engine.recorder.last_seq() == len(bodies)
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def log_dsn(request: pytest.FixtureRequest) -> str | None:
    """The event log the server commits to: SQLite in its data directory, or the Postgres
    log of scaled-out workers (a schema of the test's own)."""
    if request.param == "sqlite":
        return None
    dsn, schema = request.getfixturevalue("pg_schema")
    return f"{dsn} options='-c search_path={schema}'"


@pytest.mark.slow
def test_kill_9_under_concurrent_load_loses_no_answer_and_applies_nothing_twice(
    tmp_path: Path, log_dsn: str | None
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = serve_env(tmp_path, **({"PAYGUARD_LOG_DSN": log_dsn} if log_dsn else {}))
    on = {"log_dsn": log_dsn} if log_dsn else {}
    auth = admin_key(env)
    bodies = _stream("k", n_users=40, per_user=40)
    answered: dict[str, dict[str, Any]] = {}
    enough = threading.Event()
    crashing = start_serve(env, port)

    def client(k: int, clients: int) -> None:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as http:
            for i in range(k, len(bodies), clients):
                try:
                    answer = http.post("/v1/events", json=bodies[i])
                except httpx.TransportError:
                    return  # the server is gone
                assert answer.status_code == 200, answer.text
                answered[bodies[i]["event_id"]] = answer.json()
                if len(answered) >= 300:
                    enough.set()

    try:
        wait_until_serving(crashing, url)
        threads = [threading.Thread(target=client, args=(k, 16)) for k in range(16)]
        for thread in threads:
            thread.start()
        enough.wait(timeout=120)
        crashing.kill()  # SIGKILL with 16 requests in flight: mid-batch
        crashing.wait(timeout=30)
        for thread in threads:
            thread.join(timeout=60)
    finally:
        if crashing.poll() is None:
            crashing.kill()
            crashing.wait()
    assert len(answered) >= 300

    restarted = start_serve(env, port)
    try:
        wait_until_serving(restarted, url)
        with httpx.Client(base_url=url, headers=auth, timeout=30) as http:
            for body in bodies:
                again = http.post("/v1/events", json=body)
                assert again.status_code == 200, again.text
                first = answered.get(body["event_id"])
                if first is not None:  # answered before the kill: durable, never redone
                    assert again.headers.get("Idempotent-Replay") == "true"
                    assert again.json() == first
    finally:
        stop(restarted)  # graceful: the snapshot holds the state the server had

    from_snapshot = Engine.open(settings(tmp_path, **on))
    try:
        assert from_snapshot.recover() == 0, "the snapshot holds every event"
        recorded = [e.event_id for _, e, _ in from_snapshot.recorder.events_after(0)]
        assert sorted(recorded) == sorted(b["event_id"] for b in bodies), "each recorded once"
        kept = state(from_snapshot)
    finally:
        from_snapshot.close()
    (tmp_path / "data" / SNAPSHOT_FILE).unlink()
    replayed = Engine.open(settings(tmp_path, **on))
    try:
        assert state(replayed) == kept, "the live state applied every event exactly once"
    finally:
        replayed.close()


@settings_for_hypothesis(max_examples=12, deadline=None, derandomize=True)
@given(data=st.data())
def test_any_arrival_pattern_decides_as_one_event_at_a_time(
    data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Against the obvious reference (a commit per event, one after another): events
    arriving in waves of any sizes, with repeats of events still in flight, are decided
    the same, recorded once each, and leave the same state."""
    if not _REFERENCE:  # the same events (and times) for every example
        bodies = _stream("p", n_users=2, per_user=5)
        engine = Engine.open(settings(tmp_path_factory.mktemp("reference")))
        try:
            answers = [_what(engine.process(e, commit=True)[0]) for e in _decoded(engine, bodies)]
            _REFERENCE.append((bodies, answers, state(engine)))
        finally:
            engine.close()
    bodies, expected, expected_state = _REFERENCE[0]
    sizes = data.draw(st.lists(st.integers(1, len(bodies)), min_size=1, max_size=len(bodies)))
    repeats = data.draw(st.lists(st.integers(0, len(bodies) - 1), max_size=4))
    engine = Engine.open(settings(tmp_path_factory.mktemp("grouped")))
    committer = GroupCommitter(engine)
    events = _decoded(engine, bodies)

    async def in_waves() -> list[Decision]:
        decided: list[Decision] = []
        start = 0
        for size in [*sizes, len(events)]:
            wave = events[start : start + size]
            if not wave:
                break
            again = [events[i] for i in repeats if start <= i < start + len(wave)]
            answers = await asyncio.gather(*(committer.process(e) for e in [*wave, *again]))
            decided += [d for d, _ in answers[: len(wave)]]
            assert all(repeat for _, repeat in answers[len(wave) :])
            assert [d for d, _ in answers[len(wave) :]] == [decided[events.index(e)] for e in again]
            start += len(wave)
        return decided

    try:
        decided = asyncio.run(in_waves())
        assert [_what(d) for d in decided] == expected
        assert engine.recorder.last_seq() == len(events)
        assert state(engine) == expected_state
        committer.close()
    finally:
        engine.close()


_REFERENCE: list[tuple[list[dict[str, Any]], list[tuple[str, int, list[str]]], list[Any]]] = []


def test_a_full_queue_holds_new_requests_back_until_a_commit_takes_it(tmp_path: Path) -> None:
    """`max_batch` bounds what is decided and not yet handed to a commit: the requests
    beyond it wait undecided, then go into the next commit."""
    engine = Engine.open(settings(tmp_path))
    committer = GroupCommitter(engine, max_batch=3)
    events = _decoded(engine, _stream("m", n_users=2, per_user=3))
    recorder = engine.recorder
    real_commit = recorder.commit_sealed
    writing, release = threading.Event(), threading.Event()

    def held_commit(sealed: Any) -> None:
        writing.set()
        release.wait(timeout=30)
        real_commit(sealed)

    async def scenario() -> None:
        recorder.commit_sealed = held_commit  # type: ignore[method-assign]
        first = asyncio.create_task(committer.process(events[0]))
        while not writing.is_set():
            await asyncio.sleep(0.001)
        rest = [asyncio.create_task(committer.process(e)) for e in events[1:]]
        await asyncio.sleep(0.01)
        pending = [recorder.is_pending(e.event_id) for e in events[1:]]
        assert pending == [True, True, True, False, False], "three queued, two held back"
        recorder.commit_sealed = real_commit  # type: ignore[method-assign]
        release.set()
        answers = await asyncio.gather(first, *rest)
        assert [repeat for _, repeat in answers] == [False] * len(events)

    try:
        asyncio.run(scenario())
        assert engine.recorder.last_seq() == len(events)
        assert engine.metrics.group_commits == 3  # 1, then the 3 queued, then the 2 held
        committer.close()
    finally:
        engine.close()
