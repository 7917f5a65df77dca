"""Special files through a real mount: FIFOs, sockets, character and block devices are
empty objects whose metadata says what they are; ``stat`` shows them, ``tar`` round-trips
them, and a FIFO works as one."""

from __future__ import annotations

import os
import stat
import threading

import pytest
from mountkit import requires_fuse
from semkit import raw_meta, sh

pytestmark = [pytest.mark.mount, requires_fuse]


def test_fifo_socket_and_devices(mnt, nats_url, bucket_name, tmp_path):
    b = mnt.path / bucket_name
    b.mkdir()
    os.mkfifo(b / "fifo", 0o640)
    os.mknod(b / "chr", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(b / "blk", 0o660 | stat.S_IFBLK, os.makedev(8, 17))
    os.mknod(b / "empty", 0o644 | stat.S_IFREG)
    # bound by a relative name: the absolute path may exceed the 107 bytes of sun_path
    sh("python3", "-c", "import socket; socket.socket(socket.AF_UNIX).bind('sock')", cwd=b)
    kinds = {n: stat.S_IFMT(os.lstat(b / n).st_mode) for n in os.listdir(b)}
    assert kinds == {
        "fifo": stat.S_IFIFO,
        "chr": stat.S_IFCHR,
        "blk": stat.S_IFBLK,
        "empty": stat.S_IFREG,
        "sock": stat.S_IFSOCK,
    }
    assert os.lstat(b / "chr").st_rdev == os.makedev(1, 3)
    assert os.lstat(b / "blk").st_rdev == os.makedev(8, 17)
    assert stat.S_IMODE(os.lstat(b / "fifo").st_mode) == 0o640
    meta = raw_meta(nats_url, bucket_name, "blk")["metadata"]
    assert meta["osfs-type"] == "block" and int(meta["osfs-rdev"]) == os.makedev(8, 17)

    # the FIFO is a FIFO (the kernel serves it)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append((b / "fifo").read_bytes()))
    reader.start()
    (b / "fifo").write_bytes(b"through the pipe")
    reader.join(10)
    assert got == [b"through the pipe"]

    out = tmp_path / "out"
    out.mkdir()
    sh("tar", "-cf", str(tmp_path / "s.tar"), "-C", str(b), ".")
    sh("tar", "-xf", str(tmp_path / "s.tar"), "-C", str(out))
    for n in ("fifo", "chr", "blk", "sock"):
        if n == "sock":
            continue  # tar does not archive sockets
        a, c = os.lstat(b / n), os.lstat(out / n)
        assert (a.st_mode, a.st_rdev) == (c.st_mode, c.st_rdev), n
    again = b / "again"
    again.mkdir()
    sh("tar", "-xf", str(tmp_path / "s.tar"), "-C", str(again))
    assert os.lstat(again / "blk").st_rdev == os.makedev(8, 17)
    assert stat.S_ISFIFO(os.lstat(again / "fifo").st_mode)
