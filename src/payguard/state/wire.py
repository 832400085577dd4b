"""Pipelines for the per-event round trips, with less client work than redis-py's own.

redis-py's `Pipeline` spends tens of microseconds of Python per command (argument
checks, observability hooks, response callbacks), and an event sends about twenty
commands; its `ClusterPipeline` more, and it refuses `EVALSHA`. Here each command is
packed by hiredis in C, every command for one node goes out in one write on this
worker's own socket to that node, and the replies are parsed by hiredis in C (RESP3, so
that `HGETALL` arrives as a dict, built in C): one round trip per node, the nodes written
before any is read. Keys route by their hash slot
(the redis-py client's slot table, `nodes_manager.slots_cache`; that client serves everything off
the hot path).

What this does not handle itself it hands to the client, which does: a reply that
says the slot moved (`MOVED`, `ASK`: a failover or a resharding) refreshes the slot
table and sends those commands again through `execute_command`; `NOSCRIPT` (a restarted
node lost its scripts) loads them again and retries. A dropped connection raises.
"""

import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hiredis import Reader, pack_command
from redis import Redis
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import NoScriptError, ResponseError

TIMEOUT_S = 2.0
"""A node that does not answer within this fails the event's state access (StateUnavailable)."""

Command = tuple[Any, ...]
"""(NAME, *args), e.g. ("HGETALL", key) — with the key it routes by given beside it."""


class _Link:
    """One socket to one node, with a hiredis reply parser (replies parsed in C)."""

    def __init__(self, host: str, port: int, db: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = Reader(replyError=ResponseError)
        self.sent = self.received = 0
        """Bytes on the wire (for the capacity model: docs/scale.md)."""
        hello: list[Command] = [("HELLO", 3)] + ([("SELECT", db)] if db else [])
        self.send(hello)  # RESP3: a hash arrives as a map, which hiredis makes a dict
        self.replies(len(hello))

    def send(self, commands: Iterable[Command]) -> None:
        data = b"".join([pack_command(c) for c in commands])
        self.sent += len(data)
        self.sock.sendall(data)

    def replies(self, n: int) -> list[Any]:
        out: list[Any] = []
        if n == 0:
            return out
        reader, recv, append = self.reader, self.sock.recv, out.append
        while True:
            chunk = recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.received += len(chunk)
            reader.feed(chunk)
            reply = reader.gets()
            while reply is not False:
                append(reply)
                if len(out) == n:
                    return out
                reply = reader.gets()

    def close(self) -> None:
        self.sock.close()


class Wire:
    """Sends batches of single-key commands, grouped by the node owning each key."""

    def __init__(self, client: Redis | RedisCluster, reload_scripts: Callable[[], None]) -> None:
        self.client = client
        self.reload_scripts = reload_scripts
        self._links: dict[tuple[str, int], _Link] = {}
        self._closed = (0, 0)
        self._cluster = client if isinstance(client, RedisCluster) else None
        self._single: tuple[str, int] | None = None
        self._db = 0
        if isinstance(client, Redis):
            kwargs = client.connection_pool.connection_kwargs
            self._single = (kwargs.get("host", "127.0.0.1"), int(kwargs.get("port", 6379)))
            self._db = int(kwargs.get("db", 0))

    @property
    def traffic(self) -> tuple[int, int]:
        """Bytes sent and received so far on this wire's open links (and closed ones)."""
        links = self._links.values()
        return (
            self._closed[0] + sum(link.sent for link in links),
            self._closed[1] + sum(link.received for link in links),
        )

    def _link(self, address: tuple[str, int]) -> _Link:
        link = self._links.get(address)
        if link is None:
            link = self._links[address] = _Link(*address, self._db)
        return link

    def run(self, commands: Sequence[Command], keys: Sequence[str]) -> list[Any]:
        """The replies of `commands` (the i-th routed by `keys[i]`), in order."""
        try:
            if self._cluster is None:
                replies = self._on_single(commands)
            else:
                replies = self._on_cluster(commands, keys, self._cluster)
        except BaseException:
            self.close()  # replies may be left unread on a socket: start afresh
            raise
        if ResponseError in map(type, replies):  # scanned in C: errors are rare
            failed = [i for i, reply in enumerate(replies) if isinstance(reply, ResponseError)]
            self._again(commands, replies, failed)
        return replies

    def _on_single(self, commands: Sequence[Command]) -> list[Any]:
        """One Redis: one link, the replies in order (no routing, no regrouping)."""
        assert self._single is not None
        link = self._link(self._single)
        link.send(commands)
        return link.replies(len(commands))

    def _on_cluster(
        self, commands: Sequence[Command], keys: Sequence[str], cluster: RedisCluster
    ) -> list[Any]:
        """Each command sent to the node of its key's slot, all nodes' pipelines in flight
        at once; the replies put back in the commands' order."""
        slots = cluster.nodes_manager.slots_cache
        groups: dict[tuple[str, int], list[int]] = {}
        for i, key in enumerate(keys):
            node = slots[key_slot(key.encode())][0]
            groups.setdefault((node.host, node.port), []).append(i)
        replies: list[Any] = [None] * len(commands)
        links = [(self._link(address), indices) for address, indices in groups.items()]
        for link, indices in links:
            link.send(commands[i] for i in indices)
        for link, indices in links:
            for i, reply in zip(indices, link.replies(len(indices)), strict=True):
                replies[i] = reply
        return replies

    @property
    def routes(self) -> bool:
        """Whether `run` routes by key (a cluster): on one Redis the keys go unread."""
        return self._cluster is not None

    def close(self) -> None:
        self._closed = self.traffic
        for link in self._links.values():
            link.close()
        self._links = {}

    def _again(self, commands: Sequence[Command], replies: list[Any], failed: list[int]) -> None:
        """Send the refused commands again through the client, which follows redirections
        (after a failover the slot table is refreshed first) and reloads lost scripts."""
        messages = [str(replies[i]) for i in failed]
        if any(m.startswith("NOSCRIPT") for m in messages):
            self.reload_scripts()
        cluster = self._cluster
        if cluster is not None and any(
            m.startswith(("MOVED", "ASK", "CLUSTERDOWN")) for m in messages
        ):
            cluster.nodes_manager.initialize()
        for i in failed:
            replies[i] = self._through_client(commands[i])

    def _through_client(self, command: Command) -> Any:
        """One command through the client; a script the node lost meanwhile (a command
        refused with `CLUSTERDOWN` while a restarted node rejoined, then `NOSCRIPT` once
        the client's retry reaches it) is loaded again and the command sent once more:
        safe for `CAS`, which is once per event (state.redis)."""
        execute = self.client.execute_command
        try:
            return execute(*command)  # type: ignore[no-untyped-call]
        except NoScriptError:
            self.reload_scripts()
            return execute(*command)  # type: ignore[no-untyped-call]
