"""Times and name limits through a real mount: atime kept apart from mtime when set
explicitly, never moved by reads; ``ENAMETOOLONG`` for a component over 255 bytes at every
operation that takes a name."""

from __future__ import annotations

import errno
import os

import pytest
from mountkit import requires_fuse
from semkit import raw_meta, sh

pytestmark = [pytest.mark.mount, requires_fuse]

OLD = 1_000_000_000_000_000_000  # 2001-09-09
OLDER = 900_000_000_000_000_000


def test_atime_is_kept_when_set_and_not_moved_by_reads(mnt, nats_url, bucket_name):
    b = mnt.path / bucket_name
    b.mkdir()
    f = b / "f"
    f.write_bytes(b"data")
    os.utime(f, ns=(OLDER, OLD))
    st = os.stat(f)
    assert (st.st_atime_ns, st.st_mtime_ns) == (OLDER, OLD)
    assert f.read_bytes() == b"data"
    assert os.stat(f).st_atime_ns == OLDER
    sh("touch", "-a", "-d", "@1100000000", str(f))
    st = os.stat(f)
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_100_000_000 * 10**9, OLD)
    assert raw_meta(nats_url, bucket_name, "f")["metadata"]["osfs-atime"] == str(1_100_000_000 * 10**9)
    (b / "d").mkdir()
    os.utime(b / "d", ns=(OLDER, OLD))
    st = os.stat(b / "d")
    assert (st.st_atime_ns, st.st_mtime_ns) == (OLDER, OLD)


def test_status_changes_move_ctime_not_mtime(mnt, bucket_name):
    b = mnt.path / bucket_name
    b.mkdir()
    f = b / "f"
    f.write_bytes(b"data")
    os.utime(f, ns=(OLD, OLD))
    last = os.stat(f).st_ctime_ns
    for change in (
        lambda: os.chmod(f, 0o600),
        lambda: os.chown(f, 123, 456),
        lambda: os.setxattr(f, "user.x", b"1"),
        lambda: os.rename(f, b / "g"),
    ):
        change()
        st = os.stat(b / "g") if (b / "g").exists() else os.stat(f)
        assert st.st_mtime_ns == OLD and st.st_ctime_ns >= last and st.st_ctime_ns > OLD
        last = st.st_ctime_ns


def test_component_over_255_bytes_at_every_operation(mnt, bucket_name):
    b = mnt.path / bucket_name
    b.mkdir()
    (b / "f").write_bytes(b"1")
    long = b / ("x" * 256)

    def errno_of(fn) -> int:
        with pytest.raises(OSError) as exc:
            fn()
        return exc.value.errno

    assert errno_of(lambda: os.open(long, os.O_CREAT | os.O_WRONLY)) == errno.ENAMETOOLONG
    assert errno_of(lambda: os.rename(b / "f", long)) == errno.ENAMETOOLONG
    assert errno_of(lambda: os.symlink("f", long)) == errno.ENAMETOOLONG
    assert errno_of(lambda: os.link(b / "f", long)) == errno.ENAMETOOLONG
    assert errno_of(lambda: os.mkfifo(long)) == errno.ENAMETOOLONG
    assert errno_of(lambda: os.lstat(long)) == errno.ENAMETOOLONG
    assert os.listdir(b) == ["f"]
