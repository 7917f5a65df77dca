"""Extended attributes through a real mount: object meta and bucket status."""

from __future__ import annotations

import errno
import os

import pytest
from mountkit import requires_fuse
from semkit import peer, raw_meta, sh, stream_state

pytestmark = [pytest.mark.mount, requires_fuse]


def _getfattr_d(path) -> dict[str, str]:
    out = sh("getfattr", "-d", "--absolute-names", str(path)).stdout
    pairs = {}
    for line in out.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            pairs[k] = v.strip('"')
    return pairs


def test_setfattr_changes_metadata_without_reupload(mnt, nats_url, bucket_name):
    b = mnt.path / bucket_name
    b.mkdir()
    f = b / "doc.txt"
    f.write_bytes(b"x" * 300_000)
    before = {n: os.getxattr(f, n).decode() for n in ("user.nuid", "user.chunks", "user.digest")}
    assert not set(before) & set(_getfattr_d(f))  # computed: readable, not listed
    nuid = before["user.nuid"]
    assert before["user.chunks"] == "3"
    assert before["user.digest"].startswith("SHA-256=")
    last_seq, chunks = stream_state(nats_url, bucket_name)

    sh("setfattr", "-n", "user.description", "-v", "quarterly report", str(f))
    sh("setfattr", "-n", "user.mime", "-v", "text/plain", str(f))
    sh("setfattr", "-n", "user.header.X-Team", "-v", "ops", str(f))
    sh("setfattr", "-n", "user.meta.owner", "-v", "alice", str(f))
    attrs = _getfattr_d(f)
    assert attrs["user.description"] == "quarterly report"
    assert attrs["user.mime"] == "text/plain"
    assert attrs["user.header.X-Team"] == "ops"
    assert attrs["user.meta.owner"] == "alice"
    assert os.getxattr(f, "user.nuid").decode() == nuid
    assert os.getxattr(f, "user.description") == b"quarterly report"

    # no chunk was published or removed: only metas changed
    new_seq, new_chunks = stream_state(nats_url, bucket_name)
    assert new_chunks == chunks
    assert new_seq == last_seq + 4  # four meta updates, nothing else
    meta = raw_meta(nats_url, bucket_name, "doc.txt")
    assert meta["nuid"] == nuid
    assert meta["description"] == "quarterly report"
    assert meta["headers"]["X-Team"] == ["ops"]
    assert meta["metadata"]["owner"] == "alice"

    async def get(nc, js):
        obs = await js.object_store(bucket_name)
        res = await obs.get("doc.txt")
        return res.data, res.info.description

    assert peer(nats_url, get) == (b"x" * 300_000, "quarterly report")

    sh("setfattr", "-x", "user.meta.owner", str(f))
    assert "user.meta.owner" not in _getfattr_d(f)
    with pytest.raises(OSError) as exc:
        os.getxattr(f, "user.meta.owner")
    assert exc.value.errno == errno.ENODATA


def test_read_only_attributes_refuse_writes(mnt, bucket_name):
    b = mnt.path / bucket_name
    b.mkdir()
    f = b / "a.bin"
    f.write_bytes(b"abc")
    for name in ("user.nuid", "user.digest", "user.chunks"):
        os.setxattr(f, name, os.getxattr(f, name))  # a copy of the same value is accepted
        with pytest.raises(OSError) as exc:
            os.setxattr(f, name, b"x")
        assert exc.value.errno == errno.EPERM, name
        with pytest.raises(OSError) as exc:
            os.removexattr(f, name)
        assert exc.value.errno == errno.EPERM, name
    with pytest.raises(OSError) as exc:
        os.setxattr(f, "user.meta.osfs-mode", b"777")
    assert exc.value.errno == errno.EPERM
    with pytest.raises(OSError) as exc:
        os.setxattr(f, "trusted.unknown", b"x")
    assert exc.value.errno in (errno.ENOTSUP, errno.EPERM)
    res = sh("setfattr", "-n", "user.nuid", "-v", "x", str(f), check=False)
    assert res.returncode != 0 and "not permitted" in res.stderr


def test_bucket_directory_exposes_status(mnt, nats_url, bucket_name):
    async def make(nc, js):
        from nats.js.api import ObjectStoreConfig

        await js.create_object_store(
            bucket_name, config=ObjectStoreConfig(description="team files", ttl=3600.0)
        )
        obs = await js.object_store(bucket_name)
        await obs.put("x", b"12345")

    peer(nats_url, make)
    b = mnt.path / bucket_name
    # computed, so read by name and not listed: rsync -X and cp -a do not copy them
    assert not any(k.startswith("user.bucket.") for k in os.listxattr(b))
    names = ["description", "ttl", "storage", "replicas", "compression", "sealed", "bytes"]
    attrs = {f"user.bucket.{n}": os.getxattr(b, f"user.bucket.{n}").decode() for n in names}
    assert attrs["user.bucket.description"] == "team files"
    assert attrs["user.bucket.ttl"] == "3600"
    assert attrs["user.bucket.storage"] == "file"
    assert attrs["user.bucket.replicas"] == "1"
    assert attrs["user.bucket.compression"] == "none"
    assert attrs["user.bucket.sealed"] == "false"
    assert int(attrs["user.bucket.bytes"]) > 5
    assert os.getxattr(b, "user.bucket.storage") == b"file"
    with pytest.raises(OSError) as exc:
        os.setxattr(b, "user.bucket.description", b"other")
    assert exc.value.errno == errno.EPERM
    os.setxattr(b, "user.bucket.description", b"team files")  # the same value: accepted
    # a directory inside a bucket has no bucket status
    (b / "sub").mkdir()
    with pytest.raises(OSError) as exc:
        os.getxattr(b / "sub", "user.bucket.storage")
    assert exc.value.errno == errno.ENODATA
