"""Helpers for the OTP tests: an injectable clock, request builders, engines, a real server."""

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from apiserver import Server

from payguard.config import Settings, load_settings
from payguard.decision import Decision
from payguard.engine import Engine, compile_ruleset
from payguard.events import Event
from payguard.features import FeatureState, load_catalog
from payguard.otp import (
    MemoryOutbox,
    OtpService,
    SendResult,
    VerifyResult,
    decode_send,
    decode_verify,
)

HERE = Path(__file__).resolve().parent
RULESET = HERE / "data" / "otp_rules.yaml"
T0 = 1_599_183_000_000  # 2020-09-04T09:30:00+08:00
CODE_RE = re.compile(r"(?<!\d)\d{6}(?!\d)")


class FakeClock:
    """Epoch ms that moves only when a test says so: expiry without sleeping."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


class Codes:
    """A code generator that hands out the given codes in order (then random ones)."""

    def __init__(self, *codes: str) -> None:
        self._codes = list(codes)

    def __call__(self) -> str:
        from payguard.otp.codes import new_code

        return self._codes.pop(0) if self._codes else new_code()


def settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    env = {"PAYGUARD_DATA_DIR": str(data_dir)} if data_dir is not None else {}
    base = load_settings(env=env)
    return msgspec.structs.replace(base, ruleset=RULESET, **overrides)


def memory_engine(config: Settings | None = None) -> Engine:
    config = config or settings()
    features = FeatureState(load_catalog(config.features))
    ruleset = compile_ruleset(RULESET.read_text(encoding="utf-8"), features)
    return Engine.in_memory(config, features, ruleset)


def service(engine: Engine, clock: FakeClock, codes: Callable[[], str] | None = None) -> OtpService:
    kwargs: dict[str, Any] = {"clock": clock}
    if codes is not None:
        kwargs["codes"] = codes
    return OtpService.for_engine(engine, **kwargs)


SEND: dict[str, Any] = {
    "user_id": "u_1",
    "device_id": "dev_1",
    "session_id": "sess_1",
    "ip": "10.0.0.1",
    "amount": "300.00",
    "merchant": {"id": "m_1", "category": "ecommerce", "name": "京东商城"},
    "channel": "app",
}
VERIFY: dict[str, Any] = {
    "user_id": "u_1",
    "device_id": "dev_1",
    "session_id": "sess_1",
    "ip": "10.0.0.1",
    "amount": "300.00",
    "merchant": {"id": "m_1"},
    "channel": "app",
}


def send(svc: OtpService, **changes: Any) -> SendResult:
    body = {**SEND, **changes}
    return svc.send(decode_send(msgspec.json.encode(_drop_none(body))))


def verify(svc: OtpService, challenge_id: str, code: str, **changes: Any) -> VerifyResult:
    body = {**VERIFY, **changes, "challenge_id": challenge_id, "code": code}
    return svc.verify(decode_verify(msgspec.json.encode(_drop_none(body))))


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def last_code(svc: OtpService) -> str:
    """The code in the newest message the delivery holds (the customer's phone)."""
    delivery = svc.delivery
    assert isinstance(delivery, MemoryOutbox)
    return code_in(delivery.sent[-1].text)


def code_in(text: str) -> str:
    match = CODE_RE.search(text)
    assert match is not None, text
    return match.group()


def wrong(code: str) -> str:
    """A code that is certainly not `code`."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


def decide(
    engine: Engine, event_id: str, type_: str, user: str, ts: int, **fields: Any
) -> Decision:
    """Decode a contract-v1 event as the API does, decide and record it."""
    body = {"event_id": event_id, "type": type_, "ts": ts, "user_id": user, **fields}
    decision, _ = engine.process(engine.decoder.decode(msgspec.json.encode(body)))
    engine.flush()
    return decision


def recorded(engine: Engine, event_id: str) -> Event:
    found = engine.recorder.get_event(event_id)
    assert found is not None, event_id
    return found


class OtpServer(Server):
    """A real payguard server on loopback with the OTP test ruleset (tests/api's server)."""

    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        super().__init__(data_dir, settings(data_dir, **overrides))

    def start(self) -> "OtpServer":
        super().start()
        return self

    def outbox(self) -> Iterator[dict[str, Any]]:
        path = self.data_dir / "otp-outbox.jsonl"
        if path.exists():
            for line in path.read_bytes().splitlines():
                yield msgspec.json.decode(line)
