"""Lets the webhook tests import their receiver (`receiver`) by module name, and gives the
HTTP tests a running one."""

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from receiver import Receiver

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def receiver() -> Iterator["Receiver"]:
    """A real receiver on loopback that checks signatures with the test secret."""
    from receiver import SECRET, Receiver

    started = Receiver([SECRET]).start()
    yield started
    started.stop()
