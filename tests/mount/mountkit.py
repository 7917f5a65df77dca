"""Helpers for real mounts: ``osfs mount --foreground`` in a subprocess against a real nats-server.

A mount fixture waits until the mount answers, and at teardown unmounts with
``fusermount3 -u`` and fails the test if that fails or if the process exits non-zero.
Everything osfs logged is kept in ``Mounted.log`` for assertions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: Marks tests that make real mounts: skipped where FUSE cannot be used (no /dev/fuse, not
#: root), and failed there when the environment variable CI is set (tests/conftest.py).
requires_fuse = pytest.mark.requires_fuse


def needs(available: bool, what: str) -> pytest.MarkDecorator:
    """Mark a test that needs ``what`` (a tool, a link scripts/setup.sh makes): skipped
    where it is not ``available``, failed there when CI is set (tests/conftest.py)."""
    return pytest.mark.needs(available, what)


def needs_program(name: str, package: str | None = None) -> pytest.MarkDecorator:
    """:func:`needs` the program ``name`` on PATH (from the Debian package ``package``)."""
    return needs(shutil.which(name) is not None, f"{name} (apt-get install {package or name})")


@dataclass
class Mounted:
    path: Path
    proc: subprocess.Popen
    log_path: Path
    args: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def unmount(self, timeout: float = 60.0) -> None:
        """Unmount with fusermount3 -u; raise if that fails or osfs exits non-zero.

        A mount whose osfs process already died is detached (``-z``) before raising, so a
        failed test never leaves a dead mount behind."""
        if self.proc.poll() is not None:
            if in_proc_mounts(self.path):
                subprocess.run(["fusermount3", "-u", "-z", str(self.path)], capture_output=True)
            if self.proc.returncode != 0:
                raise AssertionError(f"osfs had exited with {self.proc.returncode}\n{self.log[-3000:]}")
            return
        if os.path.ismount(self.path):
            res = subprocess.run(["fusermount3", "-u", str(self.path)], capture_output=True, text=True)
            if res.returncode != 0:
                subprocess.run(["fusermount3", "-u", "-z", str(self.path)], capture_output=True)
                self.proc.kill()
                raise AssertionError(f"fusermount3 -u failed: {res.stderr.strip()}\n{self.log[-3000:]}")
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"osfs did not exit after unmount\n{self.log[-3000:]}") from None
        if code != 0:
            raise AssertionError(f"osfs exited with {code}\n{self.log[-3000:]}")


def in_proc_mounts(path: Path) -> bool:
    """Whether ``path`` is a mount point in /proc/mounts (a dead FUSE mount included,
    which ``os.path.ismount`` misses because its ``stat`` fails)."""
    target = os.path.realpath(path).replace(" ", "\\040")
    with open("/proc/mounts") as f:
        return any(line.split()[1] == target for line in f)


def osfs_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "osfs", *args]


def start_mount(
    mountpoint: Path,
    log_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Mounted:
    """Start ``osfs mount --foreground`` and wait until the mount answers."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    cmd = osfs_cmd("mount", str(mountpoint), "--foreground", "--log-file", str(log_path), *args)
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(log_path.with_suffix(".stderr"), "wb"),  # noqa: SIM115
    )
    m = Mounted(mountpoint, proc, log_path, list(args))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = log_path.with_suffix(".stderr").read_text(errors="replace")
            raise AssertionError(f"osfs exited with {proc.returncode} before mounting: {err}\n{m.log}")
        if os.path.ismount(mountpoint):
            # the mount exists; osfs reports readiness by answering a stat
            os.stat(mountpoint)
            return m
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"mount did not appear in {timeout}s\n{m.log}")
