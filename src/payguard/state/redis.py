"""State in Redis or Redis Cluster, computed by the same feature code as in memory.

**Layout.** One Redis hash per entity, hash-tagged so that it is one slot:
`pg:{user:u123}`, `pg:{device:d9}`, `pg:{user+device:u123|d9}`, `pg:{phone:<token>}`.
Its fields are everything the feature state keeps of that entity, each encoded as the
feature state exports it (msgpack, opaque here):

    v  version, bumped by every write (compare-and-set)
    r  the entity's record: one timeline per stream of its kind (raw head + folded past,
       features.timeline: a 90-day window reads one bounded record, never 90 buckets
       one by one — count-like windows keep their raw entries, the rest fold to one
       integer per distinct value)
    w  its watched history (first and last time seen since the watch start; the account's
       registration time)
    c  its clearings (an analyst's `not_fraud` verdict, features.cleared)
    l  for a phone: the accounts last seen with it, and when (carrier signals)

Beside each hash, in its slot, `pg:{user:u123}:e`: the ids of the events that wrote it in
the last minute (a sorted set by server time, `GUARD_MS`), so that each write is once per
event (below, "Once per event").

Two global keys: the event times `pg:{g}:t`, a sorted set whose member `wm` is the
watermark (raised by `ZADD GT`, Redis's own maximum: no script) and `ws` the watch start
(`ZADD NX`, set once), both read by one `ZMSCORE`; and the late-event count
(`pg:{g}:late`). One key per claimed event id (`pg:{id:<event_id>}`) makes a repeat
across workers answer the first decision.

**Per event.** `snapshot` fetches every hash the event can touch (its entities under
every kind, its payee's view, its phone, and the global keys) in one pipelined round trip,
restores them into this process's `FeatureState` (a scratch holding just this event's
entities) and reads the plan with the generated code the embedded engine runs, so both
backends decide identically. `apply` files the event with the same code, exports the
scratch and writes back only the hashes whose encoding changed, each with a single-key
compare-and-set script (`CAS`): no multi-slot script, and no lost update — if another
worker wrote an entity in between, that entity alone is fetched again and the event filed
into its fresh state again (filing is per entity, so the others stay as written).
Feedback that files under the event it references, and a carrier signal that files under
the accounts linked to its phone, cost one more round trip.

**Writes ride on the next read.** `apply` does not send its writes: the worker's next
round trip carries them ahead of its own commands — usually the next event's fetch, which
therefore reads them (Redis runs one connection's commands in order; in a cluster each
node's share goes down that node's connection in order too) — or `flush`, which sends them
alone. An event costs one round trip instead of two while events follow each other; the
engine flushes before anything is answered (`Engine.process` before it returns, the HTTP
path's group commit before it commits a batch: `Engine.send_state`), so every worker reads
what any worker answered. A write that lost its race is found with the next round trip's
replies and filed again then, before that round trip's reads are used (the hashes it
rewrote are read again). A write that cannot be sent leaves its event decided and
recorded but absent from the state (`lost`, counted as `state_writes_lost` by the engine).

**A batch, two round trips.** When a batch's events are known before they are decided
(`prefetch`: the HTTP batch request, the bench's group-commit loops), one round trip claims
every id and fetches every hash the batch touches; the events are then decided one after
the other in the scratch, which keeps what the batch's earlier events filed, and `flush`
writes each changed hash once, by one `CAS` carrying the ids of the batch's events that
touched it (docs/scale.md, "A batch, two round trips").

**Once per event.** A write can land and its reply be lost: a connection reset, a node
failing over, redis-py resending a command it sent through `Wire._again`. Read as a lost
race, such a write was filed again and its event counted twice. `CAS` therefore carries
the event id and answers 2, changing nothing, when that event already wrote the hash; so
a write whose round trip failed on the wire is simply sent again, with this worker's next
round trips, for up to `RESEND_MS` (then it is `lost`), and an event decided again after
its first worker died with its writes half sent adds nothing to the hashes already written.

Every hash expires `ttl_ms` after its last write (the catalog's `memory` plus a day by
default): an entity not seen for longer than every window leaves by itself. Money stays
integer fen. The two event times are a sorted set's scores, doubles inside Redis: epoch
milliseconds are integers far below 2**53, so they come back exact and are read as ints.
"""

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec
from redis import Redis
from redis.cluster import RedisCluster

from payguard.decision import Decision
from payguard.events import Event, is_fraud_verdict
from payguard.features import FeatureState
from payguard.features.cleared import clears
from payguard.features.cold import decode_record
from payguard.features.spec import VALUE_CODE, received, source_network
from payguard.features.state import QueryPlan
from payguard.features.timeline import decode_array, encode_array
from payguard.state import StateUnavailable
from payguard.state.memory import Claimed
from payguard.state.wire import Command, Wire
from payguard.types import DAY_MS

RedisClient = Redis | RedisCluster
log = logging.getLogger(__name__)

GUARD_MS = 60_000
"""How long an entity remembers the events that wrote it (`CAS`): longer than a write can
be sent again (`RESEND_MS`, and redis-py's retries of a command, seconds), short enough
that a busy entity's set stays small (its writes of one minute)."""

