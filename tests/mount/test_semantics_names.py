"""Name limits and hard links through a real mount: the errnos SEMANTICS.md names."""

from __future__ import annotations

import errno
import os

import pytest
from mountkit import requires_fuse

pytestmark = [pytest.mark.mount, requires_fuse]


def _errno_of(fn) -> int:
    with pytest.raises(OSError) as exc:
        fn()
    return exc.value.errno


def test_component_over_255_bytes_is_enametoolong(mnt, bucket_name):
    b = mnt.path / bucket_name
    b.mkdir()
    long = "x" * 256
    assert _errno_of(lambda: (b / long).write_bytes(b"1")) == errno.ENAMETOOLONG
    assert _errno_of(lambda: (b / long).mkdir()) == errno.ENAMETOOLONG
    assert _errno_of(lambda: os.stat(b / long)) == errno.ENAMETOOLONG
    assert os.listdir(b) == []


def test_whole_name_over_the_subject_limit_is_enametoolong(mnt, bucket_name):
    b = mnt.path / bucket_name
    b.mkdir()
    d = b
    for i in range(11):  # 11 components of 250 bytes: about 2,760 bytes of name
        d = d / (chr(ord("a") + i) * 250)
        d.mkdir()
    assert (d / "short").write_bytes(b"fits") == 4
    assert _errno_of(lambda: (d / ("z" * 250)).write_bytes(b"1")) == errno.ENAMETOOLONG
    assert _errno_of(lambda: (d / ("z" * 250)).mkdir()) == errno.ENAMETOOLONG
    assert not (d / ("z" * 250)).exists()
    assert (d / "short").read_bytes() == b"fits"
    assert "NameTooLong" in mnt.log  # one log line says why


def test_hard_link_is_eperm(mnt, bucket_name):
    b = mnt.path / bucket_name
    b.mkdir()
    (b / "f").write_bytes(b"data")
    assert _errno_of(lambda: os.link(b / "f", b / "g")) == errno.EPERM
    assert sorted(os.listdir(b)) == ["f"]
