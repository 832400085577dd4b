"""Fixtures for the case and list tests: a case store per backend (SQLite in a temporary
directory; Postgres at 127.0.0.1:5432, database `test`, in a schema of its own per test,
dropped after), and a world of engine + lists + cases on the small test ruleset with a
clock the test moves."""

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from payguard.cases import SqlCaseStore

sys.path.insert(0, str(Path(__file__).resolve().parent))

from casetools import PG_DSN, World

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlCaseStore]:
    """One case store per backend: the contract suite runs over both."""
    if request.param == "sqlite":
        opened = SqlCaseStore.sqlite(tmp_path / "cases.db")
        yield opened
        opened.close()
        return
    schema = f"cases_test_{uuid.uuid4().hex[:12]}"
    opened = SqlCaseStore.postgres(PG_DSN, schema=schema)
    try:
        yield opened
    finally:
        opened.close()
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def world(store: SqlCaseStore, tmp_path: Path) -> Iterator[World]:
    made = World(tmp_path / "data", store)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def listed_world(tmp_path: Path) -> Iterator[World]:
    """A world on a SQLite case store (lists do not depend on the case store)."""
    store = SqlCaseStore.sqlite(tmp_path / "cases.db")
    made = World(tmp_path / "data", store)
    try:
        yield made
    finally:
        made.close()
        store.close()