TRIM_EVERY = 16
"""The event ids older than `GUARD_MS` leave an entity's set at every 16th write of it, not
at each (a script call less per write: ~8 of ~42 µs a write, docs/benchmarks.md)."""

CAS = f"""
local n = tonumber(ARGV[5])
local found = 0
for i = 6, 5 + n do
  if redis.call('ZSCORE', KEYS[2], ARGV[i]) then found = found + 1 end
end
if found == n then return 2 end
if found > 0 then return 3 end
local v = redis.call('HGET', KEYS[1], 'v')
if (v or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(ARGV[1]) + 1), unpack(ARGV, 6 + n))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if tonumber(ARGV[1]) % {TRIM_EVERY} == 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
end
for i = 6, 5 + n do redis.call('ZADD', KEYS[2], ARGV[3], ARGV[i]) end
redis.call('PEXPIRE', KEYS[2], {GUARD_MS})
return 1
"""
"""Write fields of one entity hash if its version is still the one read (1, else 0),
once per event: the event ids that wrote the hash in the last `GUARD_MS` sit in a sorted
set beside it (`KEYS[2]`, the same hash tag: one slot), and a write whose events are all
among them answers 2 (applied already) and changes nothing; some of them only (a batch
holding an event another worker filed already): 3, nothing changed, the worker files the
others again. That is what makes a resend safe:
a write that landed but whose reply was lost (a connection reset, a node failing over,
redis-py's own retry of a command) is recognised as applied, not read as a lost race and
filed again (which counted the event twice). ARGV: version read, hash TTL, the worker's
clock (ms) and that minus `GUARD_MS`, the number n of event ids, the n ids (every event
of the write that touched this hash: one, or several for a batch, `prefetch`), then the
field/value pairs. The set expires `GUARD_MS` after the entity's last write; a worker
whose clock runs ahead trims ids early by as much (30 s of margin: `RESEND_MS`)."""

CAS_SHA = hashlib.sha1(CAS.encode()).hexdigest()

LEASE_MS = 3_000
"""How long an unsettled claim holds its event_id: a worker that dies while deciding
blocks that id for at most this long, then another worker may claim it (a settled claim
lives `claim_ttl_ms`, the engine's idempotency window). Shorter than `wait_s`, so a
client's retry that finds a dead worker's claim waits it out and decides the event,
rather than answering in degraded mode; far longer than the synchronous stretch from
claim to settle (one decision, milliseconds even on a loaded machine)."""

RESEND_MS = 30_000
"""How long a worker keeps sending an event's writes again after the round trip carrying
them failed (connection reset, node away): each of its next round trips carries them,
and a write that had landed answers 2. After this the event is given up as `lost`
(decided and recorded, absent from the state: rebuild-state)."""

RETRIES = 50
"""Compare-and-set attempts per entity before an event's apply gives up (each lost race
means another worker wrote that entity in between; 50 in a row is a fault, not load)."""

Hid = tuple[str, str]
"""An entity hash: (kind, key), e.g. ("user", "u123")."""

_encode = msgspec.msgpack.Encoder(enc_hook=encode_array).encode
_decode = msgspec.msgpack.Decoder(ext_hook=decode_array).decode
"""Timelines keep their values packed in arrays (features.timeline): an extension type."""
_claimed = msgspec.msgpack.Decoder(Claimed).decode


def _now_ms() -> int:
    """The worker's clock, for the ages of an entity's recent writers (`CAS`)."""
    return int(time.time() * 1000)


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """HGETALL's raw reply (field, value, field, value, …) as a dict."""
    it = iter(flat)
    return dict(zip(it, it, strict=False))


@dataclass(slots=True)
class _Filed:
    """An event filed into the scratch state: what filing it again needs, and the hashes
    it can have changed (None: every hash written with it, an event on its own)."""

    event: Event
    referenced: Event | None
    declined: bool
    touched: set[Hid] | None = None


@dataclass(slots=True)
class _Deferred:
    """Applied events' writes not sent yet (one event's, or a prefetched batch's), with
    what a retry of a lost race needs: the events in the order filed and the state they
    were filed into (the fetched hashes and globals)."""

    filed: list[_Filed]
    held: dict[Hid, dict[bytes, bytes]]
    globals: tuple[int, int | None]
    hids: list[Hid]
    """The hashes written, in the order of the first commands."""
    commands: list[Command]
    failed_at: float | None = None
    """When a round trip carrying these writes first failed (monotonic seconds): they are
    sent again with the next round trips until `RESEND_MS` after it."""

    @property
    def ids(self) -> list[str]:
        return [f.event.event_id for f in self.filed]

    def ids_of(self, hid: Hid) -> list[str]:
        """The events whose filing can have changed `hid` (the ids its `CAS` carries)."""
        ids = [f.event.event_id for f in self.filed if f.touched is None or hid in f.touched]
        return ids or self.ids


@dataclass(slots=True)
class _Batch:
    """A prefetched batch (`prefetch`): the claims taken with its fetch (event id ->
    whether this worker got it; removed once `claim` used it), the hashes each event
    touches, and the events filed so far into the scratch, which keeps them all."""

    claims: dict[str, bool]
    touched: dict[str, set[Hid]]
    globals: tuple[int, int | None]
    filed: list[_Filed]
    settled: list[tuple[str, bytes]]


