"""Symlinks are object links, end to end through a real mount."""

from __future__ import annotations

import os

import pytest
from mountkit import requires_fuse
from semkit import peer, publish_meta, raw_meta, wait_for

pytestmark = [pytest.mark.mount, requires_fuse]


def _two_buckets(mnt, bucket_name: str):
    a, b = mnt.path / f"{bucket_name}a", mnt.path / f"{bucket_name}b"
    a.mkdir()
    b.mkdir()
    (a / "dir").mkdir()
    (a / "f.txt").write_bytes(b"file in a")
    (a / "dir" / "deep.txt").write_bytes(b"deep in a")
    (b / "g.txt").write_bytes(b"file in b")
    return a, b


def test_ln_readlink_cat_within_and_across_buckets(mnt, nats_url, bucket_name):
    a, b = _two_buckets(mnt, bucket_name)
    os.symlink("f.txt", a / "same")
    os.symlink("../f.txt", a / "dir" / "up")
    os.symlink("dir/deep.txt", a / "down")
    os.symlink(f"../{b.name}/g.txt", a / "other")
    os.symlink(f"../../{b.name}/g.txt", a / "dir" / "other2")
    os.symlink(f"../{b.name}", a / "bucketlink")

    assert os.readlink(a / "same") == "f.txt"
    assert os.readlink(a / "dir" / "up") == "../f.txt"
    assert os.readlink(a / "down") == "dir/deep.txt"
    assert os.readlink(a / "other") == f"../{b.name}/g.txt"
    assert os.readlink(a / "dir" / "other2") == f"../../{b.name}/g.txt"
    assert os.readlink(a / "bucketlink") == f"../{b.name}"

    assert (a / "same").read_bytes() == b"file in a"
    assert (a / "dir" / "up").read_bytes() == b"file in a"
    assert (a / "down").read_bytes() == b"deep in a"
    assert (a / "other").read_bytes() == b"file in b"
    assert (a / "dir" / "other2").read_bytes() == b"file in b"
    assert os.listdir(a / "bucketlink") == ["g.txt"]
    assert (a / "bucketlink" / "g.txt").read_bytes() == b"file in b"
    assert os.path.islink(a / "other") and not os.path.islink(a / "f.txt")

    # stored as real object links, readable by any client
    assert raw_meta(nats_url, a.name, "other")["options"]["link"] == {"bucket": b.name, "name": "g.txt"}
    assert raw_meta(nats_url, a.name, "dir/up")["options"]["link"] == {"bucket": a.name, "name": "f.txt"}
    link = raw_meta(nats_url, a.name, "bucketlink")["options"]["link"]
    assert link["bucket"] == b.name and not link.get("name")


def test_ln_absolute_target_inside_the_mount(mnt, bucket_name):
    a, b = _two_buckets(mnt, bucket_name)
    os.symlink(str(a / "dir" / "deep.txt"), a / "abs")
    os.symlink(str(b / "g.txt"), a / "dir" / "absother")
    os.symlink(str(b), a / "absbucket")
    # readlink gives back the text symlink(2) was given
    assert os.readlink(a / "abs") == str(a / "dir" / "deep.txt")
    assert os.readlink(a / "dir" / "absother") == str(b / "g.txt")
    assert os.readlink(a / "absbucket") == str(b)
    assert (a / "abs").read_bytes() == b"deep in a"
    assert (a / "dir" / "absother").read_bytes() == b"file in b"
    assert os.listdir(a / "absbucket") == ["g.txt"]


def test_readlink_keeps_the_text_while_it_names_the_target(mnt, nats_url, bucket_name):
    a, b = _two_buckets(mnt, bucket_name)
    texts = {
        "dot": "./f.txt",
        "detour": "dir/../f.txt",
        "slashes": "dir//deep.txt",
        "roundtrip": f"../{a.name}/f.txt",
        "other": f"../{b.name}/./g.txt",
    }
    for name, text in texts.items():
        os.symlink(text, a / name)
    for name, text in texts.items():
        assert os.readlink(a / name) == text
        assert os.lstat(a / name).st_size == len(text.encode())
    assert (a / "detour").read_bytes() == b"file in a"
    # the link object names the target; the text is kept in the link's metadata
    meta = raw_meta(nats_url, a.name, "dot")
    assert meta["options"]["link"] == {"bucket": a.name, "name": "f.txt"}
    assert meta["metadata"]["osfs-symlink"] == "./f.txt"
    # moved to where the text names something else: the relative form to the same object
    os.rename(a / "dot", a / "dir" / "dot")
    assert os.readlink(a / "dir" / "dot") == "../f.txt"
    assert (a / "dir" / "dot").read_bytes() == b"file in a"


