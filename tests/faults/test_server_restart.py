"""The server is stopped (SIGKILL) and started again on the same port and store while files
are written and read through the mount.

``cp`` reads from a FIFO and ``cat`` writes into a pipe that the test feeds or drains, so
the fault always lands in the middle of the transfer. Afterwards: the mount is still
up; the transfer either completed with identical bytes or failed with EIO; nats-py never sees
a partial object; files closed before the fault read back identical.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import pytest
from faultkit import cat_with_fault, cp_with_fault, live_metas, peer, raw_object, requires_fuse, wait_for

pytestmark = [pytest.mark.mount, requires_fuse]

MIB = 1024 * 1024
BIG = 64 * MIB


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _outage(server, down: float = 2.0):
    """(fault, recover): kill the server; after ``down`` seconds of outage start it again."""

    def recover() -> None:
        time.sleep(down)  # the transfer runs into the dead server meanwhile
        server.start()

    return (lambda: server.stop(kill=True)), recover


def _object(url: str, bucket: str, name: str) -> bytes | None:
    return peer(url, lambda nc, js: raw_object(js, bucket, name))


def _before_fault(m, bucket: str) -> dict[str, bytes]:
    b = m.path / bucket
    os.mkdir(b)
    files = {
        "small.txt": b"closed before the fault",
        "one.bin": os.urandom(MIB),
        "five.bin": os.urandom(5 * MIB),
    }
    for name, data in files.items():
        (b / name).write_bytes(data)
    return files


def _after_fault(m, url: str, bucket: str, files: dict[str, bytes]) -> None:
    """The mount is up, serves what was closed before, and takes new writes again."""
    b = m.path / bucket
    assert m.proc.poll() is None, m.log[-3000:]
    assert wait_for(lambda: (b / "small.txt").read_bytes() == files["small.txt"], 30)
    for name, data in files.items():
        assert _sha((b / name).read_bytes()) == _sha(data), name
        assert _sha(_object(url, bucket, name) or b"") == _sha(data), name
    assert wait_for(lambda: (b / "after.txt").write_bytes(b"after the fault") is not None, 30)
    assert _object(url, bucket, "after.txt") == b"after the fault"


def _check_no_partial(url: str, bucket: str, name: str, expected: bytes) -> bytes | None:
    """nats-py sees either nothing or the whole, identical object under ``name``."""
    metas = peer(url, lambda nc, js: live_metas(js, bucket))
    if name not in metas:
        return None
    assert metas[name]["size"] == len(expected), metas[name]
    got = _object(url, bucket, name)
    assert got is not None and _sha(got) == _sha(expected)
    return got


def test_restart_while_cp_writes_a_large_file(own_server, mounts, bucket_name, tmp_path):
    m = mounts(servers=[own_server.url])
    files = _before_fault(m, bucket_name)
    data = os.urandom(BIG)
    dst = m.path / bucket_name / "big.bin"
    rc, err = cp_with_fault(dst, data, tmp_path, 16 * MIB, *_outage(own_server))
    print(f"cp exit {rc}: {err.strip()[-200:]}")
    assert own_server.running
    if rc == 0:
        assert _check_no_partial(own_server.url, bucket_name, "big.bin", data) is not None
        assert _sha(dst.read_bytes()) == _sha(data)
    else:
        assert "Input/output error" in err, err
        _check_no_partial(own_server.url, bucket_name, "big.bin", data)
    _after_fault(m, own_server.url, bucket_name, files)


def test_restart_while_cat_reads_a_large_file(own_server, mounts, bucket_name, tmp_path):
    m = mounts(servers=[own_server.url])
    files = _before_fault(m, bucket_name)
    data = os.urandom(BIG)
    (m.path / bucket_name / "big.bin").write_bytes(data)
    # a second mount reads it, so nothing of it is cached by the reading mount
    r = mounts("--cache-size", "8M", servers=[own_server.url])
    rc, got, err = cat_with_fault(r.path / bucket_name / "big.bin", 16 * MIB, *_outage(own_server))
    print(f"cat exit {rc}, {len(got)} bytes: {err.strip()[-200:]}")
    assert own_server.running
    if rc == 0:
        assert _sha(got) == _sha(data), f"read {len(got)} bytes, wrong content, no error"
    else:
        assert "Input/output error" in err, err
        assert got == data[: len(got)]
    assert _sha((r.path / bucket_name / "big.bin").read_bytes()) == _sha(data)
    _after_fault(r, own_server.url, bucket_name, files)
    _after_fault(m, own_server.url, bucket_name, files)


def test_server_down_fails_with_eio_and_the_mount_recovers(own_server, mounts, bucket_name, tmp_path):
    """While the server stays down, operations that need it fail with EIO (they do not hang);
    once it is back, the same mount works again."""
    m = mounts(servers=[own_server.url])
    files = _before_fault(m, bucket_name)
    b = m.path / bucket_name
    own_server.stop(kill=True)
    script = (
        "import sys\n"
        "p = sys.argv[1]\n"
        "try:\n"
        "    with open(p, 'wb') as f:\n"  # a create needs no server: close reports the upload
        "        f.write(b'x' * 300000)\n"
        "except OSError as e:\n"
        "    print(e.errno)\n"
        "    sys.exit(3)\n"
    )
    try:
        res = subprocess.run(
            [sys.executable, "-c", script, str(b / "during.bin")], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"a write against a dead server hung\n{m.log[-3000:]}")
    assert res.returncode == 3 and res.stdout.strip() == "5", (res.stdout, res.stderr)
    cat = subprocess.run(["cat", str(b / "five.bin")], capture_output=True, timeout=120)
    if cat.returncode != 0:
        assert b"Input/output error" in cat.stderr
    else:
        assert _sha(cat.stdout) == _sha(files["five.bin"])
    assert "unavailable" in m.log.lower()
    own_server.start()
    _after_fault(m, own_server.url, bucket_name, files)
    assert "during.bin" not in peer(own_server.url, lambda nc, js: live_metas(js, bucket_name))
