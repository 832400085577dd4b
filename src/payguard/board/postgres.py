"""The board as one Postgres table (beside the event log of scaled-out workers): a row
per topic, its version bumped by an upsert, so a post is one atomic statement."""

import threading
from typing import Any

import psycopg

from payguard.board.base import BoardError, Notice

_SCHEMA = """
CREATE TABLE IF NOT EXISTS board (
    topic   TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    body    BYTEA NOT NULL
)
"""
_SCHEMA_LOCK = 0x626F6172  # "boar": workers starting together create the table once


class PostgresBoard:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._lock = threading.Lock()
        """One connection, used by the poller's thread and the publishing request."""
        self._db: psycopg.Connection[Any] | None = None
        with self._lock:
            db = self._connection()
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                db.execute(_SCHEMA)

    def _connection(self) -> psycopg.Connection[Any]:
        """The connection, opened again after the server dropped it."""
        if self._db is None or self._db.closed or self._db.broken:
            try:
                self._db = psycopg.connect(self._dsn, autocommit=True)
            except psycopg.Error as exc:
                raise BoardError(f"board unreachable: {exc}") from exc
        return self._db

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._connection().execute(sql, args).fetchall()
            except psycopg.Error as exc:
                raise BoardError(f"board: {exc}") from exc

    def post(self, topic: str, body: bytes) -> int:
        rows = self._rows(
            "INSERT INTO board VALUES (%s, 1, %s) ON CONFLICT (topic) DO UPDATE "
            "SET version = board.version + 1, body = EXCLUDED.body RETURNING version",
            (topic, body),
        )
        return int(rows[0][0])

    def versions(self) -> dict[str, int]:
        return {
            topic: int(version) for topic, version in self._rows("SELECT topic, version FROM board")
        }

    def read(self, topic: str) -> Notice | None:
        rows = self._rows("SELECT version, body FROM board WHERE topic = %s", (topic,))
        return Notice(topic, int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
