"""The ``osfs`` command: embedded default, daemon mode, and one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from mountkit import osfs_cmd, requires_fuse, start_mount

from osfs.embedded import EmbeddedServer, find_nats_server

pytestmark = [pytest.mark.mount, requires_fuse]


def run_osfs(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        osfs_cmd(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_reads_like_a_tool():
    res = run_osfs("--help")
    assert res.returncode == 0
    assert "mount" in res.stdout and "umount" in res.stdout
    res = run_osfs("mount", "--help")
    assert res.returncode == 0
    for opt in (
        "--server",
        "--bucket",
        "--read-only",
        "--chunk-size",
        "--cache-size",
        "--allow-other",
        "--uid",
        "--gid",
        "--umask",
        "--log-level",
        "--log-file",
        "--foreground",
        "NATS_URL",
    ):
        assert opt in res.stdout, opt


def test_embedded_server_keeps_data_across_remounts(tmp_path: Path):
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "NATS_URL": ""}
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # daemon mode: returns once the mount answers
    res = run_osfs("mount", str(mnt), env=env)
    assert res.returncode == 0, res.stderr
    try:
        assert os.path.ismount(mnt)
        os.mkdir(mnt / "photos")
        (mnt / "photos" / "a.txt").write_text("kept")
    finally:
        res = run_osfs("umount", str(mnt), env=env)
    assert res.returncode == 0, res.stderr
    assert not os.path.ismount(mnt)
    assert (tmp_path / "xdg" / "osfs" / "jetstream").is_dir()
    m = start_mount(mnt, tmp_path / "second.log", env=env)
    try:
        assert (mnt / "photos" / "a.txt").read_text() == "kept"
        # one embedded server per data directory
        other = tmp_path / "other"
        other.mkdir()
        res = run_osfs("mount", str(other), "--foreground", env=env)
        assert res.returncode == 1
        assert "another osfs mount" in res.stderr
    finally:
        m.unmount()


def test_mountpoint_errors(tmp_path: Path, nats_url: str):
    res = run_osfs("mount", str(tmp_path / "missing"), "--server", nats_url)
    assert res.returncode == 1
    assert res.stderr.strip() == f"osfs: mountpoint {tmp_path / 'missing'} does not exist"
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    res = run_osfs("mount", str(full), "--server", nats_url)
    assert res.returncode == 1
    assert "is not empty" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_unreachable_server_fails_in_bounded_time(tmp_path: Path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = run_osfs("mount", str(mnt), "--server", f"nats://127.0.0.1:{free_port()}", timeout=90)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("osfs: cannot connect"), res.stderr
    assert not os.path.ismount(mnt)


def test_auth_refused_and_jetstream_disabled(tmp_path: Path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with EmbeddedServer(tmp_path / "auth", token="right-token") as server:
        tok = tmp_path / "tok"
        tok.write_text("wrong-token\n")
        res = run_osfs("mount", str(mnt), "--server", server.url, "--token-file", str(tok), timeout=90)
        assert res.returncode == 1
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "cannot connect" in res.stderr
        assert "wrong-token" not in res.stderr
    port = free_port()
    plain = subprocess.Popen(
        [find_nats_server(), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        res = run_osfs("mount", str(mnt), "--server", f"nats://127.0.0.1:{port}", timeout=90)
        assert res.returncode == 1
        assert "JetStream" in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    finally:
        plain.terminate()
        plain.wait()


def test_bad_option_is_a_usage_error(tmp_path: Path):
    res = run_osfs("mount", str(tmp_path), "-o", "frobnicate")
    assert res.returncode == 2
    assert res.stderr.strip() == "osfs: unknown mount option: frobnicate"
    res = run_osfs("mount", str(tmp_path), "--chunk-size", "lots")
    assert res.returncode == 2
    assert "not a size" in res.stderr
