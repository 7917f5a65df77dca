"""Fixtures shared by every test layer: a real nats-server on a free loopback port."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from osfs.embedded import EmbeddedServer


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """One JetStream server for the session (no auth), data in a temporary directory."""
    server = EmbeddedServer(tmp_path_factory.mktemp("nats"), token="")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedServer) -> str:
    return nats_server.url


_bucket_counter = itertools.count()


@pytest.fixture
def bucket_name(request: pytest.FixtureRequest) -> str:
    """A bucket name unique within the session (tests share one server)."""
    base = "".join(c if c.isalnum() else "_" for c in request.node.name)[:40]
    return f"t{os.getpid()}_{next(_bucket_counter)}_{base}"