class _Unsent(StateUnavailable):
    """A round trip failed on the wire (connection refused or reset, a node away): its
    writes may or may not have landed, so they may be sent again (each is once per event)."""


def _hids_code(kinds: list[str], extra: list[str]) -> Callable[[Event], set[Hid]]:
    """`event -> {(kind, key), …}` for the catalog's `kinds` (a pair such as
    `user+device` keyed `a|b`, as `features.state` keys it) and the `extra` single kinds,
    generated as one function: each part is read once per event, not by a lambda per kind
    (this runs for every event, over ~15 kinds)."""
    wanted = [(by, by.split("+")) for by in kinds]
    wanted += [(name, [name]) for name in extra if name not in kinds]
    parts = sorted({part for _, split in wanted for part in split})
    lines = ["def hids(e):"]
    lines += [f"    v_{part} = {VALUE_CODE[part].format(e='e')}" for part in parts]
    lines.append("    out = set()")
    for by, split in wanted:
        test = " and ".join(f"v_{p} is not None" for p in split)
        key = (
            f"v_{split[0]}"
            if len(split) == 1
            else 'f"' + "|".join(f"{{v_{p}}}" for p in split) + '"'
        )
        lines.append(f"    if {test}:")
        lines.append(f"        out.add(({by!r}, {key}))")
    lines.append("    return out")
    namespace: dict[str, Any] = {"source_network": source_network}
    exec("\n".join(lines), namespace)
    hids: Callable[[Event], set[Hid]] = namespace["hids"]
    return hids


def connect(url: str) -> RedisClient:
    """A client for `redis://host:port[/db]` or `redis+cluster://host:port` (any node of
    the cluster; the client discovers the others)."""
    parts = urlsplit(url)
    if parts.scheme == "redis+cluster":
        return RedisCluster(host=parts.hostname or "127.0.0.1", port=parts.port or 6379)
    if parts.scheme in ("redis", "rediss", "unix"):
        return Redis.from_url(url)
    raise ValueError(f"state URL {url!r}: expected redis://… or redis+cluster://…")


