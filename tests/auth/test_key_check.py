"""`KeyCheck` asks the key store whether it changed once per turn of the event loop, and
every request still sees the store as it stood after the request arrived: a revoke made
in another process before a request's task is scheduled refuses that request."""

import asyncio
import time
from pathlib import Path

import pytest

from payguard.api.access import AuthProblem, KeyCheck
from payguard.auth import AUTH_DB, Access, SqliteKeyStore


class CountingStore(SqliteKeyStore):
    """The real store, counting how often it is asked for its version."""

    asked = 0

    def version(self) -> int:
        self.asked += 1
        return super().version()


def _access(tmp_path: Path) -> tuple[Access, CountingStore, str, str]:
    store = CountingStore(tmp_path / AUTH_DB)
    access = Access.open(tmp_path, rate_per_s=1_000, burst=1_000)
    access.keys.close()
    access = Access(store, access.audit, access.limiter)
    now = time.time_ns() // 1_000_000
    new = access.create_key(["events:write"], name="gw", actor="test", now_ms=now)
    return access, store, new.key.key_id, new.secret


def test_one_store_query_per_turn_of_the_loop(tmp_path: Path) -> None:
    access, store, _, secret = _access(tmp_path)
    check = KeyCheck(access)
    header = f"Bearer {secret}"

    async def scenario() -> list[int]:
        asked = []
        for _ in range(3):
            before = store.asked
            for _ in range(5):  # five requests whose tasks run in the same turn
                assert check.authorize("events:write", "POST", "/v1/events", header)
            asked.append(store.asked - before)
            await asyncio.sleep(0)  # the next turn
        return asked

    assert asyncio.run(scenario()) == [1, 1, 1]
    access.close()


def test_a_revoke_in_another_process_refuses_the_next_turns_requests(tmp_path: Path) -> None:
    access, _, key_id, secret = _access(tmp_path)
    check = KeyCheck(access)
    header = f"Bearer {secret}"
    cli_side = SqliteKeyStore(tmp_path / AUTH_DB)  # `payguard keys revoke` in its own process

    async def scenario() -> None:
        assert check.authorize("events:write", "POST", "/v1/events", header)
        cli_side.revoke(key_id, time.time_ns() // 1_000_000)
        await asyncio.sleep(0)  # a request that arrives after the revoke
        with pytest.raises(AuthProblem) as refused:
            check.authorize("events:write", "POST", "/v1/events", header)
        assert refused.value.status == 401 and "revoked" in refused.value.body["reason"]

    asyncio.run(scenario())
    cli_side.close()
    access.close()


def test_without_a_running_loop_every_call_asks(tmp_path: Path) -> None:
    access, store, _, secret = _access(tmp_path)
    check = KeyCheck(access)
    before = store.asked
    for _ in range(3):
        check.authorize("events:write", "POST", "/v1/events", f"Bearer {secret}")
    assert store.asked - before == 3
    access.close()
