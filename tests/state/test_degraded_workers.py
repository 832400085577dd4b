"""A worker whose Redis stops answering decides in degraded mode (docs/scale.md): money
leaving fails closed to review and everything else fails open, each decision recorded with
the reason, the state left alone; when Redis is back the worker decides normally again,
without a restart. A private redis-server is started and killed here (not the shared one)."""

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from state_support import engine, feature_ruleset_text, redis_state

from payguard.engine import Engine
from payguard.policy.degraded import REASON_CODE

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")

EVENT = (
    b'{"event_id":"%s","type":"%s","ts":%d,"user_id":"u1","amount":"120.00",'
    b'"merchant":{"id":"m1","category":"ecommerce"}}'
)
LOGIN = (
    b'{"event_id":"%s","type":"login","ts":%d,"user_id":"u1","method":"password","success":true}'
)
T0 = 1_790_000_000_000


class PrivateRedis:
    """A redis-server of this test's own on a free loopback port."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def _send(worker: Engine, raw: bytes) -> tuple[str, list[str]]:
    decision, _ = worker.process_queued(worker.decoder.decode(raw))
    worker.flush()
    return decision.action, [r.code for r in decision.reasons]


def test_redis_gone_then_back(redis: PrivateRedis) -> None:
    worker = engine(feature_ruleset_text(), state=redis_state(redis.url, "deg"))
    _, rules = _send(worker, EVENT % (b"p-1", b"payment", T0))
    assert REASON_CODE not in rules

    redis.kill()
    paid = _send(worker, EVENT % (b"p-2", b"payment", T0 + 1_000))
    logged = _send(worker, LOGIN % (b"l-1", T0 + 2_000))
    assert paid == ("review", [REASON_CODE])  # money out: fails closed
    assert logged == ("allow", [REASON_CODE])  # the rest: fails open
    assert worker.metrics.degraded == 2
    assert worker.recorder.lookup("p-2") is not None  # recorded: rebuild-state replays it

    redis.start()  # empty again: a Redis restarted without its data
    for attempt in range(50):  # the client reconnects on its own
        _, rules = _send(worker, EVENT % (b"p-%d" % (3 + attempt), b"payment", T0 + 3_000))
        if REASON_CODE not in rules:
            break
        time.sleep(0.1)
    assert REASON_CODE not in rules
    assert worker.metrics.degraded <= 2 + attempt


def test_process_decides_in_degraded_mode_as_process_queued_does(redis: PrivateRedis) -> None:
    """The replay/CLI path (`Engine.process`, with or without its own commit) declares
    the same behaviour as the HTTP path when the state store is gone."""
    worker = engine(feature_ruleset_text(), state=redis_state(redis.url, "deg2"))
    redis.kill()
    paid = worker.process(worker.decoder.decode(EVENT % (b"q-1", b"payment", T0)))
    logged = worker.process(worker.decoder.decode(LOGIN % (b"q-2", T0 + 1)), commit=True)
    assert [(d.action, [r.code for r in d.reasons], repeat) for d, repeat in (paid, logged)] == [
        ("review", [REASON_CODE], False),
        ("allow", [REASON_CODE], False),
    ]
    worker.flush()
    assert worker.recorder.lookup("q-1") is not None and worker.recorder.lookup("q-2")
    assert worker.process(worker.decoder.decode(LOGIN % (b"q-2", T0 + 1)))[1]  # a repeat
