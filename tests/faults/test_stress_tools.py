"""Stress through the mount with tools nobody here wrote (Debian packages fio, stress-ng,
dbench), each for a bounded time. Anything they flag is a bug, except the operations listed
as unsupported in SEMANTICS.md ("Durability"), which are exercised here only to check that
they fail cleanly. (stress-ng's getdent is left out: it walks /proc, /dev, /tmp and /sys
rather than its temp path, so it would test every mount on the machine.)"""

from __future__ import annotations

import os
import subprocess

import pytest
from faultkit import live_metas, peer, requires_fuse, store_call, wait_for
from mountkit import needs_program

from osfs.store.types import BucketConfig

pytestmark = [pytest.mark.mount, requires_fuse]


@pytest.fixture
def workdir(mounts, nats_url, bucket_name):
    store_call(nats_url, lambda s: s.create_bucket(BucketConfig(bucket=bucket_name)))
    m = mounts()
    d = m.path / bucket_name / "work"
    d.mkdir()
    yield m, d
    assert m.proc.poll() is None, m.log[-3000:]


def _run(cmd: list[str], timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@needs_program("fio")
def test_fio_random_io_with_crc32c_verify(workdir):
    m, d = workdir
    common = [
        "--directory",
        str(d),
        "--bs=4k",
        "--fallocate=none",
        "--verify=crc32c",
        "--verify_state_save=0",
        "--group_reporting",
    ]
    jobs = [
        # random writes, verified in the same run and again after close by a fresh reader
        ["--name=randw", "--size=8M", "--rw=randwrite", "--ioengine=psync", "--numjobs=2", "--end_fsync=1"],
        ["--name=randw", "--size=8M", "--rw=randwrite", "--ioengine=psync", "--numjobs=2", "--verify_only"],
        # mixed random I/O, queued (libaio) and through a shared writable mmap
        ["--name=aio", "--size=4M", "--rw=randrw", "--ioengine=libaio", "--iodepth=8"],
        ["--name=mmap", "--size=2M", "--rw=randwrite", "--ioengine=mmap"],
        ["--name=seq", "--size=16M", "--bs=1M", "--rw=write", "--ioengine=psync", "--verify_backlog=4"],
    ]
    for job in jobs:
        res = _run(["fio", *common, *job])
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-3000:] + m.log[-2000:]
        assert "err= 0" in out, out[-3000:]
        flagged = [ln for ln in out.splitlines() if "verify" in ln.lower() and ("fail" in ln or "bad" in ln)]
        assert not flagged, "\n".join(flagged[:20])
    sizes = sorted(os.path.getsize(d / f) for f in os.listdir(d))
    assert sizes and all(s > 0 for s in sizes)


STRESSORS_CLEAN = [
    "--hdd", "2", "--hdd-bytes", "4M",
    "--seek", "1", "--seek-size", "4M",
    "--dentry", "1", "--dentries", "64",
    "--dir", "1", "--dir-dirs", "64",
    "--rename", "1",
    "--chmod", "1",
    "--fstat", "1",
    "--utime", "1",
    "--iomix", "1", "--iomix-bytes", "1M",
    "--readahead", "1", "--readahead-bytes", "2M",
    "--mmap", "1", "--mmap-file", "--mmap-bytes", "1M",
    "--flock", "1",
    "--lockf", "1",
    "--open", "1",
]  # fmt: skip


@needs_program("stress-ng")
def test_stress_ng_filesystem_stressors(workdir):
    m, d = workdir
    res = _run(["stress-ng", *STRESSORS_CLEAN, "--temp-path", str(d), "--timeout", "12s", "--verify"], 120)
    out = res.stdout + res.stderr
    fails = [ln for ln in out.splitlines() if " fail: " in ln or " error: " in ln]
    assert res.returncode == 0 and not fails, "\n".join(fails[:20]) + "\n" + out[-1500:] + m.log[-2000:]
    assert "successful run completed" in out


@needs_program("stress-ng")
@pytest.mark.parametrize(
    "stressor",
    [
        pytest.param(
            ["--hdd", "1", "--hdd-opts", "wr-rnd,rd-rnd,fsync,utimes", "--hdd-bytes", "2M"],
            id="hdd-opts",
        ),
        pytest.param(["--fallocate", "1", "--fallocate-bytes", "1M"], id="fallocate"),
        pytest.param(["--sync-file", "1", "--sync-file-bytes", "1M"], id="sync-file"),
        pytest.param(["--filename", "1"], id="filename"),
        pytest.param(["--symlink", "1"], id="symlink"),
    ],
)
def test_stress_ng_more_stressors(workdir, stressor):
    """Stressors that keep files open after unlinking and truncating them, odd names, links."""
    m, d = workdir
    res = _run(["stress-ng", *stressor, "--temp-path", str(d), "--timeout", "4s", "--verify"], 60)
    out = res.stdout + res.stderr
    fails = [ln for ln in out.splitlines() if " fail: " in ln or " error: " in ln]
    assert res.returncode == 0 and not fails, "\n".join(fails[:20]) + "\n" + m.log[-2000:]


@needs_program("dbench")
def test_dbench(workdir, nats_url, bucket_name):
    _m, d = workdir
    loadfile = "/usr/share/dbench/client.txt"
    res = _run(["dbench", "-D", str(d), "-t", "10", "2", "-c", loadfile], 120)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "Throughput" in out
    bad = [ln for ln in out.splitlines() if "failed" in ln.lower() or "ERROR" in ln]
    assert not bad, "\n".join(bad[:20])
    # dbench deletes its files at the end (it keeps its directories, as on a local disk):
    # no file may be left behind in the mount or in the store
    assert [p for p in d.rglob("*") if not p.is_dir()] == []

    def files_left() -> list[str]:
        names = peer(nats_url, lambda nc, js: live_metas(js, bucket_name))
        return [n for n in names if "/clients/" in n and not n.endswith("/")]

    assert wait_for(lambda: files_left() == [], 20), files_left()[:20]
