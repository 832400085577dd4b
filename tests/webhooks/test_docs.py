"""docs/webhooks.md says what the code does: its example payloads are what the engine
writes for the same events, its Python verification example accepts what payguard signs
and refuses what it should, and its retry table is the default schedule."""

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from receiver import SECRET, T0, hold_events

from payguard.config import load_settings
from payguard.engine import Engine
from payguard.webhooks import RetryPolicy, Webhooks, sign

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "webhooks.md"
sys.path.insert(0, str(ROOT / "tests"))
from docs_examples import load_examples  # noqa: E402


def _python_block() -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"```python\n(.*?)\n```", text, re.DOTALL)
    assert match is not None, "docs/webhooks.md has a Python example"
    return match.group(1)


def test_the_example_payloads_are_what_the_engine_writes(tmp_path: Path) -> None:
    loaded = load_settings(env={"PAYGUARD_DATA_DIR": str(tmp_path)})
    settings = msgspec.structs.replace(
        loaded,
        ruleset=ROOT / "rules" / "default.yaml",
        webhook_urls=("https://ops.bank.example/payguard",),
        webhook_secrets=(SECRET,),
    )
    engine = Engine.open(settings)
    clock = [T0]
    webhooks = Webhooks.open(settings, clock=lambda: clock[0])
    assert webhooks is not None
    webhooks.attach(engine)
    events = hold_events("u1", T0)
    events[-1]["payee"] = {"id": "payee-42"}
    for body in events:
        engine.process(engine.decoder.decode(json.dumps(body).encode()))
    engine.flush()
    clock[0] = T0 + 3_600_000
    engine.resolve_hold("hold-u1-transfer", "revoked", at_ms=clock[0], by="customer")
    written = [
        json.loads(webhooks.outbox.body(d.delivery_id) or b"")
        for d in reversed(webhooks.outbox.find(limit=10))
    ]
    webhooks.close()
    engine.close()
    documented = [json.loads(payload) for payload, _ in load_examples(DOC, "webhook")]
    assert documented == written


def test_the_python_verification_example_works() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(_python_block(), str(DOC), "exec"), namespace)
    verify: Callable[..., bool] = namespace["verify_payguard"]
    body = b'{"id":"whd_1","type":"decision.review"}'
    now = int(time.time())
    rotating = sign(body, ["whsec-new-0123456789abcdef", SECRET], timestamp_s=now)
    assert verify(body, rotating, [SECRET])
    assert not verify(body, rotating, ["whsec-other-000000000000"])
    assert not verify(body + b" ", rotating, [SECRET])
    assert not verify(body, sign(body, [SECRET], timestamp_s=now - 301), [SECRET])
    assert not verify(body, "v1=abc", [SECRET])


def _span(low_ms: int, high_ms: int) -> str:
    """A row's range as the table writes it: seconds up to 160 s, else minutes."""
    if high_ms < 170_000:
        return f"{low_ms // 1000}–{round(high_ms / 1000)} s"
    low, high = low_ms / 60_000, high_ms / 60_000
    return f"{low:.1f}–{high:.1f} min".replace(".0–", "–").replace(".0 min", " min")


def test_the_retry_table_is_the_default_schedule() -> None:
    text = DOC.read_text(encoding="utf-8")
    policy = RetryPolicy()
    for attempt in range(1, 10):
        row = f"| {attempt} | {_span(policy.delay_ms(attempt, 0), policy.delay_ms(attempt, 1))} |"
        assert row in text
    capped = {(policy.delay_ms(n, 0), policy.delay_ms(n, 1)) for n in range(10, 20)}
    assert capped == {(1_800_000, 3_600_000)} and "| 10 to 19 | 30–60 min |" in text
    low = sum(policy.delay_ms(n, 0) for n in range(1, policy.max_attempts)) / 3_600_000
    high = sum(policy.delay_ms(n, 1) for n in range(1, policy.max_attempts)) / 3_600_000
    assert f"tried {policy.max_attempts} times over about {low:.1f} to {high:.1f} hours" in text
