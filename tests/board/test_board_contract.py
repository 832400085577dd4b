"""One contract suite for the publication board over memory, Postgres, Redis and the
Redis Cluster: versions count up per topic, the newest body wins, and posts from many
threads at once each get a version of their own."""

import threading
from collections.abc import Iterator

import pytest

from payguard.board import Board, MemoryBoard
from payguard.board.postgres import PostgresBoard
from payguard.board.redis import RedisBoard


@pytest.fixture(params=["memory", "postgres", "redis", "redis-cluster"])
def board(request: pytest.FixtureRequest) -> Iterator[Board]:
    made: Board
    if request.param == "memory":
        made = MemoryBoard()
    elif request.param == "postgres":
        dsn, schema = request.getfixturevalue("pg_schema")
        made = PostgresBoard(f"{dsn} options='-c search_path={schema}'")
    else:
        fixture = "redis_url" if request.param == "redis" else "redis_cluster_url"
        url = request.getfixturevalue(fixture)
        prefix = request.getfixturevalue("redis_prefix")
        made = RedisBoard(url, prefix=prefix)
    yield made
    if isinstance(made, RedisBoard):
        made.clear()
    made.close()


def test_versions_count_up_and_the_newest_body_wins(board: Board) -> None:
    assert board.versions() == {} and board.read("ruleset") is None
    assert board.post("ruleset", b"version: a") == 1
    assert board.post("lists", b"") == 1
    assert board.post("ruleset", b"version: b") == 2
    assert board.versions() == {"ruleset": 2, "lists": 1}
    notice = board.read("ruleset")
    assert notice is not None and (notice.version, notice.body) == (2, b"version: b")
    empty = board.read("lists")
    assert empty is not None and (empty.version, empty.body) == (1, b"")


def test_posts_at_once_each_get_their_own_version(board: Board) -> None:
    got: list[int] = []
    lock = threading.Lock()

    def post(worker: int) -> None:
        for i in range(10):
            version = board.post("ruleset", f"{worker}-{i}".encode())
            with lock:
                got.append(version)

    threads = [threading.Thread(target=post, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == list(range(1, 41))
    assert board.versions() == {"ruleset": 40}
