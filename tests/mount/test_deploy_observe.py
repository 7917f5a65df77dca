"""Observability of a running mount: ``osfs status``, the Prometheus endpoint, journal levels;
and buckets the server refuses writes to (sealed, mirrors) mounted read-only."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from mountkit import osfs_cmd, requires_fuse

pytestmark = [pytest.mark.mount, requires_fuse]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def osfs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        osfs_cmd(*args), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def status(mnt: Path) -> dict:
    res = osfs("status", str(mnt), "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_status_and_prometheus(mount_factory, bucket_name: str, tmp_path: Path):
    port = free_port()
    m = mount_factory("--metrics-port", str(port), "--cache-size", "64M")
    b = m.path / bucket_name
    os.mkdir(b)
    data = os.urandom(3 * 128 * 1024 + 17)
    (b / "f.bin").write_bytes(data)
    s = status(m.path)
    assert s["bytes_written"] == len(data)
    assert s["uploads"] >= 1 and s["uploads_in_flight"] == 0
    assert s["errors"] == 0
    # an open file with unpublished data is an upload in flight
    with open(b / "open.bin", "wb") as f:
        f.write(b"pending")
        f.flush()
        assert status(m.path)["uploads_in_flight"] == 1
    assert status(m.path)["uploads_in_flight"] == 0
    # read twice: the second read is served from the chunk cache
    for _ in range(2):
        with open(b / "f.bin", "rb", buffering=0) as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            assert f.read() == data
    s = status(m.path)
    assert s["bytes_read"] >= len(data)
    assert s["cache_hits"] > 0 and 0 < s["cache_hit_rate"] <= 1
    assert s["cache_limit"] == 64 << 20
    # a refused change is counted as an error
    with pytest.raises(OSError):
        os.mkdir(m.path / "bad.name")
    s = status(m.path)
    assert s["errors"] == 1 and s["last_error"].startswith("mkdir")

    table = osfs("status", str(m.path))
    assert table.returncode == 0
    assert "cache hit rate:" in table.stdout and "uploads in flight: 0" in table.stdout

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    metrics = {
        ln.split("{")[0]: float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith("osfs_")
    }
    assert metrics["osfs_bytes_written_total"] == len(data) + len(b"pending")
    assert metrics["osfs_errors_total"] == 1
    assert "# TYPE osfs_uploads_in_flight gauge" in text
    assert f'mountpoint="{m.path}"' in text
    # the endpoint listens on loopback only
    with socket.socket() as sock:
        sock.settimeout(2)
        addrs = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
        addrs.discard("127.0.0.1")
        for addr in addrs - {"127.0.1.1"}:
            assert sock.connect_ex((addr, port)) != 0


def test_status_of_something_else_fails(tmp_path: Path):
    res = osfs("status", str(tmp_path))
    assert res.returncode == 1
    assert res.stderr.startswith(f"osfs: {tmp_path} is not an osfs mount")


def test_stats_attribute_is_read_only(mnt):
    assert "user.osfs.stats" in os.listxattr(mnt.path)
    with pytest.raises(OSError) as e:
        os.setxattr(mnt.path, "user.osfs.stats", b"{}")
    assert e.value.errno == errno.EPERM


def test_logs_carry_journal_priorities(tmp_path: Path, nats_url: str):
    """Under systemd (stderr is the journal stream named by JOURNAL_STREAM) each line starts with
    its syslog priority, so journald files it at the right level."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    err = tmp_path / "stderr"
    with open(err, "wb") as f:
        st = os.fstat(f.fileno())
        proc = subprocess.Popen(
            osfs_cmd("mount", str(mnt), "--foreground", "--server", nats_url, "--log-level", "debug"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=f,
            env={**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"},
        )
    try:
        deadline = time.monotonic() + 60
        while not os.path.ismount(mnt) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert os.path.ismount(mnt), err.read_text()
        with pytest.raises(OSError):
            os.mkdir(mnt / "bad.name")
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        assert proc.wait(60) == 0
    lines = err.read_text().splitlines()
    assert any(ln.startswith("<6>INFO osfs: mounted") for ln in lines), lines
    assert any(ln.startswith("<7>DEBUG") for ln in lines), lines
    assert all(ln[:1] == "<" and ln[2] == ">" for ln in lines), lines


def test_sealed_and_mirror_buckets_refuse_writes(mount_factory, nats_url: str, bucket_name: str):
    sealed, origin, mirror = bucket_name, bucket_name + "-o", bucket_name + "-m"
    m = mount_factory()
    for name in (sealed, origin):
        os.mkdir(m.path / name)
        (m.path / name / "a.txt").write_text("kept")
    assert osfs("bucket", "seal", sealed, "--server", nats_url).returncode == 0
    assert osfs("bucket", "create", mirror, "--server", nats_url, "--mirror", origin).returncode == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not os.path.exists(m.path / mirror / "a.txt"):
        time.sleep(0.1)
    for name in (sealed, mirror):
        d = m.path / name
        assert (d / "a.txt").read_text() == "kept"
        for attempt in (
            lambda d=d: (d / "new.txt").write_text("x"),
            lambda d=d: (d / "a.txt").write_text("changed"),
            lambda d=d: os.unlink(d / "a.txt"),
            lambda d=d: os.mkdir(d / "sub"),
        ):
            with pytest.raises(OSError) as e:
                attempt()
            assert e.value.errno == errno.EROFS, name
        assert (d / "a.txt").read_text() == "kept"
    assert osfs("bucket", "rm", mirror, "--server", nats_url).returncode == 0


def test_metrics_port_in_use_is_a_one_line_error(tmp_path: Path, nats_url: str):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = osfs("mount", str(mnt), "--server", nats_url, "--metrics-port", str(port))
    assert res.returncode == 1
    assert res.stderr.strip() == f"osfs: cannot serve metrics on 127.0.0.1:{port}: Address already in use"
    assert not os.path.ismount(mnt)


def test_disk_cache_serves_a_second_mount(mount_factory, nats_url: str, bucket_name: str, tmp_path: Path):
    """A file read through one mount is read from the disk cache by the next one (same
    --disk-cache), with no chunk fetched from the server; a second mount cannot share it."""
    data = os.urandom(3 * 1024 * 1024 + 5)
    cache = tmp_path / "diskcache"
    m = mount_factory("--disk-cache", str(cache), "--disk-cache-size", "64M")
    (m.path / bucket_name).mkdir()
    (m.path / bucket_name / "f.bin").write_bytes(data)
    m2 = mount_factory()
    assert (m2.path / bucket_name / "f.bin").read_bytes() == data  # another mount: no cache
    assert (m.path / bucket_name / "f.bin").read_bytes() == data  # fills the disk cache
    deadline = time.monotonic() + 20
    while _stats(m.path)["disk_cache_bytes"] < len(data) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _stats(m.path)["disk_cache_bytes"] == len(data)
    (tmp_path / "other").mkdir()
    other = ["--foreground", "--server", nats_url, "--disk-cache", str(cache)]
    res = subprocess.run(
        osfs_cmd("mount", str(tmp_path / "other"), *other),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0 and "in use by another mount" in res.stderr, res.stderr
    m.unmount()
    m3 = mount_factory("--disk-cache", str(cache))
    assert (m3.path / bucket_name / "f.bin").read_bytes() == data
    stats = _stats(m3.path)
    assert stats["disk_cache_hits"] >= 20 and stats["chunk_fetches"] == 0, stats
    assert stats["digests_verified"] == 1, stats


def _stats(mountpoint: Path) -> dict:
    return json.loads(os.getxattr(mountpoint, "user.osfs.stats"))
