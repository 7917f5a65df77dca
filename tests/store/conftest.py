"""Fixtures of the store tests: the same tests run on the memory store and on NATS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from storekit import StoreRunner

from osfs.store.nats.loop import Bridge


@pytest.fixture(params=["memory", "nats"])
def store(request: pytest.FixtureRequest, bucket_name: str) -> Iterator[StoreRunner]:
    """A runner for the memory store and for the NATS store (the session's server)."""
    url = request.getfixturevalue("nats_url") if request.param == "nats" else None
    runner = StoreRunner(request.param, url, bucket_name)
    yield runner
    runner.cleanup()


@pytest.fixture
def nats_store(nats_url: str, bucket_name: str) -> Iterator[StoreRunner]:
    """A runner for the NATS store only."""
    runner = StoreRunner("nats", nats_url, bucket_name)
    yield runner
    runner.cleanup()


@pytest.fixture
def bridge() -> Iterator[Bridge]:
    """A started bridge (an asyncio loop in its thread), closed after the test."""
    b = Bridge().start()
    yield b
    b.close()
