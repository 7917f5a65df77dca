"""``osfs bucket`` beside a mount that runs the embedded server: the commands talk to the
mount's server (at the address it publishes in the data directory) instead of refusing, and
what they do shows in the mount."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from mountkit import osfs_cmd, requires_fuse
from semkit import wait_for

from osfs.embedded import RUNNING_SERVER_FILE

pytestmark = [pytest.mark.mount, requires_fuse]


def bucket(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        osfs_cmd("bucket", *args, "--data-dir", str(data_dir)),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "NATS_URL": "", "NATS_CONTEXT": ""},
    )


def test_bucket_commands_use_the_mounts_embedded_server(mount_factory, tmp_path: Path):
    data = tmp_path / "data"
    m = mount_factory("--data-dir", str(data), server=False)
    published = data / RUNNING_SERVER_FILE
    assert stat.S_IMODE(published.stat().st_mode) == 0o600
    assert set(json.loads(published.read_text())) == {"url", "token"}

    res = bucket(data, "create", "x", "--description", "made beside a mount")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "created x"
    # the mount lists buckets from a cache of up to a second
    assert wait_for(lambda: "x" in os.listdir(m.path), timeout=10), os.listdir(m.path)
    (m.path / "x" / "hello.txt").write_bytes(b"hello")

    res = bucket(data, "ls", "--json")
    assert res.returncode == 0, res.stderr
    assert [b["bucket"] for b in json.loads(res.stdout)] == ["x"]

    res = bucket(data, "status", "x", "--json")
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert st["description"] == "made beside a mount" and st["objects"] == 1

    res = bucket(data, "seal", "x", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["sealed"] is True

    res = bucket(data, "status", "nope")
    assert res.returncode == 3, res.stderr

    res = bucket(data, "rm", "x")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "removed x"
    assert wait_for(lambda: "x" not in os.listdir(m.path), timeout=10), os.listdir(m.path)

    m.unmount()
    assert not published.exists(), "the address file outlived the mount"
    # with the mount gone, the command starts the server of the data directory itself
    res = bucket(data, "ls", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == []
