"""Any ``user.*`` attribute through a real mount, and copies that carry attributes
(``cp -a``, ``mv`` across buckets, ``rsync -X``) without a warning."""

from __future__ import annotations

import os
import shutil

import pytest
from mountkit import requires_fuse
from semkit import raw_meta, sh

pytestmark = [pytest.mark.mount, requires_fuse]


def test_any_user_attribute_is_kept(mnt, nats_url, bucket_name):
    b = mnt.path / bucket_name
    (b / "d").mkdir(parents=True)
    f = b / "d" / "f"
    f.write_bytes(b"data")
    sh("setfattr", "-n", "user.note", "-v", "remember", str(f))
    os.setxattr(f, "user.xdg.origin.url", b"https://example.com/")
    os.setxattr(f, "user.raw", b"\xff\xfe")
    assert os.getxattr(f, "user.note") == b"remember"
    assert os.getxattr(f, "user.raw") == b"\xff\xfe"
    assert {"user.note", "user.xdg.origin.url", "user.raw"} <= set(os.listxattr(f))
    assert raw_meta(nats_url, bucket_name, "d/f")["metadata"]["osfs-xattr.note"] == "remember"
    # a directory implied by names below it gets a marker to hold its attributes
    (b / "implied").mkdir()
    (b / "implied" / "x").write_bytes(b"1")
    os.setxattr(b / "d", "user.tag", b"dir")
    assert os.getxattr(b / "d", "user.tag") == b"dir"


def test_copies_between_buckets_print_no_warning(mnt, bucket_name):
    a, c = mnt.path / f"{bucket_name}a", mnt.path / f"{bucket_name}c"
    a.mkdir()
    c.mkdir()
    (a / "f").write_bytes(b"x" * 1000)
    os.setxattr(a / "f", "user.note", b"n")
    res = sh("cp", "-a", str(a / "f"), str(c / "copy"))
    assert res.stderr == ""
    assert os.getxattr(c / "copy", "user.note") == b"n"
    res = sh("mv", str(a / "f"), str(c / "moved"))
    assert res.stderr == ""
    assert os.getxattr(c / "moved", "user.note") == b"n"
    if shutil.which("rsync"):
        res = sh("rsync", "-aX", str(c) + "/", str(a) + "/")
        assert res.stderr == ""
        assert os.getxattr(a / "moved", "user.note") == b"n"
