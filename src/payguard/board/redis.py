"""The board in Redis or a Redis Cluster: one hash of versions and one hash of bodies,
both hash-tagged `{payguard:board}` so they live in one slot and a post is one atomic
script (no multi-slot command)."""

from typing import Any, Final

import redis
import redis.cluster

from payguard.board.base import BoardError, Notice

TAG: Final = "{payguard:board}"
VERSIONS: Final = f"{TAG}:versions"
BODIES: Final = f"{TAG}:bodies"
_POST: Final = """
local version = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return version
"""
_READ: Final = """
return {redis.call('HGET', KEYS[1], ARGV[1]), redis.call('HGET', KEYS[2], ARGV[1])}
"""


class RedisBoard:
    def __init__(self, url: str, *, prefix: str = "") -> None:
        """`redis://host:port/db` or `redis+cluster://host:port` (any node); `prefix`
        keeps tests apart on a shared server."""
        self._client: Any
        if url.startswith("redis+cluster://"):
            host, _, port = url.removeprefix("redis+cluster://").partition(":")
            self._client = redis.cluster.RedisCluster(host=host, port=int(port or 6379))
        else:
            self._client = redis.Redis.from_url(url)
        self._keys = [prefix + VERSIONS, prefix + BODIES]
        self._post = self._client.register_script(_POST)
        self._read = self._client.register_script(_READ)

    def post(self, topic: str, body: bytes) -> int:
        try:
            return int(self._post(keys=self._keys, args=[topic, body]))
        except redis.RedisError as exc:
            raise BoardError(f"board: {exc}") from exc

    def versions(self) -> dict[str, int]:
        try:
            found = self._client.hgetall(self._keys[0])
        except redis.RedisError as exc:
            raise BoardError(f"board: {exc}") from exc
        return {topic.decode(): int(version) for topic, version in found.items()}

    def read(self, topic: str) -> Notice | None:
        """Body and version read together (one slot, one script: never a new version
        with the old body)."""
        try:
            found = self._read(keys=self._keys, args=[topic])
        except redis.RedisError as exc:
            raise BoardError(f"board: {exc}") from exc
        version, body = [*found, None, None][:2]  # a missing field comes back as nil
        if version is None:
            return None
        return Notice(topic, int(version), bytes(body or b""))

    def clear(self) -> None:
        """Remove every notice (a test's keys, after it)."""
        self._client.delete(*self._keys)

    def close(self) -> None:
        self._client.close()
