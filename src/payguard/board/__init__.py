"""The publication board: what every worker of a scaled-out server must follow — the
active ruleset, the lists' changes — as numbered notices in the store the workers share
(Postgres or Redis). A worker publishes by posting a notice; every worker polls the
board's versions (one small read) and takes what is newer (payguard.api.publication).
"""

from payguard.board.base import Board, BoardError, Notice
from payguard.board.memory import MemoryBoard


def open_board(url: str) -> Board:
    """The board at `url`: `postgresql://…` (or a libpq `key=value` string), `redis://…`
    or `redis+cluster://host:port`, `memory:` for one process."""
    if url == "memory:":
        return MemoryBoard()
    if url.startswith(("redis://", "rediss://", "redis+cluster://")):
        from payguard.board.redis import RedisBoard

        return RedisBoard(url)
    from payguard.board.postgres import PostgresBoard

    return PostgresBoard(url)


__all__ = ["Board", "BoardError", "MemoryBoard", "Notice", "open_board"]
