"""`payguard warm-up`'s load: one process checks and records the history, another files it.

Checking a line (JSON decode, validation, tokenizing card, ID and phone numbers, the
canonical encoding and its hash) and recording it in the event log cost about as much as
filing the event into features, graph and chains, so the two run side by side: a checker
process reads the file, records each new event in the event log (one SQLite transaction
for the whole load) and sends batches of what it recorded through a pipe, and this process
files them (`Engine.file`). This process then does only what the state needs; the pipe
holds a few batches, so memory stays bounded on any file size.

The load is all or nothing: a bad line, an event_id reused with another payload, an
interrupt or a crash anywhere rolls the checker's transaction back and writes no snapshot,
so a re-run (or `--append`) finishes the job. The checker commits only when this process
has filed every event and asks it to (`Checker.commit`), so the state is never ahead of,
or behind, the log.
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

from payguard.engine import DuplicateEventError, Engine, batch_gc, warm_up_decision
from payguard.events import LABEL_TYPES, OUTCOME_TYPES, Event, EventDecoder, EventError, Tokenizer
from payguard.store import SQLiteRecorder

REFERENCING = LABEL_TYPES | OUTCOME_TYPES
"""Events filed with the event they point at: labels (features, graph) and challenge
results (the outcome book, which clears what a strong step-up passed in the history)."""
BATCH = 500
"""Events per message between the processes: enough to make the pipe's cost negligible."""


class Batch(msgspec.Struct, frozen=True):
    """Events the checker recorded, in file order, with consecutive sequence numbers."""

    read: int
    """Bytes of the file read so far (for progress)."""
    first_seq: int
    """The first event's place in the event log; the others follow it (repeats of events
    already recorded are not sent, and take no place)."""
    events: bytes
    """The events' canonical payloads as one JSON array: decoding it as a list costs
    half as much as decoding each payload alone."""
    referenced: dict[int, Event]
    """Position in `events` → the recorded event a label or challenge result there
    references."""


class WarmUpError(Exception):
    """The file cannot be loaded (its message names the line or event); nothing was."""


class Checker:
    """The checking and recording process, started on construction; `record` lets it begin,
    `batches` yields what it recorded, `commit` makes the load durable.

    Construct it before anything opens the database: a forked process must not inherit
    SQLite's state of connections open in its parent (SQLite's "how to corrupt", 2.6).
    It refuses the first undecodable or invalid line, an event_id repeated with another
    payload earlier in the file, and one recorded before with another payload, as `check`
    describes."""

    def __init__(self, path: Path, token_key: bytes, database: Path, flush_every: int) -> None:
        if "fork" in multiprocessing.get_all_start_methods():  # cheap: nothing re-imported
            context: Any = multiprocessing.get_context("fork")
        else:
            context = multiprocessing.get_context("spawn")
        self._receive, send = context.Pipe(duplex=False)
        orders, self._orders = context.Pipe(duplex=False)
        self._process = context.Process(
            target=check,
            args=(str(path), token_key, str(database), flush_every, send, orders),
            kwargs={"inherited": (self._receive, self._orders)},
            name="payguard-check",
            daemon=True,
        )
        self._process.start()
        send.close()  # ours are closed: the pipes end (EOFError) when the other side's do
        orders.close()
        self._committed = False
        self.loaded = self.total = 0
        """Events recorded and events in the file, once `batches` has ended."""

    def record(self) -> None:
        """Let the checker open the event log and record (the loader has opened the data
        directory and may load into it)."""
        self._orders.send("record")

    def batches(self) -> Iterator[Batch]:
        """What the checker recorded, until the file ends; raises WarmUpError on a refused
        line or if the checker died."""
        while True:
            message = self._message()
            if message[0] == "batch":
                yield message[1]
            else:
                self.loaded, self.total = message[1], message[2]
                return

    def commit(self) -> None:
        """Have the checker commit the load (every batch must have been filed); raises
        WarmUpError if it could not."""
        self._orders.send("commit")
        self._message()
        self._committed = True

    def _message(self) -> tuple[Any, ...]:
        try:
            message: tuple[Any, ...] = self._receive.recv()
        except EOFError:
            raise WarmUpError("the checking process stopped (nothing was loaded)") from None
        if message[0] == "error":
            raise WarmUpError(message[1])
        return message

    def stop(self) -> None:
        """Wait for the checker to finish its checkpoint if the load was committed; else
        end it if it still runs (its transaction is then rolled back). Reap it."""
        if not self._committed and self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._receive.close()
        self._orders.close()


class _Refused(Exception):
    """The load cannot go on; the message names the line or event and the reason."""


