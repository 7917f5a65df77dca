"""Shutdown with files open for writing: SIGTERM and ``osfs umount`` publish every dirty file;
SIGKILL loses at most the open files, never shows a partial object, and the next mount purges
the orphaned chunks."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading

import pytest
from faultkit import (
    chunk_subjects,
    kill_mount,
    live_metas,
    peer,
    raw_object,
    requires_fuse,
    store_call,
    wait_for,
)
from mountkit import osfs_cmd

from osfs.store.types import BucketConfig

pytestmark = [pytest.mark.mount, requires_fuse]

KIB = 1024
MIB = 1024 * 1024

#: Writes SIZE bytes of SEED-random data to PATH (optionally rewriting the first byte, which
#: makes the writer spool), keeps it open until GO exists, then closes it.
HOLDER = """
import os, random, sys, time
path, size, seed, rewrite, ready, go = sys.argv[1:7]
data = random.Random(int(seed)).randbytes(int(size))
f = open(path, "wb", buffering=0)
for i in range(0, len(data), 1 << 20):
    f.write(data[i:i + (1 << 20)])
if rewrite == "1":
    os.pwrite(f.fileno(), data[:1], 0)
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.02)
try:
    f.close()
except OSError as e:
    print("close failed:", e.errno)
"""


def _data(size: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(size)


def _sha(data: bytes | None) -> str:
    return hashlib.sha256(data or b"").hexdigest()


class Holders:
    """Processes holding files open for writing in a mount."""

    def __init__(self, tmp) -> None:
        self.tmp = tmp
        self.go = tmp / "go"
        self.procs: list[subprocess.Popen] = []

    def hold(self, path, size: int, seed: int, rewrite: bool = False) -> bytes:
        ready = self.tmp / f"ready-{seed}"
        cmd = [sys.executable, "-c", HOLDER, str(path), str(size), str(seed), "1" if rewrite else "0"]
        self.procs.append(subprocess.Popen([*cmd, str(ready), str(self.go)], stdout=subprocess.PIPE))
        assert wait_for(ready.exists, 60), "holder did not get its file written"
        return _data(size, seed)

    def release(self) -> None:
        self.go.touch()
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def holders(tmp_path):
    h = Holders(tmp_path)
    yield h
    h.release()


def _files(m, bucket: str, holders: Holders) -> dict[str, bytes]:
    b = m.path / bucket
    (b / "closed.txt").write_bytes(b"closed before")
    return {
        "closed.txt": b"closed before",
        "stream.bin": holders.hold(b / "stream.bin", 5 * MIB + 3, 1),
        "spooled.bin": holders.hold(b / "spooled.bin", 3 * MIB + 5, 2, rewrite=True),
        "small.txt": holders.hold(b / "small.txt", 100, 3),
    }


def _stored(url: str, bucket: str, name: str) -> bytes | None:
    return peer(url, lambda nc, js: raw_object(js, bucket, name))


def _make(url: str, bucket: str) -> None:
    store_call(url, lambda s: s.create_bucket(BucketConfig(bucket=bucket)))


def test_sigterm_publishes_every_dirty_file(mounts, nats_url, bucket_name, holders):
    _make(nats_url, bucket_name)
    m = mounts()
    files = _files(m, bucket_name, holders)
    assert sorted(peer(nats_url, lambda nc, js: live_metas(js, bucket_name))) == ["closed.txt"]
    os.kill(m.proc.pid, signal.SIGTERM)
    assert m.proc.wait(60) == 0, m.log[-3000:]
    assert not os.path.ismount(m.path)
    for name, data in files.items():
        assert _sha(_stored(nats_url, bucket_name, name)) == _sha(data), name
    assert "SIGTERM: unmounting" in m.log


def test_osfs_umount_of_a_busy_mount_is_refused_then_succeeds(mounts, nats_url, bucket_name, holders):
    _make(nats_url, bucket_name)
    m = mounts()
    files = _files(m, bucket_name, holders)
    busy = subprocess.run(osfs_cmd("umount", str(m.path)), capture_output=True, text=True)
    assert busy.returncode == 1 and "busy" in busy.stderr.lower(), busy.stderr
    assert os.path.ismount(m.path) and m.proc.poll() is None
    holders.release()  # every close publishes
    reaper = threading.Thread(target=m.proc.wait)  # the mount is our child: reap it
    reaper.start()
    done = subprocess.run(osfs_cmd("umount", str(m.path)), capture_output=True, text=True, timeout=90)
    reaper.join(60)
    assert done.returncode == 0, done.stderr
    assert m.proc.returncode == 0, m.log[-3000:]
    for name, data in files.items():
        assert _sha(_stored(nats_url, bucket_name, name)) == _sha(data), name


def test_osfs_umount_lazy_waits_for_open_files_and_publishes_them(mounts, nats_url, bucket_name, holders):
    """``umount --lazy`` detaches at once; the mount process lives on until the files still
    open are closed (each close publishes), then exits."""
    _make(nats_url, bucket_name)
    m = mounts()
    files = _files(m, bucket_name, holders)
    reaper = threading.Thread(target=m.proc.wait)  # the mount is our child: reap it
    reaper.start()
    lazy = subprocess.Popen(osfs_cmd("umount", "--lazy", str(m.path)), stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: not os.path.ismount(m.path), 30)
    holders.release()
    assert lazy.wait(90) == 0, lazy.stderr.read()
    reaper.join(60)
    assert m.proc.returncode == 0, m.log[-3000:]
    for name, data in files.items():
        assert _sha(_stored(nats_url, bucket_name, name)) == _sha(data), name
    assert all(p.stdout.read() == b"" for p in holders.procs), "a holder's close failed"


def _orphans(url: str, bucket: str) -> dict[str, int]:
    async def run(nc, js):
        chunks = await chunk_subjects(js, bucket)
        live = {f"$O.{bucket}.C.{m['nuid']}" for m in (await live_metas(js, bucket)).values()}
        return {s: n for s, n in chunks.items() if s not in live}

    return peer(url, run)


def _sigkill_with_open_files(mounts, nats_url, bucket, holders) -> dict[str, bytes]:
    _make(nats_url, bucket)
    m = mounts()
    files = _files(m, bucket, holders)
    kill_mount(m)
    holders.release()
    metas = peer(nats_url, lambda nc, js: live_metas(js, bucket))
    assert sorted(metas) == ["closed.txt"], "an object still open for writing became visible"
    assert _stored(nats_url, bucket, "closed.txt") == files["closed.txt"]
    return files


def test_sigkill_loses_only_open_files(mounts, nats_url, bucket_name, holders):
    files = _sigkill_with_open_files(mounts, nats_url, bucket_name, holders)
    m2 = mounts()
    b = m2.path / bucket_name
    assert sorted(os.listdir(b)) == ["closed.txt"]
    assert (b / "closed.txt").read_bytes() == files["closed.txt"]
    (b / "stream.bin").write_bytes(b"written again")
    assert _stored(nats_url, bucket_name, "stream.bin") == b"written again"


def test_next_mount_purges_orphaned_chunks(mounts, nats_url, bucket_name, holders):
    _sigkill_with_open_files(mounts, nats_url, bucket_name, holders)
    orphans = _orphans(nats_url, bucket_name)
    assert orphans, "the killed upload left no chunks to purge"
    m2 = mounts("--orphan-grace", "1h")  # the default grace protects them: too young
    os.listdir(m2.path / bucket_name)
    assert wait_for(lambda: "orphan sweep done" in m2.log, 20), m2.log[-3000:]
    assert _orphans(nats_url, bucket_name) == orphans
    m2.unmount()
    m3 = mounts("--orphan-grace", "0s")
    assert wait_for(lambda: _orphans(nats_url, bucket_name) == {}, 20), _orphans(nats_url, bucket_name)
    assert wait_for(lambda: "orphan sweep done" in m3.log, 20), m3.log[-3000:]
    assert f"bucket {bucket_name}: purged the orphaned chunks of {len(orphans)} " in m3.log
    b = m3.path / bucket_name
    assert sorted(os.listdir(b)) == ["closed.txt"]
    assert (b / "closed.txt").read_bytes() == b"closed before"
