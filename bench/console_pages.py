"""Console page render times with 100,000 cases (issue 15: every page under 300 ms).

    .venv/bin/python -m bench console

A simulated fortnight (1,000 customers, all campaigns) is decided into a fresh data
directory; the SQLite case store is filled with `cases` cases (four queues; 60 % open,
10 % investigating, 5 % snoozed, 25 % closed; one alert each, on a recorded decision of
the case's account); then a real server (uvicorn on loopback, as `payguard serve`) answers
a logged-in client. Each page is fetched once (`first`: it also counts what the page keeps
a while — the dashboard's and rules' figures for a minute, the queue summary for 5 s), then
`rounds` times: the median and the worst wall time per request in ms, client side (HTTP,
rendering and the queries behind the page).
"""

import random
import sqlite3
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvicorn

from payguard.api import create_app
from payguard.auth import Access, UserStore
from payguard.cases import Alert, Case, CaseService
from payguard.cases.store import SQLITE, SqlCaseStore
from payguard.config import load_settings
from payguard.engine import Engine
from payguard.lists import ListService
from payguard.sim import SimConfig, simulate

REPO = Path(__file__).resolve().parents[1]
QUEUES = ("review", "holds", "step_up", "customer_reports")
STATUSES = ("open",) * 12 + ("investigating",) * 2 + ("snoozed",) + ("closed",) * 5
HOUR_MS = 3_600_000


def _decide_history(root: Path, engine: Engine, users: int, days: int) -> list[tuple[str, str]]:
    """Decide a simulated window; (account, event id) of its money-out decisions."""
    start = datetime.now(UTC).date() - timedelta(days=days + 1)
    cfg = SimConfig(users=users, days=days, seed=3, start=start)
    simulate(cfg, root / "events.jsonl", root / "labels.jsonl")
    cutoff = (time.time() - 600) * 1000
    decided: list[tuple[str, str]] = []
    for line in (root / "events.jsonl").read_bytes().splitlines():
        event = engine.decoder.decode(line)
        if event.ts < cutoff:
            engine.process(event)
            if event.amount and event.user_id:
                decided.append((event.user_id, event.event_id))
    engine.flush()
    return decided


def _fill_cases(path: Path, n: int, decided: list[tuple[str, str]]) -> str:
    """`n` cases straight into the store (bulk set-up: synchronous=OFF); one case id."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA synchronous=OFF")
    store = SqlCaseStore(db, SQLITE)
    rng = random.Random(15)
    now = time.time_ns() // 1_000_000
    taken: set[tuple[str, str]] = set()
    for i in range(n):
        user, event_id = decided[i % len(decided)]
        opened = now - rng.randint(0, 72 * HOUR_MS)
        queue = rng.choice(QUEUES)
        entity = user if (queue, user) not in taken else f"{user}-{i}"  # one open case each
        taken.add((queue, entity))
        status = rng.choice(STATUSES)
        case = Case(
            case_id=f"case_{i:08d}",
            queue=queue,
            entity_kind="account",
            entity_id=entity,
            status=status,  # type: ignore[arg-type]
            snoozed_until=now + 48 * HOUR_MS if status == "snoozed" else None,
            opened_ts=opened,
            updated_ts=opened,
            due_ts=opened + 24 * HOUR_MS,
            score=rng.randint(0, 100),
            amount=rng.randint(100, 5_000_000),
            alerts=1,
        )
        store.put(case)
        alert = Alert(f"a{i}", "review", event_id, opened, case.score, case.amount, user_id=user)
        store.add_alert(case.case_id, alert)
    store.close()
    return "case_00000001"


def _serve(app: Any) -> tuple[uvicorn.Server, str, threading.Thread]:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}", thread


def _time(client: httpx.Client, path: str, rounds: int) -> tuple[float, float, float]:
    """(first, median, worst) ms: the first request also counts what pages keep a while."""
    start = time.perf_counter()
    assert client.get(path).status_code == 200, path
    first = (time.perf_counter() - start) * 1000
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return round(first, 1), round(statistics.median(times), 1), round(max(times), 1)


def run(
    cases: int = 100_000, users: int = 1_000, days: int = 14, rounds: int = 20
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="payguard-console-") as tmp:
        root = Path(tmp)
        env = {"PAYGUARD_DATA_DIR": str(root / "data")}
        settings = msgspec.structs.replace(
            load_settings(env=env), ruleset=REPO / "rules" / "default.yaml"
        )
        engine = Engine.open(settings)
        decided = _decide_history(root, engine, users, days)
        case_id = _fill_cases(root / "data" / "cases.db", cases, decided)
        access = Access.open(settings.data_dir, rate_per_s=1_000, burst=1_000)
        users_db = UserStore(settings.data_dir / "auth.db")
        users_db.create("bench", "lead", "bench-password", now_ms=time.time_ns() // 1_000_000)
        users_db.close()
        lists = ListService.open(settings.data_dir, settings.tokenizer(engine.features.knows), None)
        work = CaseService(SqlCaseStore.sqlite(root / "data" / "cases.db"), engine, lists,
                           access.audit, clock=lambda: time.time_ns() // 1_000_000)  # fmt: skip
        work.attach()
        server, url, thread = _serve(create_app(engine, access=access, cases=work))
        user = decided[1][0]
        pages = {
            "queue (open, by time left)": "/console/queue",
            "queue (review, open, by score)": "/console/queue?queue=review&status=open&order=score",
            "queue (open, by amount)": "/console/queue?order=amount",
            "queue (every status, by time left)": "/console/queue?status=any",
            "case view": f"/console/cases/{case_id}",
            "account timeline": f"/console/accounts/{user}",
            "decision search (review)": "/console/decisions?action=review",
            "rules (7 days of figures)": "/console/rules",
            "dashboard (14 days)": "/console/dashboard?days=14",
        }
        results: dict[str, Any] = {"cases": cases, "records": engine.recorder.last_seq()}
        try:
            with httpx.Client(base_url=url, timeout=120) as client:
                form = {"login": "bench", "password": "bench-password"}
                assert client.post("/console/login", data=form).status_code == 303
                for name, path in pages.items():
                    first, median, worst = _time(client, path, rounds)
                    results[f"{name}: first ms"] = first
                    results[f"{name}: median ms"] = median
                    results[f"{name}: max ms"] = worst
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            work.close()
            lists.close()
            access.close()
            engine.close()
    return results


if __name__ == "__main__":
    print(msgspec.json.format(msgspec.json.encode(run()), indent=2).decode())
