"""Shared fixtures: the real broker (garbagetruck.testing), clients, helpers."""

import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest

# The package of this source tree, not a copy installed earlier (which may
# be older than these tests).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from garbagetruck import Client
from garbagetruck.testing import broker_factory, broker_fixture, curve_broker_fixture  # noqa: F401  (fixtures)

T = TypeVar("T")

#: proto-spec/vectors of this source tree (sdk/python/tests -> ../../../proto-spec/vectors)
VECTORS_DIR = Path(os.environ.get("GT_VECTORS_DIR") or Path(__file__).resolve().parents[3] / "proto-spec" / "vectors")


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_until(check: Callable[[], T], timeout: float = 5.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.01)  # pacing between polls, not synchronisation


@pytest.fixture(autouse=True)
def _no_curve_from_the_environment(monkeypatch) -> None:
    """Clients fall back to $GT_SERVER_KEY / $GT_CLIENT_CERT: a developer's
    settings must not turn CURVE on in tests that did not ask for it."""
    monkeypatch.delenv("GT_SERVER_KEY", raising=False)
    monkeypatch.delenv("GT_CLIENT_CERT", raising=False)


@pytest.fixture
def service() -> str:
    return unique("svc")


@pytest.fixture
def client(broker, service) -> Iterator[Client]:
    with Client(broker.endpoint, service_id=service, timeout=5.0) as c:
        yield c
