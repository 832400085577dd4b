"""Fixtures shared by every room that talks to a real Redis or Postgres on loopback, and
the hypothesis profile every property test runs under (no deadline).

The services are the ones `.ci/run` starts: Redis on 127.0.0.1:6379, a 3-node Redis
Cluster from `.ci/redis-cluster` (`PAYGUARD_TEST_REDIS_CLUSTER`, default 127.0.0.1:7000)
and Postgres on 127.0.0.1:5432, database `test` (`PAYGUARD_TEST_PG_DSN`). A service that
does not answer fails the test that asked for it, naming the command that starts it: a
skipped backend would let its contract suite pass without having run.
"""

import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import settings

# No per-example deadline: hypothesis's default (200 ms) is a timing threshold, and a
# loaded 2-core machine (CI beside other work) passes it by chance, not by correctness.
settings.register_profile("payguard", deadline=None)
settings.load_profile("payguard")

REDIS_URL = os.environ.get("PAYGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_CLUSTER = os.environ.get("PAYGUARD_TEST_REDIS_CLUSTER", "127.0.0.1:7000")
PG_DSN = os.environ.get("PAYGUARD_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The single Redis, as a URL; tests keep apart by key prefix (`redis_prefix`)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"no Redis at {REDIS_URL} ({exc}); start it as .ci/run does")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_cluster_url() -> str:
    """The Redis Cluster, as `redis+cluster://host:port` (any node; the client finds
    the rest)."""
    import redis.cluster

    host, _, port = REDIS_CLUSTER.partition(":")
    try:
        client = redis.cluster.RedisCluster(host=host, port=int(port or 7000))
        client.ping()
        client.close()
    except redis.RedisError as exc:
        pytest.fail(f"no Redis Cluster at {REDIS_CLUSTER} ({exc}); run .ci/redis-cluster")
    return f"redis+cluster://{REDIS_CLUSTER}"


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own: helpers' runs share the servers at once."""
    return f"pgtest:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """(dsn, schema): a Postgres schema of this test's own, dropped after it."""
    import psycopg

    schema = f"pgtest_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"no Postgres at {PG_DSN} ({exc}); start it as .ci/run does")
    try:
        yield PG_DSN, schema
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
