"""Fixtures of the fault tests: mounts against any server URL list, a restartable server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultkit import Mounted, RestartableServer, kill_mount, start_mount


@pytest.fixture
def mounts(tmp_path: Path, nats_url: str) -> Iterator:
    """``mounts(*args, servers=[url, ...], name=...)`` starts ``osfs mount``; every mount
    still running at teardown is unmounted and must exit 0 (killed ones are only detached)."""
    made: list[Mounted] = []
    counter = iter(range(1000))

    def factory(*args: str, servers: list[str] | None = None, name: str | None = None) -> Mounted:
        n = next(counter)
        where = ",".join(servers) if servers else nats_url
        m = start_mount(tmp_path / (name or f"mnt{n}"), tmp_path / f"osfs{n}.log", "--server", where, *args)
        made.append(m)
        return m

    yield factory
    errors = []
    for m in made:
        if m.proc.poll() is not None and m.proc.returncode < 0:
            kill_mount(m)
            continue
        try:
            m.unmount()
        except AssertionError as exc:
            errors.append(str(exc))
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RestartableServer]:
    """A server of this test's own, on a fixed port, that the test may stop and start."""
    server = RestartableServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _show_logs_on_failure(request, tmp_path: Path):
    """Print the mount logs of a test (shown by pytest when it fails or with -s)."""
    yield
    if os.environ.get("OSFS_FAULTS_LOGS"):
        for log in sorted(tmp_path.glob("osfs*.log")):
            print(f"----- {log.name}\n{log.read_text(errors='replace')[-6000:]}")
