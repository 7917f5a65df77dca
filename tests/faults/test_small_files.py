"""Small files through a real mount: the chunk and the meta of a new one-chunk file go out
back to back, and what that must never change: a refused chunk's error comes back from
``close`` with nothing visible to anyone, and what the mount shows of a file it just wrote
is what another client sees."""

from __future__ import annotations

import errno
import os

import pytest
from faultkit import chunk_subjects, live_metas, os_error, peer, requires_fuse, store_call, wait_for

from osfs.store.types import BucketConfig

pytestmark = [pytest.mark.mount, requires_fuse]

KIB = 1024


def _write(path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def test_refused_chunk_fails_close_and_publishes_nothing(mounts, bucket_name, nats_url):
    # room for a meta but not for a 4 KiB chunk: the server refuses the chunk, and the meta
    # sent right behind it must not be stored either
    store_call(nats_url, lambda s: s.create_bucket(BucketConfig(bucket=bucket_name, max_bytes=2 * KIB)))
    m = mounts()
    b = m.path / bucket_name
    assert os_error(lambda: _write(b / "f", os.urandom(4 * KIB))) == errno.ENOSPC
    assert "NoSpace" in m.log
    assert peer(nats_url, lambda nc, js: live_metas(js, bucket_name)) == {}
    assert peer(nats_url, lambda nc, js: chunk_subjects(js, bucket_name)) == {}
    assert "f" not in os.listdir(b)
    # a file that fits is written the same way
    _write(b / "g", b"fits")
    assert (b / "g").read_bytes() == b"fits"


def test_new_files_show_what_another_client_sees(mounts, bucket_name, nats_url):
    m = mounts()
    os.mkdir(m.path / bucket_name)
    files = {f"d/f{i}": os.urandom(i * 1000 + 1) for i in range(20)}
    os.mkdir(m.path / bucket_name / "d")
    for name, data in files.items():
        _write(m.path / bucket_name / name, data)
    mine = {name: os.stat(m.path / bucket_name / name) for name in files}
    other = mounts()
    for name, data in files.items():
        theirs = os.stat(other.path / bucket_name / name)
        assert (theirs.st_size, theirs.st_mode, theirs.st_uid, theirs.st_gid) == (
            mine[name].st_size,
            mine[name].st_mode,
            mine[name].st_uid,
            mine[name].st_gid,
        )
        assert (other.path / bucket_name / name).read_bytes() == data
    metas = peer(nats_url, lambda nc, js: live_metas(js, bucket_name))
    assert {meta["name"] for meta in metas.values()} >= set(files)
    # a name deleted and written again (its subject holds a delete marker) is stored too
    os.unlink(m.path / bucket_name / "d/f3")
    _write(m.path / bucket_name / "d/f3", b"again")
    assert wait_for(lambda: (other.path / bucket_name / "d/f3").read_bytes() == b"again")
