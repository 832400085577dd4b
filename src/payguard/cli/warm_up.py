"""`payguard warm-up`'s load: history checked in one process while another files it.

Checking a line (JSON decode, validation, tokenizing card, ID and phone numbers, the
canonical encoding and its hash) costs about as much as filing the event into features,
graph, chains and the event log, so the two run side by side: a checker process reads the
file and sends batches of (payload, hash) through a pipe, and this process files them. The
pipe holds a few batches, so memory stays bounded on any file size.

The whole load is one transaction of the event log (`Engine.loading`): a bad line, an
event_id reused with another payload, an interrupt or a crash anywhere leaves the log as it
was and writes no snapshot, so a re-run (or `--append`) finishes the job; the state is
never ahead of, or behind, the log.
"""

import contextlib
import gc
import hashlib
import multiprocessing
import signal
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec

from payguard.engine import DuplicateEventError, Engine, batch_gc
from payguard.events import Event, EventDecoder, EventError, Tokenizer

BATCH = 500
"""Events per message between the processes: enough to make the pipe's cost negligible."""
Batch = list[tuple[bytes, bytes]]
"""(canonical payload, its SHA-256) of checked events, in file order."""


class WarmUpError(Exception):
    """The file cannot be loaded (its message names the line or event); nothing was."""


class Checker:
    """The checking process, started on construction; `batches` yields what it passed.

    It refuses the first undecodable or invalid line, and an event_id repeated with
    another payload earlier in the file, as `check` describes."""

    def __init__(self, path: Path, token_key: bytes) -> None:
        if "fork" in multiprocessing.get_all_start_methods():  # cheap: nothing re-imported
            context: Any = multiprocessing.get_context("fork")
        else:
            context = multiprocessing.get_context("spawn")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=check, args=(str(path), token_key, send), name="payguard-check", daemon=True
        )
        self._process.start()
        send.close()  # ours is closed: the pipe ends (EOFError) when the checker's does

    def batches(self) -> Iterator[tuple[int, Batch]]:
        """(bytes of the file read so far, batch) until the file ends; raises
        WarmUpError on a refused line or if the checker died."""
        while True:
            try:
                message: tuple[Any, ...] = self._receive.recv()
            except EOFError:
                raise WarmUpError("the checking process stopped (nothing was loaded)") from None
            if message[0] == "batch":
                yield message[1], message[2]
            elif message[0] == "error":
                raise WarmUpError(message[1])
            else:
                return

    def stop(self) -> None:
        """End the checker if it still runs (the load stopped early) and reap it."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._receive.close()


def check(path: str, token_key: bytes, send: Connection) -> None:
    """The checker process: every non-blank line decoded, validated and tokenized as the
    edge does, then sent as its canonical payload and hash; an ("error", message) for
    the first line refused, ("done",) at the end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the loader decides; it stops us
    gc.disable()  # only acyclic objects: collections would rescan the growing `hashes`
    decode = EventDecoder(Tokenizer(token_key)).decode
    encode = msgspec.json.Encoder(order="sorted").encode
    sha256 = hashlib.sha256
    hashes: dict[str, bytes] = {}
    batch: Batch = []
    read = 0
    try:
        with open(path, "rb") as lines:
            for number, line in enumerate(lines, start=1):
                read += len(line)
                if not line.strip():
                    continue
                try:
                    event = decode(line)
                except EventError as exc:
                    reason = f"event {exc.event_id or '?'}: {exc.field}: {exc.reason}"
                    send.send(("error", f"line {number}: {reason} (nothing was loaded)"))
                    return
                payload = encode(event)
                digest = sha256(payload).digest()
                if hashes.setdefault(event.event_id, digest) != digest:
                    send.send(
                        (
                            "error",
                            f"line {number}: event_id {event.event_id!r} appears "
                            "earlier with another payload (nothing was loaded)",
                        )
                    )
                    return
                batch.append((payload, digest))
                if len(batch) == BATCH:
                    send.send(("batch", read, batch))
                    batch = []
        send.send(("batch", read, batch))
        send.send(("done",))
    except OSError as exc:  # the file, or the pipe when the loader stopped first
        with contextlib.suppress(OSError):
            send.send(("error", f"cannot read {path}: {exc.strerror or exc}"))
    finally:
        send.close()


def load(engine: Engine, checker: Checker, progress: Callable[[int, int], None]) -> tuple[int, int]:
    """File every event the checker passes into `engine` without deciding it, as one
    transaction; returns (events loaded, events in the file): a repeat of an event already
    recorded is skipped. `progress(bytes read, events)` is called after each batch."""
    decode = msgspec.json.Decoder(Event).decode
    warm = engine.warm
    flush_every = engine.settings.flush_every
    loaded = done = 0
    with engine.loading(), batch_gc():
        for read, batch in checker.batches():
            for payload, digest in batch:
                done += 1
                try:
                    loaded += warm(decode(payload), payload, digest)
                except DuplicateEventError as exc:
                    message = f"event {done} of the file: {exc} (nothing was loaded)"
                    raise WarmUpError(message) from None
                if done % flush_every == 0:
                    engine.flush()  # written inside the load's transaction
                    gc.collect(1)  # young generations only: see batch_gc
            progress(read, done)
    return loaded, done
