"""Two osfs processes mounting the same buckets: concurrent writers, deletes, and files
replaced or deleted underneath an open handle."""

from __future__ import annotations

import errno
import hashlib
import os
import threading

import pytest
from faultkit import chunk_subjects, live_metas, peer, raw_object, requires_fuse, store_call, wait_for

from osfs.store.types import BucketConfig

pytestmark = [pytest.mark.mount, requires_fuse]

KIB = 1024
MIB = 1024 * 1024


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def pair(mounts, nats_url, bucket_name):
    store_call(nats_url, lambda s: s.create_bucket(BucketConfig(bucket=bucket_name)))
    a, b = mounts(name="a"), mounts("--cache-size", "1M", name="b")
    return a, b, a.path / bucket_name, b.path / bucket_name


def _read_or_none(path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def test_concurrent_writers_of_one_file_end_with_one_writers_content(pair, nats_url, bucket_name):
    a, b, da, db = pair
    for rnd, size in enumerate([300 * KIB, 2 * MIB, 5 * MIB]):
        contents = [os.urandom(size), os.urandom(size + 7 * KIB)]
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def write(path, data, start=start, errors=errors):
            try:
                start.wait()
                with open(path, "wb") as f:
                    for i in range(0, len(data), 64 * KIB):
                        f.write(data[i : i + 64 * KIB])
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=write, args=(da / "shared.bin", contents[0])),
            threading.Thread(target=write, args=(db / "shared.bin", contents[1])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        stored = peer(nats_url, lambda nc, js: raw_object(js, bucket_name, "shared.bin"))
        assert stored is not None
        assert _sha(stored) in {_sha(c) for c in contents}, f"round {rnd}: a mix of both writers"
        want = _sha(stored)
        for d in (da, db):
            assert wait_for(
                lambda d=d, want=want: _sha(_read_or_none(d / "shared.bin") or b"") == want, 20
            ), f"round {rnd}: {d} does not converge on the stored content"

    assert a.proc.poll() is None and b.proc.poll() is None


def test_concurrent_commits_leave_no_orphan_chunks(nats_url, bucket_name):
    import trio

    from osfs.store.types import ObjectMeta

    async def race(store):
        await store.create_bucket(BucketConfig(bucket=bucket_name))
        await store.put(bucket_name, ObjectMeta("f"), b"v0")
        for rnd in range(5):
            ups = [await store.begin_put(bucket_name, ObjectMeta("f")) for _ in range(2)]
            for i, up in enumerate(ups):
                await up.write(f"round {rnd} writer {i}".encode() * 1000)
            async with trio.open_nursery() as nursery:
                for up in ups:
                    nursery.start_soon(up.commit)

    store_call(nats_url, race)
    chunks = peer(nats_url, lambda nc, js: chunk_subjects(js, bucket_name))
    live = peer(nats_url, lambda nc, js: live_metas(js, bucket_name))
    assert list(chunks) == [f"$O.{bucket_name}.C.{live['f']['nuid']}"], f"orphaned chunk subjects: {chunks}"


def test_delete_in_one_mount_is_seen_in_the_other(pair, nats_url, bucket_name):
    _a, _b, da, db = pair
    (da / "sub").mkdir()
    (da / "sub" / "f.txt").write_bytes(b"from a")
    assert wait_for(lambda: _read_or_none(db / "sub" / "f.txt") == b"from a")
    os.unlink(da / "sub" / "f.txt")
    assert wait_for(lambda: "f.txt" not in os.listdir(db / "sub"))
    assert wait_for(lambda: not (db / "sub" / "f.txt").exists())
    (db / "g.txt").write_bytes(b"from b")
    assert wait_for(lambda: _read_or_none(da / "g.txt") == b"from b")
    os.unlink(db / "g.txt")
    assert wait_for(lambda: not (da / "g.txt").exists())
    assert "g.txt" not in peer(nats_url, lambda nc, js: live_metas(js, bucket_name))


def _read_rest(f, head: bytes, data: bytes) -> str:
    """Read on after the file changed underneath: 'old' if the old version was served whole,
    else the errno name; anything else (wrong bytes, a silent short read) fails."""
    try:
        rest = f.read()
    except OSError as exc:
        assert exc.errno in (errno.ESTALE, errno.EIO), exc
        return errno.errorcode[exc.errno]
    got = head + rest
    prefix = got == data[: len(got)]
    assert len(got) == len(data), f"silent short read: {len(got)} of {len(data)} bytes (old prefix: {prefix})"
    assert _sha(got) == _sha(data), "wrong bytes after the file was replaced"
    return "old"


def test_open_file_replaced_underneath(pair):
    a, b, da, db = pair
    old, new = os.urandom(4 * MIB), os.urandom(3 * MIB)
    (da / "r.bin").write_bytes(old)
    assert wait_for(lambda: _read_or_none(db / "r.bin") is not None)
    with open(db / "r.bin", "rb", buffering=0) as f:
        head = f.read(128 * KIB)
        (da / "r.bin").write_bytes(new)
        # the reader's mount has seen the new version before the reader reads on
        assert wait_for(lambda: os.stat(db / "r.bin").st_size == len(new))
        outcome = _read_rest(f, head, old)
    print(f"reader of a replaced file: {outcome}")
    assert wait_for(lambda: _sha(_read_or_none(db / "r.bin") or b"") == _sha(new))
    assert a.proc.poll() is None and b.proc.poll() is None


def test_open_file_deleted_underneath(pair):
    _a, b, da, db = pair
    old = os.urandom(4 * MIB)
    (da / "d.bin").write_bytes(old)
    assert wait_for(lambda: _read_or_none(db / "d.bin") is not None)
    with open(db / "d.bin", "rb", buffering=0) as f:
        head = f.read(128 * KIB)
        os.unlink(da / "d.bin")
        assert wait_for(lambda: not (db / "d.bin").exists())
        outcome = _read_rest(f, head, old)
    print(f"reader of a deleted file: {outcome}")
    assert b.proc.poll() is None


def test_open_writer_when_the_file_is_deleted_or_replaced_underneath(pair, nats_url, bucket_name):
    """A writer in one mount keeps working when the other mount deletes or replaces the file;
    its close publishes its own content (last writer wins), nothing crashes."""
    a, b, da, db = pair
    (da / "w.bin").write_bytes(b"original")
    assert wait_for(lambda: _read_or_none(db / "w.bin") == b"original")
    mine = os.urandom(600 * KIB)
    with open(db / "w.bin", "r+b") as f:
        f.write(mine[: 300 * KIB])
        f.flush()
        os.unlink(da / "w.bin")
        f.write(mine[300 * KIB :])
    stored = peer(nats_url, lambda nc, js: raw_object(js, bucket_name, "w.bin"))
    assert stored is None or _sha(stored) == _sha(mine)
    with open(db / "w2.bin", "wb") as f:
        f.write(b"x" * 1000)
        f.flush()
        (da / "w2.bin").write_bytes(b"replaced by a")
        f.write(b"y" * 1000)
    stored = peer(nats_url, lambda nc, js: raw_object(js, bucket_name, "w2.bin"))
    assert stored in (b"x" * 1000 + b"y" * 1000, b"replaced by a")
    for d in (da, db):
        assert wait_for(lambda d=d: _read_or_none(d / "w2.bin") == stored, 20)
    assert a.proc.poll() is None and b.proc.poll() is None
