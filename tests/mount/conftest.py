"""Fixtures for real mounts (see mountkit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mountkit import Mounted, start_mount


@pytest.fixture
def mount_factory(tmp_path: Path, nats_url: str) -> Iterator:
    """Call ``mount_factory(*extra_args, name=..., server=True)`` to mount; all are unmounted
    (and checked) at teardown."""
    mounts: list[Mounted] = []
    counter = iter(range(1000))

    def factory(*args: str, name: str | None = None, server: bool = True, env=None) -> Mounted:
        n = next(counter)
        mnt = tmp_path / (name or f"mnt{n}")
        extra = ["--server", nats_url] if server else []
        m = start_mount(mnt, tmp_path / f"osfs{n}.log", *extra, *args, env=env)
        mounts.append(m)
        return m

    yield factory
    errors = []
    for m in mounts:
        try:
            m.unmount()
        except AssertionError as exc:
            errors.append(str(exc))
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture
def mnt(mount_factory) -> Mounted:
    """One mount of the session server, buckets at the root."""
    return mount_factory()
