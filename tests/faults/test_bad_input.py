"""Bad input through a real mount: each refusal has its errno and one log line, and never
publishes anything partial. Other clients' data is written with nats-py."""

from __future__ import annotations

import errno
import json
import os
import subprocess

import nats.js.api
import pytest
from faultkit import (
    chunk_subjects,
    live_metas,
    meta_subject,
    os_error,
    peer,
    raw_object,
    requires_fuse,
    store_call,
    wait_for,
)

from osfs.embedded import EmbeddedServer
from osfs.store.types import BucketConfig, StreamSource

pytestmark = [pytest.mark.mount, requires_fuse]

KIB = 1024
MIB = 1024 * 1024


def _write(path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _make_bucket(url: str, bucket: str, **kw) -> None:
    store_call(url, lambda s: s.create_bucket(BucketConfig(bucket=bucket, **kw)))


def _nats_put(url: str, bucket: str, name: str, data: bytes, headers: dict | None = None) -> str:
    async def put(nc, js):
        try:
            obs = await js.object_store(bucket)
        except Exception:
            obs = await js.create_object_store(bucket)
        meta = nats.js.api.ObjectMeta(name=name, headers=headers) if headers else None
        info = await obs.put(name, data, meta=meta)
        return info.nuid

    return peer(url, put)


def test_invalid_bucket_name(mounts):
    m = mounts()
    assert os_error(lambda: os.mkdir(m.path / "no.dots.here")) == errno.EINVAL
    assert os_error(lambda: os.mkdir(m.path / ("b" * 300))) in (errno.EINVAL, errno.ENAMETOOLONG)
    assert "not a valid bucket name" in m.log
    assert not (m.path / "no.dots.here").exists()


def test_component_longer_than_255_bytes(mounts, bucket_name, nats_url):
    _make_bucket(nats_url, bucket_name)
    m = mounts()
    b = m.path / bucket_name
    assert os_error(lambda: _write(b / ("x" * 256), b"data")) == errno.ENAMETOOLONG
    assert os_error(lambda: os.mkdir(b / ("é" * 128))) == errno.ENAMETOOLONG  # 256 bytes
    assert "longer than 255 bytes" in m.log
    _write(b / ("y" * 255), b"ok")  # the limit itself is fine
    assert (b / ("y" * 255)).read_bytes() == b"ok"
    assert sorted(os.listdir(b)) == ["y" * 255]


def test_object_over_max_object_size_is_efbig_and_publishes_nothing(mounts, bucket_name, nats_url):
    m = mounts("--bucket-max-object-size", "1M")
    b = m.path / bucket_name
    os.mkdir(b)
    _write(b / "f", b"version one")
    before = peer(nats_url, lambda nc, js: chunk_subjects(js, bucket_name))
    big = os.urandom(3 * MIB)
    err = os_error(lambda: _write(b / "f", big))
    assert err == errno.EFBIG
    err_new = os_error(lambda: _write(b / "new", big))
    assert err_new == errno.EFBIG
    assert "TooLarge" in m.log and "max object size" in m.log
    # nothing published: the old version is intact, no new name, no chunks left behind
    assert (b / "f").read_bytes() == b"version one"
    metas = peer(nats_url, lambda nc, js: live_metas(js, bucket_name))
    assert sorted(metas) == ["f"]
    assert wait_for(lambda: peer(nats_url, lambda nc, js: chunk_subjects(js, bucket_name)) == before)
    assert "new" not in os.listdir(b)


def test_bucket_full_is_enospc_and_keeps_previous_version(mounts, bucket_name, nats_url):
    _make_bucket(nats_url, bucket_name, max_bytes=1 * MIB)
    m = mounts()
    b = m.path / bucket_name
    _write(b / "f", b"small version")
    big = os.urandom(2 * MIB)
    assert os_error(lambda: _write(b / "f", big)) == errno.ENOSPC
    assert "NoSpace" in m.log

    async def check(nc, js):
        obs = await js.object_store(bucket_name)
        return (await obs.get("f")).data, await chunk_subjects(js, bucket_name)

    data, chunks = peer(nats_url, check)
    assert data == b"small version"
    assert list(chunks.values()) == [1]  # only the intact version's one chunk


def test_failed_upload_is_not_shown_by_the_mount(mounts, bucket_name, nats_url):
    _make_bucket(nats_url, bucket_name, max_bytes=1 * MIB)
    m = mounts()
    b = m.path / bucket_name
    _write(b / "f", b"small version")
    assert os_error(lambda: _write(b / "f", os.urandom(2 * MIB))) == errno.ENOSPC
    assert os.stat(b / "f").st_size == len(b"small version")
    assert (b / "f").read_bytes() == b"small version"


def test_sealed_bucket_is_read_only(mounts, bucket_name, nats_url):
    _nats_put(nats_url, bucket_name, "kept.txt", b"sealed content")
    store_call(nats_url, lambda s: s.seal_bucket(bucket_name))
    m = mounts()
    b = m.path / bucket_name
    assert (b / "kept.txt").read_bytes() == b"sealed content"
    assert os_error(lambda: _write(b / "new.txt", b"x")) == errno.EROFS
    assert os_error(lambda: _write(b / "kept.txt", b"x")) == errno.EROFS
    assert os_error(lambda: os.unlink(b / "kept.txt")) == errno.EROFS
    assert os_error(lambda: os.mkdir(b / "d")) == errno.EROFS
    assert "Sealed" in m.log
    assert (b / "kept.txt").read_bytes() == b"sealed content"
    assert sorted(os.listdir(b)) == ["kept.txt"]


def test_mirror_bucket_is_read_only(mounts, bucket_name, nats_url):
    src, mirror = bucket_name + "_src", bucket_name + "_mir"
    _nats_put(nats_url, src, "orig.txt", b"mirrored")
    _make_bucket(nats_url, mirror, mirror=StreamSource(name=src))
    m = mounts()
    b = m.path / mirror
    assert wait_for(lambda: (b / "orig.txt").read_bytes() == b"mirrored", 20)
    assert os_error(lambda: _write(b / "new.txt", b"x")) == errno.EROFS
    assert os_error(lambda: _write(b / "orig.txt", b"x")) == errno.EROFS
    assert os_error(lambda: os.unlink(b / "orig.txt")) == errno.EROFS
    assert "mirror" in m.log
    assert (b / "orig.txt").read_bytes() == b"mirrored"


def _tamper(nats_url: str, bucket: str, name: str, how: str) -> str:
    """Change the chunks of ``bucket/name`` behind its back; return the nuid."""

    async def run(nc, js):
        obs = await js.object_store(bucket)
        info = await obs.get_info(name)
        subject = f"$O.{bucket}.C.{info.nuid}"
        stream = f"OBJ_{bucket}"
        if how == "missing":
            await js.purge_stream(stream, subject=subject)
        elif how == "extra":
            await js.publish(subject, b"an extra chunk nobody wrote")
        elif how == "flipped":
            chunks = []
            seq = 0
            for _ in range(info.chunks):
                msg = await js.get_msg(stream, seq=seq + 1, next=True, subject=subject)
                seq = msg.seq
                chunks.append(bytearray(msg.data))
            chunks[1][10] ^= 0xFF  # same length, different bytes
            await js.purge_stream(stream, subject=subject)
            for c in chunks:
                await js.publish(subject, bytes(c))
        return info.nuid

    return peer(nats_url, run)


def _cat_fails(path) -> subprocess.CompletedProcess:
    return subprocess.run(["cat", str(path)], capture_output=True)


@pytest.mark.parametrize("how", ["missing", "extra"])
def test_damaged_chunks_are_eio_with_a_log_line(mounts, bucket_name, nats_url, how):
    data = os.urandom(300 * KIB)
    _nats_put(nats_url, bucket_name, "dir/damaged.bin", data)
    nuid = _tamper(nats_url, bucket_name, "dir/damaged.bin", how)
    m = mounts()
    p = m.path / bucket_name / "dir" / "damaged.bin"
    assert os.stat(p).st_size == len(data)
    res = _cat_fails(p)
    assert res.returncode != 0, "a damaged object was read without an error"
    assert b"Input/output error" in res.stderr
    assert res.stdout == data[: len(res.stdout)]
    log = m.log
    line = next((ln for ln in log.splitlines() if nuid in ln), "")
    assert "ERROR" in line and bucket_name in line and "dir/damaged.bin" in line, log[-2000:]


def test_digest_mismatch_on_read_is_eio(mounts, bucket_name, nats_url):
    data = os.urandom(300 * KIB)
    _nats_put(nats_url, bucket_name, "tampered.bin", data)
    nuid = _tamper(nats_url, bucket_name, "tampered.bin", "flipped")
    m = mounts()
    res = _cat_fails(m.path / bucket_name / "tampered.bin")
    assert res.stdout != data or res.returncode != 0
    assert res.returncode != 0, "tampered data was served without an error"
    assert b"Input/output error" in res.stderr
    assert any(nuid in ln and "digest" in ln and "ERROR" in ln for ln in m.log.splitlines())
    stats = json.loads(os.getxattr(m.path, "user.osfs.stats"))
    assert stats["digest_failures"] == 1 and stats["digests_verified"] == 0
    assert _cat_fails(m.path / bucket_name / "tampered.bin").returncode != 0  # and stays failing


def test_good_file_read_in_order_is_verified(mounts, bucket_name, nats_url):
    data = os.urandom(300 * KIB)
    _nats_put(nats_url, bucket_name, "good.bin", data)
    m = mounts()
    assert (m.path / bucket_name / "good.bin").read_bytes() == data
    stats = json.loads(os.getxattr(m.path, "user.osfs.stats"))
    assert stats["digests_verified"] == 1 and stats["digest_failures"] == 0


def test_malformed_and_quirky_metas_from_other_clients(mounts, bucket_name, nats_url):
    """Invalid metas are skipped with one warning; quirky but valid ones are listed; no
    sibling disappears and the mount keeps answering, for metas present at listing time and
    for ones arriving live through the watch."""
    _nats_put(nats_url, bucket_name, "dir/good.txt", b"good", headers={"Content-Type": "text/plain"})
    _nats_put(nats_url, bucket_name, "dir/deleted-by-py.txt", b"gone")

    async def quirks(nc, js):
        obs = await js.object_store(bucket_name)
        await obs.delete("dir/deleted-by-py.txt")  # nats-py marker: "mtime": "", "digest": ""
        stream_bucket = bucket_name

        async def raw(name: str, payload: bytes, rollup: bool = True) -> None:
            hdrs = {"Nats-Rollup": "sub"} if rollup else None
            await js.publish(meta_subject(stream_bucket, name), payload, headers=hdrs)

        # JS link(): no nuid/size/chunks/digest/mtime, the target's bucket, no rollup
        await raw(
            "dir/js-link",
            json.dumps(
                {
                    "name": "dir/js-link",
                    "bucket": bucket_name,
                    "options": {"link": {"bucket": bucket_name, "name": "dir/good.txt"}},
                }
            ).encode(),
            rollup=False,
        )
        # unknown fields, JS-style always-present description/deleted, revision leak
        await raw(
            "dir/unknown-fields",
            json.dumps(
                {
                    "name": "dir/unknown-fields",
                    "bucket": bucket_name,
                    "nuid": "X" * 22,
                    "size": 0,
                    "chunks": 0,
                    "mtime": "2026-01-02T03:04:05.678Z",
                    "digest": "",
                    "deleted": False,
                    "description": "",
                    "revision": 12,
                    "future": {"x": [1, 2]},
                }
            ).encode(),
        )
        await raw("dir/bad-json", b"{not json")
        await raw("dir/bad-type", json.dumps({"name": "dir/bad-type", "size": "12"}).encode())
        await raw("dir/not-object", b"[1, 2, 3]")

    peer(nats_url, quirks)
    m = mounts()
    d = m.path / bucket_name / "dir"
    assert sorted(os.listdir(d)) == ["good.txt", "js-link", "unknown-fields"]
    assert (d / "good.txt").read_bytes() == b"good"
    assert os.readlink(d / "js-link") == "good.txt"
    assert (d / "js-link").read_bytes() == b"good"
    assert os.stat(d / "unknown-fields").st_size == 0
    assert (d / "unknown-fields").read_bytes() == b""
    warnings = [ln for ln in m.log.splitlines() if "skipping malformed metas" in ln and bucket_name in ln]
    assert len(warnings) == 1, m.log[-3000:]
    assert "WARNING" in warnings[0]

    # a malformed meta arriving live replaces a good object's meta: that name is skipped,
    # the siblings stay, the mount keeps answering
    async def live(nc, js):
        await js.publish(
            meta_subject(bucket_name, "dir/good.txt"), b"\xff\xfe garbage", headers={"Nats-Rollup": "sub"}
        )
        obs = await js.object_store(bucket_name)
        await obs.put("dir/after.txt", b"after")

    peer(nats_url, live)
    assert wait_for(lambda: "after.txt" in os.listdir(d))
    assert "js-link" in os.listdir(d) and "unknown-fields" in os.listdir(d)
    assert (d / "after.txt").read_bytes() == b"after"
    assert m.proc.poll() is None
    os.listdir(m.path)


def test_symlink_to_outside_the_mount_is_a_symlink_object(mounts, bucket_name, nats_url):
    _nats_put(nats_url, bucket_name, "target.txt", b"t")
    m = mounts()
    b = m.path / bucket_name
    for name, text in (("abs", "/etc/passwd"), ("up", "../../../etc/passwd"), ("dangling", "missing.txt")):
        os.symlink(text, b / name)
        assert os.readlink(b / name) == text
    assert not (b / "dangling").exists()
    os.symlink("target.txt", b / "ok")
    assert (b / "ok").read_bytes() == b"t"
    assert sorted(os.listdir(b)) == ["abs", "dangling", "ok", "target.txt", "up"]


def test_unlink_while_open_for_reading(mounts, bucket_name, nats_url):
    data = os.urandom(4 * MIB)
    _nats_put(nats_url, bucket_name, "r.bin", data)
    m = mounts("--cache-size", "1M")
    b = m.path / bucket_name
    # fstat keeps working; the rest of the old version is either served or ESTALE/EIO
    with open(b / "r.bin", "rb", buffering=0) as f:
        head = f.read(128 * KIB)
        os.unlink(b / "r.bin")
        assert not (b / "r.bin").exists()
        assert os.fstat(f.fileno()).st_size == len(data)
        try:
            rest = f.read()
            assert head + rest == data, f"read {len(head + rest)} of {len(data)} bytes, no error"
        except OSError as exc:
            assert exc.errno in (errno.ESTALE, errno.EIO), exc
    assert head == data[: len(head)]
    assert m.proc.poll() is None


def test_unlink_while_open_for_writing(mounts, bucket_name, nats_url):
    """Writes after the unlink succeed, close succeeds, nothing is published or left over."""
    _make_bucket(nats_url, bucket_name)
    m = mounts()
    b = m.path / bucket_name
    with open(b / "w.bin", "wb") as f:
        f.write(os.urandom(300 * KIB))
        f.flush()
        os.unlink(b / "w.bin")
        assert os.fstat(f.fileno()).st_size == 300 * KIB
        f.write(b"b" * 1000)
    assert not (b / "w.bin").exists()
    metas = peer(nats_url, lambda nc, js: live_metas(js, bucket_name))
    assert metas == {}
    assert wait_for(lambda: peer(nats_url, lambda nc, js: chunk_subjects(js, bucket_name)) == {})
    assert os.listdir(b) == []
    assert m.proc.poll() is None


def test_truncate_of_an_open_unlinked_file(mounts, bucket_name, nats_url):
    """The temp-file idiom (open, unlink, use the descriptor) as stress-ng and many tools do."""
    _make_bucket(nats_url, bucket_name)
    m = mounts()
    p = m.path / bucket_name / "tmp"
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.unlink(p)
        os.write(fd, b"x" * 5000)
        os.ftruncate(fd, 100)
        assert os.fstat(fd).st_size == 100
        assert os.pread(fd, 200, 0) == b"x" * 100
    finally:
        os.close(fd)
    assert os.listdir(m.path / bucket_name) == []
    assert peer(nats_url, lambda nc, js: live_metas(js, bucket_name)) == {}


def test_truncate_of_an_open_unlinked_file_not_written_yet(mounts, bucket_name, nats_url):
    """As stress-ng's hdd and sync-file stressors do: create, unlink, ftruncate, then write.
    A stored file unlinked while open has lost its chunks: truncating it either works on the
    old content or fails with ESTALE, never silently zero-fills it."""
    _make_bucket(nats_url, bucket_name)
    m = mounts()
    b = m.path / bucket_name
    (b / "stored").write_bytes(b"stored before")
    fd_old = os.open(b / "stored", os.O_RDWR)
    fd_new = os.open(b / "new", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.unlink(b / "stored")
        os.unlink(b / "new")
        os.ftruncate(fd_new, 4096)
        assert os.fstat(fd_new).st_size == 4096
        os.pwrite(fd_new, b"abc", 10)
        assert os.pread(fd_new, 20, 0) == bytes(10) + b"abc" + bytes(7)
        try:
            os.ftruncate(fd_old, 4096)
        except OSError as exc:
            assert exc.errno == errno.ESTALE, exc
        else:
            assert os.pread(fd_old, 20, 0) == b"stored before" + bytes(7)
    finally:
        os.close(fd_old)
        os.close(fd_new)
    assert os.listdir(b) == []
    assert peer(nats_url, lambda nc, js: live_metas(js, bucket_name)) == {}


def test_account_storage_limit_is_enospc_and_keeps_previous_version(mounts, tmp_path):
    """An account whose JetStream file storage is capped: the write that does not fit fails
    with ENOSPC at close, the previous version stays, nothing of the new one is left over."""
    limited = EmbeddedServer(
        tmp_path / "limited",
        token="",
        extra_config=(
            "accounts { LIM: { jetstream: { max_file: 3MB, max_mem: 1MB }, "
            "users: [{ user: lim, password: lim }] } }\n"
            "no_auth_user: lim\n"
        ),
    ).start()
    try:
        m = mounts(servers=[limited.url])
        b = m.path / "limited"
        os.mkdir(b)
        _write(b / "f", b"fits" * 1000)
        st = os.statvfs(m.path)
        assert st.f_blocks * st.f_frsize <= 3 * MIB, "statfs does not show the account limit"
        assert os_error(lambda: _write(b / "f", os.urandom(4 * MIB))) == errno.ENOSPC
        assert "NoSpace" in m.log
        assert (b / "f").read_bytes() == b"fits" * 1000
        assert peer(limited.url, lambda nc, js: raw_object(js, "limited", "f")) == b"fits" * 1000
        assert wait_for(lambda: len(peer(limited.url, lambda nc, js: chunk_subjects(js, "limited"))) == 1)
        m.unmount()
    finally:
        limited.stop()