class RedisState:
    """Feature state in Redis, one hash per entity, the feature code run in process."""

    shared = True

    def __init__(
        self,
        features: FeatureState,
        client: RedisClient,
        *,
        prefix: str = "pg",
        ttl_ms: int | None = None,
        claim_ttl_ms: int = 2 * DAY_MS,
        wait_s: float = 5.0,
    ) -> None:
        self.features = features
        self.client = client
        self.prefix = prefix
        self.ttl_ms = ttl_ms if ttl_ms is not None else features.memory_ms + DAY_MS
        self.claim_ttl_ms = claim_ttl_ms
        self.wait_s = wait_s
        self.round_trips = 0
        """Pipelines sent (for the capacity model: docs/scale.md)."""
        self.commands = 0
        """Redis commands sent."""
        self.bytes_written = 0
        """Field bytes written by compare-and-set."""
        self.conflicts = 0
        """Entity writes retried because another worker wrote the entity first."""
        self.resent_applied = 0
        """Entity writes sent again that had landed already (`CAS` answered 2)."""
        self._kinds = [kind.by for kind in features.kinds]
        self._kind_index = {by: i for i, by in enumerate(self._kinds)}
        self._kind_keys = [(kind.by, kind.key) for kind in features.kinds]
        self._user_kinds = [i for i, by in enumerate(self._kinds) if by == "user"]
        blank = features.export()
        self._layout = blank["layout"]
        self._watch_blank = blank["watch"]
        self._watch_kinds: list[str] = list(self._watch_blank["kinds"])
        self._watch_index = {name: i for i, name in enumerate(self._watch_kinds)}
        self._entity_hids = _hids_code([by for by, _ in self._kind_keys], [])
        """An event's entities under every kind of the catalog."""
        self._own_hids = _hids_code(
            [by for by, _ in self._kind_keys], [*self._watch_kinds, "phone"]
        )
        """Those, its watched kinds and its phone: what the event itself touches."""
        self._times_key = self._global("t")
        self._wire = Wire(client, self._load_scripts)
        self._load_scripts()
        self._event: Event | None = None
        self._held: dict[Hid, dict[bytes, bytes]] = {}
        self._globals: tuple[int, int | None] = (0, None)
        self._deferred: _Deferred | None = None
        self._batch: _Batch | None = None
        """A prefetched batch being decided (`prefetch`), until `flush` writes it."""
        """The last applied event's writes, sent with the next round trip (`_run`)."""
        self._stale: set[Hid] = set()
        """Hashes a deferred write's retry rewrote after this round trip read them."""
        self.lost: list[tuple[str, str]] = []
        """(event_id, cause) of applied events whose deferred writes failed: decided and
        recorded, absent from the state (the engine counts and logs them)."""
        self._settling: tuple[str, bytes] | None = None
        """A claimed event's decision, written with its state (`settle`, `apply`)."""

    # -- keys ----------------------------------------------------------------------------

    def key(self, hid: Hid) -> str:
        """The hash of one entity: its kind and key are the hash tag (one slot)."""
        return f"{self.prefix}:{{{hid[0]}:{hid[1]}}}"

    def _global(self, name: str) -> str:
        return f"{self.prefix}:{{g}}:{name}"

    def guard_key(self, hid: Hid) -> str:
        """The sorted set of the event ids that wrote an entity lately (`CAS`): the entity's
        hash tag, so its slot."""
        return f"{self.prefix}:{{{hid[0]}:{hid[1]}}}:e"

    def _claim_key(self, event_id: str) -> str:
        return f"{self.prefix}:{{id:{event_id}}}"

    def _hids(self, event: Event) -> set[Hid]:
        """Every entity hash the event itself reads or writes."""
        hids = self._own_hids(event)
        view = received(event)
        if view is not None:
            hids |= self._entity_hids(view)
        return hids

    # -- reading -------------------------------------------------------------------------

    def _fetch(
        self, hids: Iterable[Hid], with_globals: bool = False, claim: str | None = None
    ) -> bool:
        """One pipelined round trip: the hashes (and the global keys) into `_held`, after
        a SET NX of the `claim` key when given (whether it was set; True without one)."""
        wanted = list(hids)
        commands: list[Command] = []
        if claim is not None:
            commands.append(("SET", claim, b"", "NX", "PX", LEASE_MS))
        key = self.key
        commands += [("HGETALL", key(hid)) for hid in wanted]
        if with_globals:
            commands.append(("ZMSCORE", self._times_key, "wm", "ws"))
        answers = self._run(commands)
        claimed = True
        if claim is not None:
            claimed = bool(answers.pop(0))
        self._hold(wanted, answers, with_globals)
        return claimed

    def _hold(self, wanted: list[Hid], answers: list[Any], with_globals: bool) -> None:
        """Keep the fetched hashes (`answers` in the order of `wanted`, the globals' scores
        last when asked for) in `_held`; hashes read before a deferred write's retry
        rewrote them are read again."""
        held = self._held
        for hid, fields in zip(wanted, answers, strict=False):
            held[hid] = fields if isinstance(fields, dict) else _pairs(fields)
        if with_globals:
            wm, ws = answers[-1]
            self._globals = (int(wm) if wm is not None else 0, int(ws) if ws is not None else None)
        if self._stale:
            stale, self._stale = self._stale & held.keys(), set()
            if stale:
                self._fetch(stale)

    def _load(
        self, event: Event, referenced: Event | None = None, claim: str | None = None
    ) -> bool:
        """Fetch what `event` touches and restore it into the scratch feature state; with
        `claim`, claim that key in the same round trip (False: another worker has it, and
        nothing is restored)."""
        if self._batch is not None:
            return self._load_in_batch(self._batch, event, referenced, claim)
        self._event = event
        self._held = {}
        if not self._fetch(self._hids(event), with_globals=True, claim=claim):
            self._event = None
            return False
        self._load_more(event, referenced)
        return True

    def _load_more(self, event: Event, referenced: Event | None) -> None:
        """A second round trip, only when needed: the entities of the event a fraud
        verdict or a clearing references, the accounts linked to a carrier signal's phone."""
        if self._batch is not None:
            self._load_in_batch(self._batch, event, referenced, None)
            return
        more = self._more(event, referenced) - self._held.keys()
        if more:
            self._fetch(more)
        self._restore()

    def _more(self, event: Event, referenced: Event | None) -> set[Hid]:
        """The hashes an event touches beyond its own (`_hids`): those of the event a fraud
        verdict or a clearing references, the accounts linked to a carrier signal's phone
        (read from the phone's held hash)."""
        more: set[Hid] = set()
        if referenced is not None and (is_fraud_verdict(event) or clears(event)):
            more |= self._entity_hids(referenced)
        if event.user_id is None and event.phone is not None:
            links = self._held.get(("phone", event.phone), {}).get(b"l")
            if links is not None:
                users, _ = _decode(links)
                more |= {(self._kinds[i], u) for u in users for i in self._user_kinds}
        return more

    # -- batches -------------------------------------------------------------------------

    def prefetch(self, events: list[Event]) -> None:
        """Read the state of a whole batch in one round trip, before its events are
        decided: the writes deferred so far, a claim (`SET NX`) of every event id, every
        hash any of the events touches, the globals. The scratch then holds the batch's
        entities and keeps them while the batch is decided: each event reads what the
        batch's earlier events filed, as in the embedded engine, and `flush` writes every
        changed hash once, with one `CAS` carrying the ids of the batch's events that
        touched it. A batch of k events costs 2 round trips instead of k + 1. Hashes an
        event touches beyond its own (a fraud verdict's referenced event, a carrier
        signal's linked accounts) and events outside the batch are fetched when needed,
        added to the scratch without resetting it."""
        self.flush()
        touched: dict[str, set[Hid]] = {}
        for event in events:
            if event.event_id not in touched:  # a repeat inside the batch claims alone
                touched[event.event_id] = self._hids(event)
        claims = list(touched)
        wanted = list(set().union(*touched.values())) if touched else []
        claim_key = self._claim_key
        commands: list[Command] = [
            ("SET", claim_key(event_id), b"", "NX", "PX", LEASE_MS) for event_id in claims
        ]
        key = self.key
        commands += [("HGETALL", key(hid)) for hid in wanted]
        commands.append(("ZMSCORE", self._times_key, "wm", "ws"))
        self._event = None
        answers = self._run(commands)
        self._held = {}
        self._hold(wanted, answers[len(claims) :], with_globals=True)
        self._restore()
        self._batch = _Batch(
            claims={event_id: bool(ok) for event_id, ok in zip(claims, answers, strict=False)},
            touched=touched,
            globals=self._globals,
            filed=[],
            settled=[],
        )

    def _load_in_batch(
        self, batch: _Batch, event: Event, referenced: Event | None, claim: str | None
    ) -> bool:
        """`_load` inside a prefetched batch: the claim taken with the batch's fetch (or
        taken now, for an event outside it or claimed again), and whatever the event
        touches that the scratch does not hold yet fetched and added to it."""
        claims = batch.claims
        claimed = claims.pop(event.event_id, None) if claim else claims.get(event.event_id)
        touched = batch.touched.get(event.event_id)
        if touched is None:
            touched = batch.touched[event.event_id] = self._hids(event)
        if claim is not None and claimed is False:
            return False
        take = claim is not None and claimed is None
        more = touched - self._held.keys()
        if (take or more) and not self._fetch_into_batch(more, claim if take else None):
            return False
        extra = self._more(event, referenced)
        if extra:
            touched |= extra
            extra -= self._held.keys()
            if extra:
                self._fetch_into_batch(extra, None)
        self._event = event
        return True

    def _fetch_into_batch(self, hids: set[Hid], claim: str | None) -> bool:
        """Fetch `hids` (after a SET NX of `claim`) and add them to the batch's scratch
        state without resetting it (False: the claim is another worker's)."""
        held, self._held = self._held, {}
        try:
            claimed = self._fetch(hids, claim=claim)
        finally:
            fetched, self._held = self._held, held
        if claimed:
            held.update(fetched)
            self._restore(fetched)
        return claimed

    def _restore(self, more: dict[Hid, dict[bytes, bytes]] | None = None) -> None:
        """Put the held hashes into the scratch feature state: each record decoded straight
        into its timelines and handed over as is (`FeatureState.adopt`), not packed into
        one blob for `restore` to decode again. With `more`: add those hashes (not held
        before) to the scratch as it stands, keeping what was filed into it (a batch)."""
        features = self.features
        if more is None:
            entities: list[dict[str, Any]] = [{} for _ in self._kinds]
            clearings: list[dict[str, Any]] = [{} for _ in self._kinds]
            since: list[dict[str, int]] = [{} for _ in self._watch_kinds]
            last: list[dict[str, int]] = [{} for _ in self._watch_kinds]
            registered: dict[str, int] = {}
            phone_users: dict[str, list[str]] = {}
            phone_linked: dict[str, int] = {}
        else:
            entities, clearings = features.entities, features.clearings.times
            watch = features.watch
            since, last, registered = watch.since, watch.last, watch.registered
            phone_users, phone_linked = features.phone_links()
        kind_index, watch_index = self._kind_index, self._watch_index
        for (name, key), fields in (self._held if more is None else more).items():
            if not fields:  # an entity never written (or expired): nothing to restore
                continue
            kind = kind_index.get(name)
            if kind is not None:
                if (r := fields.get(b"r")) is not None:
                    entities[kind][key] = decode_record(r)
                if (c := fields.get(b"c")) is not None:
                    clearings[kind][key] = _decode(c)
            if (w := fields.get(b"w")) is not None:
                first, latest, born = _decode(w)
                i = watch_index[name]
                if first is not None:
                    since[i][key] = first
                if latest is not None:
                    last[i][key] = latest
                if born is not None:
                    registered[key] = born
            if (links := fields.get(b"l")) is not None:
                users, linked = _decode(links)
                phone_users[key] = users
                if linked is not None:
                    phone_linked[key] = linked
        if more is not None:
            features.clearings.active = any(clearings)
            return
        watermark, start = self._globals
        watch = features.watch
        watch.start, watch.since, watch.last, watch.registered = start, since, last, registered
        features.adopt(entities, clearings, phone_users, phone_linked, watermark)

    def snapshot(self, event: Event, plan: QueryPlan) -> dict[str, Any]:
        """The plan's features as of the event; the first call for an event fetches."""
        if self._event is not event:
            self._load(event)
        return self.features.snapshot(event, plan)

    def accounts_of(self, event: Event) -> tuple[str, ...]:
        """The accounts an event concerns (a carrier signal's: those linked to its phone)."""
        if self._event is not event:
            self._load(event)
        return self.features.accounts_of(event)

    def watermark(self) -> int:
        """The newest event time any worker applied (as of this process's last fetch;
        inside a batch, with the batch's events filed so far)."""
        if self._batch is not None:
            return max(self._globals[0], self.features.watermark)
        return self._globals[0]

    # -- writing -------------------------------------------------------------------------

    def apply(self, event: Event, referenced: Event | None = None, declined: bool = False) -> None:
        """File the event into its entities' hashes: the compare-and-set writes are
        deferred to this worker's next round trip (the next event's fetch, or `flush`),
        which carries them ahead of its own commands (module doc, "Per event"). Inside a
        prefetched batch the event is filed into the batch's scratch only; `flush` writes
        the batch."""
        batch = self._batch
        if self._event is not event:
            self._load(event, referenced)
        elif referenced is not None:
            self._load_more(event, referenced)
        try:
            self.features.update(event, referenced, declined)
            if batch is not None:
                touched = batch.touched.get(event.event_id)
                batch.filed.append(_Filed(event, referenced, declined, touched))
                if self._settling is not None:
                    batch.settled.append(self._settling)
                    self._settling = None
                return
            filed = [_Filed(event, referenced, declined)]
            changed = self._changes(self._exported(filed), None)
            commands = self._writes(
                changed, lambda _: [event.event_id], self.features.late_events, event.ts
            )
            if self._deferred is not None:  # never: the load above carried it; else declared
                self.lost.extend((i, "writes not sent") for i in self._deferred.ids)
            self._deferred = _Deferred(filed, self._held, self._globals, list(changed), commands)
        finally:
            self._event = None

    def flush(self) -> None:
        """Send the writes `apply` deferred, if any, and settle their races: after this the
        state holds every event applied here. StateUnavailable if they could not be sent:
        they go again with the next round trip (`_resend_or_lose`), and the event is in
        `lost` only once they have failed for `RESEND_MS`. Ends a prefetched batch: its
        changed hashes written once each, claims it took and no event used given back."""
        if self._batch is not None:
            self._end_batch(self._batch)
        if self._deferred is not None:
            self._run([])
            self._stale = set()  # nothing read in that round trip: nothing to read again

    def _end_batch(self, batch: _Batch) -> None:
        """The batch's writes, deferred as one event's are: every hash the batch changed,
        compared with what its fetch read, in one `CAS` carrying the ids of the events
        that touched it; the watermark, the late count, the settled claims, and the claims
        taken with the fetch that no event used (`DEL`)."""
        self._batch = None
        self._event = None
        filed = batch.filed
        unused = [self._claim_key(i) for i, ok in batch.claims.items() if ok]
        commands: list[Command] = []
        changed: dict[Hid, list[bytes]] = {}
        if filed:
            deferred = _Deferred(filed, self._held, batch.globals, [], [])
            changed = self._changes(self._exported(filed), None)
            commands = self._writes(
                changed,
                deferred.ids_of,
                self.features.late_events,
                max(f.event.ts for f in filed),
                settled=batch.settled,
            )
        else:
            deferred = _Deferred([], self._held, batch.globals, [], [])
        if self._settling is not None:  # settled and never applied (kept for the seam)
            self._send_settling()
        commands += [("DEL", key) for key in unused]
        if not commands:
            return
        deferred.hids = list(changed)
        deferred.commands = commands
        if self._deferred is not None:  # never: the prefetch carried it
            self.lost.extend((i, "writes not sent") for i in self._deferred.ids)
        self._deferred = deferred

    def _written(self, deferred: "_Deferred", answers: list[Any]) -> set[Hid]:
        """After deferred writes went out: the hashes whose compare-and-set lost a race
        (another worker wrote them since they were fetched; 3: some of the events were in
        them already) fetched again with their recent writers and the events filed into
        them again (each hash only the events not in it yet), until none is lost; the
        hashes so rewritten."""
        hids = deferred.hids
        pending = [hid for hid, ok in zip(hids, answers, strict=False) if ok == 0 or ok == 3]
        self.resent_applied += sum([ok == 2 for ok in answers[: len(hids)]])
        if not pending:
            return set()
        retried = set(pending)
        held, globals_ = self._held, self._globals
        self._held, self._globals = dict(deferred.held), deferred.globals
        try:
            for _ in range(RETRIES):
                self.conflicts += len(pending)
                present = self._fetch_guarded(pending, deferred)
                groups: dict[frozenset[str], set[Hid]] = {}
                for hid in pending:
                    ids = deferred.ids_of(hid)
                    if present[hid] < set(ids):
                        groups.setdefault(frozenset(present[hid]), set()).add(hid)
                commands: list[Command] = []
                written: list[Hid] = []
                for skip, group in groups.items():
                    self._restore()
                    refiled = [f for f in deferred.filed if f.event.event_id not in skip]
                    for f in refiled:
                        self.features.update(f.event, f.referenced, f.declined)
                    changed = self._changes(self._exported(refiled), group)

                    def ids_of(hid: Hid, skip: frozenset[str] = skip) -> list[str]:
                        return [i for i in deferred.ids_of(hid) if i not in skip]

                    commands += self._writes(changed, ids_of, 0, None)
                    written += changed
                answers = self._run(commands) if commands else []
                pending = [hid for hid, ok in zip(written, answers, strict=False) if ok in (0, 3)]
                if not pending:
                    return retried
            raise StateUnavailable(f"entities stayed contended: {sorted(pending)}")
        finally:
            self._held, self._globals = held, globals_

    def _fetch_guarded(self, hids: list[Hid], deferred: "_Deferred") -> dict[Hid, set[str]]:
        """Fetch `hids` into `_held` with, for each, which of the events writing it are
        among its recent writers already."""
        commands: list[Command] = [("HGETALL", self.key(hid)) for hid in hids]
        commands += [("ZMSCORE", self.guard_key(hid), *deferred.ids_of(hid)) for hid in hids]
        answers = self._run(commands)
        n = len(hids)
        present: dict[Hid, set[str]] = {}
        for i, hid in enumerate(hids):
            fields = answers[i]
            self._held[hid] = fields if isinstance(fields, dict) else _pairs(fields)
            ids = deferred.ids_of(hid)
            present[hid] = {
                event_id for event_id, score in zip(ids, answers[n + i], strict=True) if score
            }
        return present

    def _exported(self, filed: list[_Filed]) -> dict[str, Any]:
        """What `_changes` compares, from the scratch's public parts: its records as they
        are (`entities`, encoded one by one there, not as one blob), clearings, watch, and
        the phone links (exported only when an event filed can have changed them)."""
        features = self.features
        users: dict[str, list[str]] = {}
        linked: dict[str, int] = {}
        if any(f.event.phone is not None and f.event.user_id is not None for f in filed):
            users, linked = features.phone_links()
        return {
            "records": features.entities,
            "clearings": features.clearings.times,
            "watch": features.watch.export(),
            "phone_users": users,
            "phone_linked": linked,
        }

    def _changes(self, state: dict[str, Any], only: set[Hid] | None) -> dict[Hid, list[bytes]]:
        """Field/value pairs of every hash whose encoding differs from what was fetched
        (only those in `only`, when given): packed bytes compared, one flat list per hash."""
        held = self._held
        out: dict[Hid, list[bytes]] = {}
        empty: dict[bytes, bytes] = {}

        def put(hid: Hid, field: bytes, value: bytes) -> None:
            if (only is None or hid in only) and held.get(hid, empty).get(field) != value:
                found = out.get(hid)
                if found is None:
                    out[hid] = [field, value]
                else:
                    found += (field, value)

        kinds = zip(self._kinds, state["records"], state["clearings"], strict=True)
        for by, records, clearings in kinds:
            if records:
                for key, record in records.items():
                    put((by, key), b"r", _encode(record))
            if clearings:
                for key, times in clearings.items():
                    put((by, key), b"c", _encode(times))
        watch = state["watch"]
        registered = watch["registered"]
        for i, name in enumerate(self._watch_kinds):
            since, last = watch["since"][i], watch["last"][i]
            if name == "user":
                for key in since.keys() | last.keys() | registered.keys():
                    put(
                        (name, key),
                        b"w",
                        _encode([since.get(key), last.get(key), registered.get(key)]),
                    )
            else:
                for key in since.keys() | last.keys():
                    put((name, key), b"w", _encode([since.get(key), last.get(key), None]))
        linked = state["phone_linked"]
        for phone, users in state["phone_users"].items():
            put(("phone", phone), b"l", _encode([users, linked.get(phone)]))
        return out

    def _writes(
        self,
        changed: dict[Hid, list[bytes]],
        ids_of: Callable[[Hid], list[str]],
        late: int,
        ts: int | None,
        settled: list[tuple[str, bytes]] | None = None,
    ) -> list[Command]:
        """The compare-and-set writes of the changed hashes, one per hash in the order of
        `changed`, each once per event of `ids_of(hash)` (then the globals and the settled
        claims: this event's, or `settled`, a batch's)."""
        held, hkey, gkey, ttl_ms = self._held, self.key, self.guard_key, self.ttl_ms
        empty: dict[bytes, bytes] = {}
        head = ("EVALSHA", CAS_SHA, 2)
        now = _now_ms()
        commands: list[Command] = []
        for hid, f in changed.items():
            ids = ids_of(hid)
            commands.append(
                (
                    *head,
                    hkey(hid),
                    gkey(hid),
                    held.get(hid, empty).get(b"v", b"0"),
                    ttl_ms,
                    now,
                    now - GUARD_MS,
                    len(ids),
                    *ids,
                    *f,
                )
            )
        self.bytes_written += sum([sum(map(len, f)) for f in changed.values()])
        if ts is not None:
            if ts > self._globals[0]:
                commands.append(("ZADD", self._times_key, "GT", ts, "wm"))
            start = self.features.watch.start
            if self._globals[1] is None and start is not None:
                commands.append(("ZADD", self._times_key, "NX", start, "ws"))
            if late:
                commands.append(("INCRBY", self._global("late"), late))
            if self._settling is not None:
                key, value = self._settling
                commands.append(("SET", key, value, "PX", self.claim_ttl_ms))
                self._settling = None
            for key, value in settled or ():
                commands.append(("SET", key, value, "PX", self.claim_ttl_ms))
        return commands

    def _run(self, commands: list[Command]) -> list[Any]:
        """One round trip (one per node of a cluster), carrying ahead of `commands` the
        writes `apply` deferred; every command's key is its second item. Redis
        unreachable or failing over: StateUnavailable, nothing decided (and the deferred
        event, decided, is in `lost`)."""
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            commands = deferred.commands + commands
        try:
            wire = self._wire
            keys = [c[1] if c[0] != "EVALSHA" else c[3] for c in commands] if wire.routes else []
            answers = wire.run(commands, keys)
        except Exception as exc:
            if deferred is not None:
                self._resend_or_lose(deferred, f"redis: {exc}")
            raise _Unsent(f"redis: {exc}") from exc
        self.round_trips += 1
        self.commands += len(answers)
        if deferred is not None:
            n = len(deferred.commands)
            try:
                self._stale |= self._written(deferred, answers[:n])
                if deferred.failed_at is not None:
                    log.warning("event %s: state writes sent again, landed", ",".join(deferred.ids))
            except _Unsent as exc:  # a retry of a lost race could not be sent
                self._resend_or_lose(deferred, str(exc))
                raise
            except StateUnavailable as exc:
                self.lost.extend((i, str(exc)) for i in deferred.ids)
                raise
            answers = answers[n:]
        return answers

    def _resend_or_lose(self, deferred: _Deferred, cause: str) -> None:
        """After a round trip carrying `deferred` failed on the wire: keep its writes for
        the next round trip (each `CAS` is once per event, so a write that did land answers
        2 and is not filed again), unless they have been failing for `RESEND_MS` — then the
        event is `lost`. The late count (`INCRBY`, not once per event) is not sent again."""
        now = time.monotonic()
        if deferred.failed_at is None:
            deferred.failed_at = now
            deferred.commands = [c for c in deferred.commands if c[0] != "INCRBY"]
            log.warning(
                "event %s: state writes unanswered (%s), sent again with the next round trip",
                ",".join(deferred.ids),
                cause,
            )
        if (now - deferred.failed_at) * 1000 < RESEND_MS and self._deferred is None:
            self._deferred = deferred
        else:
            self.lost.extend((i, cause) for i in deferred.ids)

    def _load_scripts(self) -> None:
        """Load the scripts (on every primary of a cluster): after a restart lost them."""
        loaded = self.client.script_load(CAS)
        assert loaded == CAS_SHA or isinstance(loaded, dict), loaded

    @property
    def traffic(self) -> tuple[int, int]:
        """Bytes sent to Redis and received from it by the per-event pipelines."""
        return self._wire.traffic

    def sweep(self) -> int:
        """Nothing to sweep: every hash expires `ttl_ms` after its last write."""
        return 0

    def begin_sweep(self, events: int) -> None:
        """Nothing to sweep (see `sweep`)."""

    def sweep_step(self) -> bool:
        """Nothing to sweep (see `sweep`)."""
        return False

    # -- idempotency across workers -------------------------------------------------------

    def claim(self, event: Event, payload_hash: bytes) -> Claimed | None:
        """SET NX of the event id, in the round trip that fetches the event's state: None
        when this worker now owns it, else the first worker's payload hash and decision
        (waiting while that worker is still deciding)."""
        self._send_settling()
        key = self._claim_key(event.event_id)
        if self._load(event, claim=key):
            return None
        if self._batch is not None:
            # Another worker holds the id. Before waiting for its decision, publish what
            # this batch decided and give back the claims it has not used: that worker
            # may be waiting for one of them (two workers sent one batch at once).
            try:
                settled: Any = self.client.get(key)
            except Exception as exc:
                raise StateUnavailable(f"redis: {exc}") from exc
            if settled:
                return _claimed(settled)
            self.flush()
        deadline = time.monotonic() + self.wait_s
        pause = 0.0005
        while True:
            try:
                found: Any = self.client.get(key)
                if found is None and self.client.set(key, b"", nx=True, px=LEASE_MS):
                    self._load(event)  # the first worker gave its claim back
                    return None
            except Exception as exc:
                raise StateUnavailable(f"redis: {exc}") from exc
            self.commands += 2
            if found:
                return _claimed(found)
            if time.monotonic() > deadline:
                raise StateUnavailable(f"event_id {event.event_id!r} is still being decided")
            time.sleep(pause)
            pause = min(pause * 2, 0.02)

    def settle(self, event_id: str, payload_hash: bytes, decision: Decision) -> None:
        """Publish the decision under the claim, with the event's state writes (`apply`,
        one round trip): other workers' repeats wait for it, then answer it."""
        self._send_settling()
        value = _encode(Claimed(payload_hash, decision))
        self._settling = (self._claim_key(event_id), value)

    def _send_settling(self) -> None:
        """A settled decision no apply carried yet (the engine always applies; kept
        for callers of the seam that do not)."""
        if self._settling is not None:
            key, value = self._settling
            self._settling = None
            self.client.set(key, value, px=self.claim_ttl_ms)

    def release(self, event_id: str) -> None:
        """Give the claim back (the event was not recorded)."""
        key = self._claim_key(event_id)
        if self._settling is not None and self._settling[0] == key:
            self._settling = None
        self.client.delete(key)

    def late_events(self) -> int:
        found = self.client.get(self._global("late"))
        return int(found) if found is not None else 0

    def close(self) -> None:
        with contextlib.suppress(StateUnavailable):
            self.flush()
        if self._deferred is not None:  # could not be sent, and never will be now
            self.lost.extend((i, "closed with writes unsent") for i in self._deferred.ids)
            self._deferred = None
        self.client.close()
