"""What webhooks cost: the decision path with the notifier attached, and delivery speed.

1. Replay (CPU time): the example events (`examples/events.jsonl`, about 1.3 % of them `review` or
   `hold`) decided in-process on a fresh store, flushed every 100 events, with and without
   webhooks attached (one endpoint), interleaved `runs` times; medians of events per CPU second.
2. Outbox write as the server does it: one decision needing attention queued and flushed
   (one SQLite commit), `writes` times; median µs per flush.
3. Delivery: `deliveries` webhooks POSTed by the dispatcher to a receiver on loopback
   (http.server in a thread, signature checked), one at a time; deliveries/s and the
   median attempt duration recorded in the outbox (ms).
4. Time spent inside the notifier during the replay, per event (its own clock around each
   call): the direct measure of what webhooks add to the decision path.

    PYTHONPATH=src .venv/bin/python bench/webhooks_speed.py [RUNS]
"""

import hashlib
import hmac
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec

from payguard.config import Settings, load_settings
from payguard.decision import Decision
from payguard.engine import Engine
from payguard.events import Event
from payguard.holds import Hold
from payguard.webhooks import Outbox, RetryPolicy, WebhookNotifier, Webhooks
from payguard.webhooks.dispatcher import Dispatcher

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "examples" / "events.jsonl"
SECRET = "whsec-bench-0123456789abcdef"
FLUSH_EVERY = 100


def _settings(data_dir: Path, url: str) -> Settings:
    loaded = load_settings(env={"PAYGUARD_DATA_DIR": str(data_dir)})
    return msgspec.structs.replace(
        loaded,
        ruleset=REPO / "rules" / "default.yaml",
        webhook_urls=(url,),
        webhook_secrets=(SECRET,),
    )


class _TimedListener:
    """The notifier, with the time spent in it summed: what webhooks add to the decision
    path, measured directly (the replay comparison alone cannot resolve it here)."""

    def __init__(self, notifier: WebhookNotifier) -> None:
        self.notifier = notifier
        self.ns = 0

    def recorded(self, event: Event, decision: Decision) -> None:
        started = time.perf_counter_ns()
        self.notifier.recorded(event, decision)
        self.ns += time.perf_counter_ns() - started

    def hold_resolved(self, hold: Hold) -> None:
        started = time.perf_counter_ns()
        self.notifier.hold_resolved(hold)
        self.ns += time.perf_counter_ns() - started

    def flush(self) -> None:
        started = time.perf_counter_ns()
        self.notifier.flush()
        self.ns += time.perf_counter_ns() - started

    def discard_pending(self) -> None:
        self.notifier.discard_pending()


def _notifier_us_per_event(lines: list[bytes], data_dir: Path) -> float:
    """Wall µs per event spent in the notifier (queue, encode, outbox commits)."""
    settings = _settings(data_dir, "http://127.0.0.1:9/hooks")
    engine = Engine.open(settings)
    webhooks = Webhooks.open(settings)
    assert webhooks is not None
    timed = _TimedListener(webhooks.notifier)
    engine.listeners.append(timed)
    for n, line in enumerate(lines, start=1):
        engine.process(engine.decoder.decode(line))
        if n % FLUSH_EVERY == 0:
            engine.flush()
    engine.flush()
    webhooks.close()
    engine.close()
    return timed.ns / 1000 / len(lines)


def _replay(lines: list[bytes], data_dir: Path, with_webhooks: bool) -> float:
    """Events per CPU second of one replay on a fresh store (deliveries are written, not
    sent). CPU time, not wall time: the shared machine's other jobs would otherwise swamp
    a difference of a few per cent; the outbox commits do not fsync (WAL, synchronous=NORMAL)."""
    settings = _settings(data_dir, "http://127.0.0.1:9/hooks")
    engine = Engine.open(settings)
    webhooks = Webhooks.open(settings) if with_webhooks else None
    if webhooks is not None:
        webhooks.attach(engine)
    started = time.process_time()
    for n, line in enumerate(lines, start=1):
        engine.process(engine.decoder.decode(line))
        if n % FLUSH_EVERY == 0:
            engine.flush()
    engine.flush()
    elapsed = time.process_time() - started
    if webhooks is not None:
        webhooks.close()
    engine.close()
    return len(lines) / elapsed


def _outbox_write_us(root: Path, writes: int) -> float:
    """Median µs to queue one outcome change and flush it (one commit)."""
    outbox = Outbox(root / "write-bench.db")
    notifier = WebhookNotifier(outbox, ["http://127.0.0.1:9/hooks"])
    times = []
    for n in range(writes):
        started = time.perf_counter_ns()
        notifier.outcome_changed(f"ev-{n}", "decided", "hold:revoked", {"hold_id": f"h-{n}"})
        notifier.flush()
        times.append((time.perf_counter_ns() - started) / 1000)
    outbox.close()
    return statistics.median(times)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        header = self.headers.get("Payguard-Signature", "")
        stamp = header.split(",")[0].removeprefix("t=")
        good = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        ok = f"v1={good.hexdigest()}" in header
        self.send_response(200 if ok else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _deliver(root: Path, deliveries: int) -> tuple[float, float]:
    """(deliveries/s, median attempt ms) to a loopback receiver."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    outbox = Outbox(root / "deliver-bench.db")
    notifier = WebhookNotifier(outbox, [url])
    for n in range(deliveries):
        notifier.outcome_changed(f"ev-{n}", "decided", "hold:released", {"hold_id": f"h-{n}"})
    notifier.flush()
    dispatcher = Dispatcher(outbox, [SECRET], RetryPolicy())
    started = time.perf_counter()
    while dispatcher.deliver_due():
        pass
    elapsed = time.perf_counter() - started
    counts = outbox.counts()
    durations = [
        a.duration_ms for d in outbox.find(limit=deliveries) for a in outbox.attempts(d.delivery_id)
    ]
    outbox.close()
    server.shutdown()
    server.server_close()
    if counts["delivered"] != deliveries:
        raise RuntimeError(f"not every delivery was accepted: {counts}")
    return deliveries / elapsed, statistics.median(durations)


def run(runs: int = 3, writes: int = 2_000, deliveries: int = 2_000) -> dict[str, float]:
    lines = EVENTS.read_bytes().splitlines()
    with tempfile.TemporaryDirectory(prefix="payguard-bench-") as tmp:
        root = Path(tmp)
        off, on = [], []
        for i in range(runs):  # interleaved: a noisy neighbour hits both alike
            off.append(_replay(lines, root / f"off{i}", False))
            on.append(_replay(lines, root / f"on{i}", True))
        in_notifier = [_notifier_us_per_event(lines, root / f"timed{i}") for i in range(runs)]
        write_us = _outbox_write_us(root, writes)
        per_s, attempt_ms = _deliver(root, deliveries)
    off_median, on_median = statistics.median(off), statistics.median(on)
    return {
        "replay_events_per_s_without": off_median,
        "replay_events_per_s_with": on_median,
        "replay_change_pct": 100 * (on_median / off_median - 1),
        **{f"replay_without_run{i + 1}": v for i, v in enumerate(off)},
        **{f"replay_with_run{i + 1}": v for i, v in enumerate(on)},
        "notifier_us_per_event_p50": statistics.median(in_notifier),
        "outbox_flush_us_p50": write_us,
        "deliveries_per_s": per_s,
        "attempt_ms_p50": attempt_ms,
    }


if __name__ == "__main__":
    figures = run(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
    for name, value in figures.items():
        print(f"{name:32s} {value:,.1f}")
