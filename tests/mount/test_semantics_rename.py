"""Rename through a real mount: O(1) within a bucket, EXDEV across buckets."""

from __future__ import annotations

import errno
import os
import threading

import pytest
from mountkit import requires_fuse
from semkit import peer, sh, stream_state

pytestmark = [pytest.mark.mount, requires_fuse]

DATA = bytes(range(256)) * 1600  # 400 KiB: four chunks


def _names(nats_url, bucket):
    async def fn(nc, js):
        obs = await js.object_store(bucket)
        try:
            return sorted(i.name for i in await obs.list(ignore_deletes=True))
        except Exception as e:  # nats-py raises when the bucket holds no live object
            if "not found" in str(e).lower() or type(e).__name__ == "NotFoundError":
                return []
            raise

    return peer(nats_url, fn)


def test_mv_within_bucket_moves_the_meta_not_the_chunks(mnt, nats_url, bucket_name):
    b = mnt.path / bucket_name
    b.mkdir()
    (b / "big.bin").write_bytes(DATA)
    (b / "sub").mkdir()
    seq, chunks = stream_state(nats_url, bucket_name)
    assert sum(chunks.values()) == 4
    sh("mv", str(b / "big.bin"), str(b / "sub" / "moved.bin"))
    new_seq, new_chunks = stream_state(nats_url, bucket_name)
    assert new_chunks == chunks  # same chunk subject, same messages
    assert new_seq == seq + 1  # one message published: the meta under the new name
    assert (b / "sub" / "moved.bin").read_bytes() == DATA
    assert not (b / "big.bin").exists()
    assert _names(nats_url, bucket_name) == ["sub/", "sub/moved.bin"]


def _read_during_renames(mnt, nats_url, bucket_name):
    """Replace ``target`` 39 times by rename while a thread keeps reading it."""
    b = mnt.path / bucket_name
    b.mkdir()
    versions = [bytes([48 + i]) * (1000 + 37 * i) for i in range(40)]
    (b / "target").write_bytes(versions[0])
    seen: list[bytes] = []
    errors: list[OSError] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                with open(b / "target", "rb") as f:
                    seen.append(f.read())
            except OSError as e:
                errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i, data in enumerate(versions[1:], 1):
            (b / f"tmp{i}").write_bytes(data)
            os.rename(b / f"tmp{i}", b / "target")
    finally:
        stop.set()
        t.join()
    assert (b / "target").read_bytes() == versions[-1]
    assert _names(nats_url, bucket_name) == ["target"]
    _, chunks = stream_state(nats_url, bucket_name)
    assert sum(chunks.values()) == 1  # replaced versions' chunks were purged
    return versions, seen, errors


def test_rename_over_existing_never_hides_the_name(mnt, nats_url, bucket_name):
    versions, seen, errors = _read_during_renames(mnt, nats_url, bucket_name)
    # the kernel may resolve the name just before a rename and open the replaced inode:
    # it reads the old version, or gets ESTALE once that version's chunks are purged;
    # never ENOENT, and never bytes of two versions mixed
    assert all(e.errno == errno.ESTALE for e in errors), errors
    assert seen
    for s in seen:
        assert len(set(s)) <= 1, "bytes of two versions in one read"
        assert s == b"" or any(v.startswith(s) for v in versions)


def test_rename_over_existing_is_atomic_for_readers(mnt, nats_url, bucket_name):
    """Every read sees one whole version: never version k's bytes cut to the size the
    kernel holds for the replaced inode (the rename's watch echo must not reach the view
    before the inode moves, and an open racing with the rename starts over)."""
    versions, seen, _ = _read_during_renames(mnt, nats_url, bucket_name)
    bad = [(len(s), sorted(set(s))) for s in seen if s not in versions]
    assert not bad, bad[:5]


