"""A stream whose server restarts in the middle of a file resumes on the same nuid and
publishes the exact content (real mount, own server)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import pytest
from faultkit import chunk_subjects, live_metas, peer, raw_object, requires_fuse

pytestmark = [pytest.mark.mount, requires_fuse]

MIB = 1024 * 1024


WRITER = """
import os, sys
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
half = 16 * 1024 * 1024
for off in range(0, len(data), 1024 * 1024):
    if off == half:
        print("half", flush=True)
        sys.stdin.readline()
    os.write(fd, data[off : off + 1024 * 1024])
os.close(fd)
"""


def test_a_stream_resumes_across_a_server_restart(own_server, mounts, bucket_name, tmp_path):
    m = mounts("--timeout", "2s", servers=[own_server.url])
    os.mkdir(m.path / bucket_name)
    path = m.path / bucket_name / "big.bin"
    data = os.urandom(48 * MIB)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(src), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "half"
        own_server.stop(kill=True)
        writer.stdin.write("go\n")  # the second half streams into the outage
        writer.stdin.flush()
        time.sleep(4.0)  # longer than the request timeout: the acks in flight time out
        own_server.start()
        assert writer.wait(120) == 0, writer.stderr.read() + m.log[-3000:]
    finally:
        if writer.poll() is None:
            writer.kill()
    assert "stream resumed" in m.log, m.log[-3000:]
    want = hashlib.sha256(data).digest()
    got = peer(own_server.url, lambda nc, js: raw_object(js, bucket_name, "big.bin"))
    assert got is not None and hashlib.sha256(got).digest() == want
    metas = peer(own_server.url, lambda nc, js: live_metas(js, bucket_name))
    chunks = peer(own_server.url, lambda nc, js: chunk_subjects(js, bucket_name))
    assert chunks == {f"$O.{bucket_name}.C.{metas['big.bin']['nuid']}": metas["big.bin"]["chunks"]}
    assert hashlib.sha256(path.read_bytes()).digest() == want
