"""Fixtures for the case and list tests: a case store per backend (SQLite in a temporary
directory; Postgres at 127.0.0.1:5432, database `test`, in a schema of its own per test,
dropped after), and a world of engine + lists + cases on the small test ruleset with a
clock the test moves."""

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import psycopg
import pytest

from payguard.auth import AuditLog
from payguard.cases import CaseConfig, CaseService, SqlCaseStore
from payguard.config import load_settings
from payguard.engine import Engine
from payguard.lists import ListService

sys.path.insert(0, str(Path(__file__).resolve().parent))

RULESET = Path(__file__).resolve().parent / "rules_cases.yaml"
PG_DSN = os.environ.get("PAYGUARD_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test")
T0 = 1_764_000_000_000
"""2025-11-24, the tests' epoch ms; the clock starts here."""
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


class Clock:
    """The service's clock: epoch ms the test sets and moves."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class World:
    """An engine on the test ruleset with lists and cases attached, as the server wires
    them (`api.create_app`)."""

    def __init__(self, data_dir: Path, store: SqlCaseStore, config: CaseConfig | None = None):
        self.data_dir = data_dir
        settings = load_settings(env={"PAYGUARD_DATA_DIR": str(data_dir)})
        self.settings = msgspec.structs.replace(settings, ruleset=RULESET)
        self.engine = Engine.open(self.settings)
        self.audit = AuditLog(data_dir / "auth.db")
        self.tokenizer = self.settings.tokenizer()
        self.lists = ListService.open(data_dir, self.tokenizer, self.audit)
        self.clock = Clock()
        self.cases = CaseService(
            store, self.engine, self.lists, self.audit, config, clock=self.clock
        )
        self.cases.attach()

    def reopen(self) -> None:
        """Open the lists and the audit log again (after a test closed them)."""
        self.audit = AuditLog(self.data_dir / "auth.db")
        self.lists = ListService.open(self.data_dir, self.tokenizer, self.audit)

    def close(self) -> None:
        self.cases.detach()
        self.lists.close()
        self.audit.close()
        self.engine.close()


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