def test_directory_rename_moves_every_object(mnt, nats_url, bucket_name):
    b = mnt.path / bucket_name
    b.mkdir()
    (b / "d" / "e").mkdir(parents=True)
    for i in range(5):
        (b / "d" / f"f{i}").write_bytes(b"f%d" % i)
    (b / "d" / "e" / "deep").write_bytes(b"deep")
    _, chunks = stream_state(nats_url, bucket_name)
    os.rename(b / "d", b / "renamed")
    assert not (b / "d").exists()
    assert sorted(os.listdir(b / "renamed")) == ["e", "f0", "f1", "f2", "f3", "f4"]
    assert (b / "renamed" / "e" / "deep").read_bytes() == b"deep"
    assert (b / "renamed" / "f3").read_bytes() == b"f3"
    assert _names(nats_url, bucket_name) == sorted(
        ["renamed/", "renamed/e/", "renamed/e/deep"] + [f"renamed/f{i}" for i in range(5)]
    )
    assert stream_state(nats_url, bucket_name)[1] == chunks


def test_mv_across_buckets_copies_and_deletes(mnt, nats_url, bucket_name):
    a, c = mnt.path / f"{bucket_name}a", mnt.path / f"{bucket_name}c"
    a.mkdir()
    c.mkdir()
    (a / "f.bin").write_bytes(DATA)
    (a / "dir").mkdir()
    (a / "dir" / "g").write_bytes(b"g")
    with pytest.raises(OSError) as exc:
        os.rename(a / "f.bin", c / "f.bin")
    assert exc.value.errno == errno.EXDEV
    sh("mv", str(a / "f.bin"), str(c / "f.bin"))
    sh("mv", str(a / "dir"), str(c / "dir"))
    assert (c / "f.bin").read_bytes() == DATA
    assert (c / "dir" / "g").read_bytes() == b"g"
    assert os.listdir(a) == []
    assert _names(nats_url, a.name) == []
    assert "f.bin" in _names(nats_url, c.name)


def test_buckets_cannot_be_renamed(mnt, bucket_name):
    a = mnt.path / bucket_name
    a.mkdir()
    with pytest.raises(OSError) as exc:
        os.rename(a, mnt.path / f"{bucket_name}x")
    assert exc.value.errno == errno.EPERM


def test_rename_over_a_file_open_for_writing(mnt, nats_url, bucket_name):
    """The replaced file is gone like an unlinked one: writing on and closing it must not
    publish it over the file that took its name."""
    b = mnt.path / bucket_name
    b.mkdir()
    with open(b / "target", "wb") as victim:
        victim.write(b"old content")
        victim.flush()
        (b / "tmp").write_bytes(DATA)
        os.rename(b / "tmp", b / "target")
        victim.write(b" written after the rename")
    assert (b / "target").read_bytes() == DATA
    assert _names(nats_url, bucket_name) == ["target"]
    _, chunks = stream_state(nats_url, bucket_name)
    assert sum(chunks.values()) == 4  # only the winner's chunks are left


def test_entries_keep_their_inode_numbers(mnt, bucket_name):
    """A new entry's inode number holds (the watch's echo of this mount's own write is not
    taken for another client's change), and a directory keeps it across a rename, also
    onto an empty directory."""
    b = mnt.path / bucket_name
    (b / "a").mkdir(parents=True)
    (b / "c").mkdir()

    def ino(path: str) -> int:
        return int(sh("stat", "-c", "%i", str(b / path)).stdout.strip())

    for i in range(5):
        sh("mkdir", str(b / "a" / f"x{i}"), str(b / "c" / f"y{i}"))
        sh("sh", "-c", f"echo f > {b}/a/f{i}")
        sh("ln", "-s", "nowhere", str(b / "a" / f"l{i}"))
        made = {p: ino(f"a/{p}") for p in (f"x{i}", f"f{i}", f"l{i}")}
        sh("mv", str(b / "a" / f"x{i}"), str(b / "c" / f"w{i}"))
        assert ino(f"c/w{i}") == made[f"x{i}"]
        sh("mv", "-T", str(b / "c" / f"w{i}"), str(b / "c" / f"y{i}"))
        assert ino(f"c/y{i}") == made[f"x{i}"]
        assert {p: ino(f"a/{p}") for p in (f"f{i}", f"l{i}")} == {p: made[p] for p in (f"f{i}", f"l{i}")}


def test_an_unlinked_open_file_has_no_links(mnt, bucket_name):
    (mnt.path / bucket_name).mkdir()
    f = mnt.path / bucket_name / "gone"
    f.write_bytes(b"data")
    with open(f, "rb") as fh:
        assert os.fstat(fh.fileno()).st_nlink == 1
        f.unlink()
        assert os.fstat(fh.fileno()).st_nlink == 0