def test_ln_of_what_an_object_link_cannot_express_makes_symlink_objects(mnt, nats_url, bucket_name, tmp_path):
    a, _ = _two_buckets(mnt, bucket_name)
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    os.symlink("f.txt", a / "lnk")
    cases = {
        "abs_outside": str(outside),
        "missing": "nope.txt",
        "to_dir": "dir",
        "leaves_mount": "../../etc/passwd",
        "no_bucket": "../no_such_bucket_zz/x",
        "to_link": "lnk",
    }
    for name, target in cases.items():
        os.symlink(target, a / name)
        assert os.readlink(a / name) == target
        assert os.lstat(a / name).st_size == len(target)
    assert (a / "abs_outside").read_text() == "x"
    assert (a / "to_link").read_bytes() == b"file in a"
    assert sorted(os.listdir(a / "to_dir")) == ["deep.txt"]
    assert not (a / "missing").exists()
    (a / "nope.txt").write_bytes(b"late")
    assert (a / "missing").read_bytes() == b"late"
    # another client reads the text as the content, and the type in the metadata
    meta = raw_meta(nats_url, a.name, "to_dir")
    assert meta["metadata"]["osfs-type"] == "symlink" and meta["metadata"]["osfs-symlink"] == "dir"

    async def content(nc, js):
        return (await (await js.object_store(a.name)).get("to_dir")).data

    assert peer(nats_url, content) == b"dir"


def test_links_written_by_go_and_js_clients(mnt, nats_url, bucket_name):
    a_name, b_name = f"{bucket_name}a", f"{bucket_name}b"

    async def make(nc, js):
        oa = await js.create_object_store(a_name)
        ob = await js.create_object_store(b_name)
        await oa.put("dir/f.txt", b"target in a")
        await ob.put("g.txt", b"target in b")

    peer(nats_url, make)
    zero = "0001-01-01T00:00:00Z"
    # nats.go AddLink / AddBucketLink: full metas, rollup, fresh nuid, zero mtime
    publish_meta(
        nats_url,
        a_name,
        {
            "name": "go/same",
            "bucket": a_name,
            "nuid": "GOLINK0000000000000001",
            "size": 0,
            "chunks": 0,
            "mtime": zero,
            "options": {"link": {"bucket": a_name, "name": "dir/f.txt"}},
        },
    )
    publish_meta(
        nats_url,
        a_name,
        {
            "name": "go/other",
            "bucket": a_name,
            "nuid": "GOLINK0000000000000002",
            "size": 0,
            "chunks": 0,
            "mtime": zero,
            "options": {"link": {"bucket": b_name, "name": "g.txt"}},
        },
    )
    publish_meta(
        nats_url,
        a_name,
        {
            "name": "gobucket",
            "bucket": a_name,
            "nuid": "GOLINK0000000000000003",
            "size": 0,
            "chunks": 0,
            "mtime": zero,
            "options": {"link": {"bucket": b_name}},
        },
    )
    # nats.js link(): no nuid/size/mtime, no rollup, and the *target's* bucket in "bucket"
    publish_meta(
        nats_url,
        a_name,
        {"name": "jsother", "bucket": b_name, "options": {"link": {"bucket": b_name, "name": "g.txt"}}},
        rollup=False,
    )
    publish_meta(
        nats_url,
        a_name,
        {"name": "jssame", "bucket": a_name, "options": {"link": {"bucket": a_name, "name": "dir/f.txt"}}},
        rollup=False,
    )
    a = mnt.path / a_name
    assert wait_for(lambda: a.exists() and "jssame" in os.listdir(a))
    assert sorted(os.listdir(a)) == ["dir", "go", "gobucket", "jsother", "jssame"]
    assert os.readlink(a / "go" / "same") == "../dir/f.txt"
    assert os.readlink(a / "go" / "other") == f"../../{b_name}/g.txt"
    assert os.readlink(a / "gobucket") == f"../{b_name}"
    assert os.readlink(a / "jsother") == f"../{b_name}/g.txt"
    assert os.readlink(a / "jssame") == "dir/f.txt"
    assert (a / "go" / "same").read_bytes() == b"target in a"
    assert (a / "go" / "other").read_bytes() == b"target in b"
    assert (a / "jsother").read_bytes() == b"target in b"
    assert (a / "jssame").read_bytes() == b"target in a"
    assert os.listdir(a / "gobucket") == ["g.txt"]
    # a link can be removed like any symlink
    os.unlink(a / "jsother")
    assert not os.path.lexists(a / "jsother")


def test_moved_link_keeps_its_object(mnt, bucket_name):
    a, _ = _two_buckets(mnt, bucket_name)
    os.symlink("f.txt", a / "lnk")
    os.rename(a / "lnk", a / "dir" / "lnk")
    # an object link names its object, not a path: readlink follows the move
    assert os.readlink(a / "dir" / "lnk") == "../f.txt"
    assert (a / "dir" / "lnk").read_bytes() == b"file in a"
    # a link whose object is renamed away dangles, like a symlink
    os.rename(a / "f.txt", a / "g.txt")
    assert os.readlink(a / "dir" / "lnk") == "../f.txt"
    with pytest.raises(FileNotFoundError):
        (a / "dir" / "lnk").read_bytes()
    os.unlink(a / "dir" / "lnk")
