"""Fixtures: an in-memory engine with the OTP test ruleset, a clock, the service over them."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from otp_support import FakeClock, memory_engine, service

from payguard.engine import Engine
from payguard.otp import OtpService


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = memory_engine()
    try:
        yield eng
    finally:
        eng.close()


@pytest.fixture
def otp(engine: Engine, clock: FakeClock) -> Iterator[OtpService]:
    svc = service(engine, clock)
    try:
        yield svc
    finally:
        svc.close()