def check(
    path: str,
    token_key: bytes,
    database: str,
    flush_every: int,
    send: Connection,
    orders: Connection,
    inherited: tuple[Connection, ...] = (),
) -> None:
    """The checker process: once the loader says "record", every non-blank line decoded,
    validated and tokenized as the edge does, then recorded in the event log inside one
    transaction and sent in batches; ("done", recorded, events) at the end, then
    ("committed",) once the loader's order to commit is carried out. Anything else (a
    refused line, an error, the loader gone) rolls the transaction back, and then an
    ("error", message) says why. `inherited` are the loader's ends of the pipes, which a
    forked process holds too: closed, so that the pipes end when the loader does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the loader decides; it stops us
    gc.disable()  # only acyclic objects: collections would rescan the growing `hashes`
    for connection in inherited:
        connection.close()
    try:
        if orders.recv() != "record":
            return
    except EOFError:  # the loader stopped before the load began
        return
    error: str | None = None
    recorder: SQLiteRecorder | None = None
    try:
        recorder = SQLiteRecorder(Path(database))
        recorder.begin_load()
        send.send(("done", *_record(path, token_key, recorder, flush_every, send)))
        if orders.recv() == "commit":
            recorder.end_load(commit=True)
            send.send(("committed",))
            recorder.checkpoint()  # while the loader writes its snapshot
    except _Refused as exc:
        error = str(exc)
    except (OSError, EOFError):  # the pipe: the loader stopped first
        pass
    except Exception as exc:  # e.g. the disk is full: the loader says so
        error = f"cannot record the load: {exc} (nothing was loaded)"
    finally:
        if recorder is not None:
            with contextlib.suppress(Exception):
                recorder.end_load(commit=False)  # nothing left to undo once committed
            recorder.close()
    if error is not None:  # sent after the rollback: the loader may remove the directory
        _send(send, ("error", error))
    send.close()


def _record(
    path: str, token_key: bytes, recorder: SQLiteRecorder, flush_every: int, send: Connection
) -> tuple[int, int]:
    """Check and record the file's events, sending them in batches; returns (events
    recorded, events in the file). Raises _Refused for the first line refused."""
    decode = EventDecoder(Tokenizer(token_key)).decode
    encode = msgspec.json.Encoder(order="sorted").encode
    sha256 = hashlib.sha256
    hashes: dict[str, bytes] = {}
    payloads: list[bytes] = []
    referenced: dict[int, Event] = {}
    read = done = recorded = first_seq = 0
    try:
        lines = open(path, "rb")  # noqa: SIM115 - closed by the `with` below
    except OSError as exc:
        raise _Refused(f"cannot read {path}: {exc.strerror or exc} (nothing was loaded)") from None
    with lines:
        for number, line in enumerate(lines, start=1):
            read += len(line)
            if not line.strip():
                continue
            done += 1
            try:
                event = decode(line)
            except EventError as exc:
                reason = f"event {exc.event_id or '?'}: {exc.field}: {exc.reason}"
                raise _Refused(f"line {number}: {reason} (nothing was loaded)") from None
            payload = encode(event)
            digest = sha256(payload).digest()
            event_id = event.event_id
            if hashes.setdefault(event_id, digest) != digest:
                reason = f"event_id {event_id!r} appears earlier with another payload"
                raise _Refused(f"line {number}: {reason} (nothing was loaded)")
            stored = recorder.lookup(event_id)
            if stored is not None:  # recorded before (--append) or earlier in the file
                if stored.payload_hash != digest:
                    conflict = DuplicateEventError(event_id)
                    raise _Refused(f"event {done} of the file: {conflict} (nothing was loaded)")
                continue
            seq = recorder.append(event, payload, digest, warm_up_decision(event_id))
            recorded += 1
            if not payloads:
                first_seq = seq
            if event.type in REFERENCING and event.ref_event_id is not None:
                found = recorder.get_event(event.ref_event_id)
                if found is not None:
                    referenced[len(payloads)] = found
            payloads.append(payload)
            if recorded % flush_every == 0:
                recorder.flush()  # written inside the load's transaction
            if len(payloads) == BATCH:
                send.send(("batch", _batch(read, first_seq, payloads, referenced)))
                payloads, referenced = [], {}
    if payloads:
        send.send(("batch", _batch(read, first_seq, payloads, referenced)))
    recorder.flush()
    return recorded, done


def _batch(read: int, first_seq: int, payloads: list[bytes], referenced: dict[int, Event]) -> Batch:
    return Batch(read, first_seq, b"[" + b",".join(payloads) + b"]", referenced)


def _send(send: Connection, message: tuple[Any, ...]) -> None:
    """Send if the loader still listens."""
    with contextlib.suppress(OSError):
        send.send(message)


def load(engine: Engine, checker: Checker, progress: Callable[[int, int], None]) -> tuple[int, int]:
    """File every event the checker records into `engine` without deciding it, then have
    the checker commit; returns (events loaded, events in the file): a repeat of an event
    already recorded is skipped. `progress(bytes read, events filed)` is called after each
    batch."""
    decode = msgspec.json.Decoder(list[Event]).decode
    file = engine.file
    collect_every = engine.settings.flush_every
    filed = 0
    checker.record()
    with engine.loading_recorded(), batch_gc():
        for batch in checker.batches():
            referenced = batch.referenced
            for offset, event in enumerate(decode(batch.events)):
                file(batch.first_seq + offset, event, referenced.get(offset))
                filed += 1
                if filed % collect_every == 0:
                    gc.collect(1)  # young generations only: see batch_gc
            progress(batch.read, filed)
        checker.commit()
    return checker.loaded, checker.total
