"""Fixtures shared by every test layer: a real nats-server on a free loopback port; and the
rule for tests that need real mounts (marked ``requires_fuse``): skipped where FUSE cannot be
used, failed instead when the environment variable ``CI`` is set (CI has /dev/fuse and root,
so a mount test that cannot mount there is a broken machine or set-up, not a pass)."""

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


def fuse_unusable() -> str | None:
    """Why real FUSE mounts cannot be made by this process, or None when they can."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not readable and writable"
    if os.geteuid() != 0:
        return "not root"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test whose ``requires_fuse`` or ``needs(available, what)`` markers are not met;
    fail it instead when ``CI`` is set (scripts/setup.sh installs all of it there)."""
    missing = [str(m.args[1]) for m in item.iter_markers("needs") if not m.args[0]]
    if item.get_closest_marker("requires_fuse") is not None and (why := fuse_unusable()):
        missing.insert(0, f"/dev/fuse and root ({why})")
    if not missing:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, and this test needs what is missing here: {'; '.join(missing)}")
    pytest.skip(f"needs {'; '.join(missing)}")


_bucket_counter = itertools.count()


@pytest.fixture
def bucket_name(request: pytest.FixtureRequest) -> str:
    """A bucket name unique within the session (tests share one server)."""
    base = "".join(c if c.isalnum() else "_" for c in request.node.name)[:40]
    return f"t{os.getpid()}_{next(_bucket_counter)}_{base}"
