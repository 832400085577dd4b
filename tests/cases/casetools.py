"""The case tests' world (an engine on the small test ruleset with lists and cases
attached, as the server wires them; a clock the test moves) and sending events through
it as the HTTP edge does."""

import os
from pathlib import Path
from typing import Any

import msgspec

from payguard.auth import AuditLog
from payguard.cases import CaseConfig, CaseService, SqlCaseStore
from payguard.config import load_settings
from payguard.decision import Decision
from payguard.engine import Engine
from payguard.lists import ListService

RULESET = Path(__file__).resolve().parent / "rules_cases.yaml"
PG_DSN = os.environ.get("PAYGUARD_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test")
T0 = 1_764_000_000_000
"""2025-11-24, the tests' epoch ms; the clock starts here."""


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


PAN = "6222021234567890128"
"""A UnionPay test card number (in clear only in requests; stored as its token)."""
OTHER_PAN = "4111111111111111"


def send(world: Any, event_id: str, type_: str, user: str, **fields: Any) -> Decision:
    """Decode (tokenize), decide, record and flush one event; its decision."""
    body: dict[str, Any] = {
        "event_id": event_id,
        "type": type_,
        "ts": world.clock.now,
        "user_id": user,
        **fields,
    }
    event = world.engine.decoder.decode(msgspec.json.encode(body))
    decision, _ = world.engine.process(event, commit=True)
    world.engine.flush()
    return decision


def transfer(world: Any, event_id: str, user: str, yuan: str, **fields: Any) -> Decision:
    fields.setdefault("payee", {"id": f"payee-{event_id}"})
    return send(world, event_id, "transfer", user, amount=yuan, device_id=f"d-{user}", **fields)


def payment(world: Any, event_id: str, user: str, yuan: str, **fields: Any) -> Decision:
    fields.setdefault("merchant", {"id": "m1", "category": "other"})
    return send(world, event_id, "payment", user, amount=yuan, device_id=f"d-{user}", **fields)
