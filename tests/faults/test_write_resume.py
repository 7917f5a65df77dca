"""A stream whose server restarts in the middle of a file resumes on the same nuid and
publishes the exact content (real mount, own server)."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from faultkit import chunk_subjects, cp_with_fault, live_metas, peer, raw_object, requires_fuse

pytestmark = [pytest.mark.mount, requires_fuse]

MIB = 1024 * 1024


def test_a_stream_resumes_across_a_server_restart(own_server, mounts, bucket_name, tmp_path):
    m = mounts("--timeout", "2s", servers=[own_server.url])
    os.mkdir(m.path / bucket_name)
    data = os.urandom(48 * MIB)

    def recover() -> None:
        time.sleep(4.0)  # longer than the request timeout: the acks in flight time out
        own_server.start()

    rc, err = cp_with_fault(
        m.path / bucket_name / "big.bin", data, tmp_path, 16 * MIB, lambda: own_server.stop(kill=True), recover
    )
    assert rc == 0, err + m.log[-3000:]
    assert "stream resumed" in m.log, m.log[-3000:]
    got = peer(own_server.url, lambda nc, js: raw_object(js, bucket_name, "big.bin"))
    assert got is not None and hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    metas = peer(own_server.url, lambda nc, js: live_metas(js, bucket_name))
    chunks = peer(own_server.url, lambda nc, js: chunk_subjects(js, bucket_name))
    assert chunks == {f"$O.{bucket_name}.C.{metas['big.bin']['nuid']}": metas["big.bin"]["chunks"]}
    assert hashlib.sha256((m.path / bucket_name / "big.bin").read_bytes()).digest() == hashlib.sha256(data).digest()
