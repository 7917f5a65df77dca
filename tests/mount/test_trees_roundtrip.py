"""A tree holding every kind of entry, copied into the mount with ``rsync -aX`` and out
again, comes back equal by ``lstat`` (type, mode, owner, size, mtime, link text, rdev),
content and user attributes; a second ``rsync -aX --itemize-changes`` finds nothing to do."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from mountkit import requires_fuse
from semkit import sh

pytestmark = [
    pytest.mark.mount,
    requires_fuse,
    pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (devices, owners)"),
]

OLD = 1_000_000_000 * 10**9


def _make_tree(src: Path, outside: Path) -> None:
    (src / "dir" / "deep").mkdir(parents=True)
    (src / "empty-dir").mkdir()
    (src / "file").write_bytes(b"plain file\n")
    (src / "dir" / "deep" / "big").write_bytes(os.urandom(300_000))
    (src / "exec").write_bytes(b"#!/bin/sh\n")
    (src / "exec").chmod(0o755)
    (src / "odd").write_bytes(b"odd mode")
    (src / "odd").chmod(0o4751)
    (src / "secret").write_bytes(b"only me")
    (src / "secret").chmod(0o600)
    (src / "theirs").write_bytes(b"another user's")
    os.chown(src / "theirs", 4321, 4322)
    (src / "setgid").mkdir()
    os.chown(src / "setgid", 0, 4322)
    (src / "setgid").chmod(0o2775)
    (src / "setgid" / "inside").write_bytes(b"x")
    os.symlink("file", src / "rel")
    os.symlink("../file", src / "dir" / "up")
    os.symlink(str(outside), src / "abs-outside")
    os.symlink("no/such/target", src / "dangling")
    os.symlink("dir", src / "to-dir")
    os.symlink("rel", src / "chain")
    os.mkfifo(src / "fifo", 0o640)
    # bound by a relative name: the absolute path may exceed the 107 bytes of sun_path
    sh("python3", "-c", "import socket; socket.socket(socket.AF_UNIX).bind('sock')", cwd=src)
    os.mknod(src / "chr", 0o620 | stat.S_IFCHR, os.makedev(4, 64))
    os.mknod(src / "blk", 0o660 | stat.S_IFBLK, os.makedev(7, 3))
    os.lchown(src / "chain", 4321, 4322)
    os.setxattr(src / "file", "user.note", b"a note")
    os.setxattr(src / "file", "user.xdg.origin.url", b"https://example.com/f")
    os.setxattr(src / "dir", "user.tag", b"directory attribute")
    os.setxattr(src / "secret", "user.bin", b"\x00\xff\x10")
    for p in sorted(src.rglob("*"), key=lambda p: -len(p.parts)):
        os.utime(p, ns=(OLD, OLD - len(p.name) * 10**9), follow_symlinks=False)
    os.utime(src, ns=(OLD, OLD))


def _snapshot(root: Path) -> dict[str, tuple]:
    """What must survive the round trip, by relative path."""
    out: dict[str, tuple] = {}
    for p in [root, *sorted(root.rglob("*"))]:
        st = os.lstat(p)
        kind = stat.S_IFMT(st.st_mode)
        entry: tuple = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns)
        if kind == stat.S_IFREG:
            entry += (st.st_size, p.read_bytes())
        elif kind == stat.S_IFLNK:
            entry += (os.readlink(p),)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK):
            entry += (st.st_rdev,)
        if kind in (stat.S_IFREG, stat.S_IFDIR):
            names = sorted(n for n in os.listxattr(p) if n.startswith("user."))
            entry += (tuple((n, os.getxattr(p, n)) for n in names),)
        out[str(p.relative_to(root))] = entry
    return out


def test_rsync_ax_round_trip_of_every_kind_of_entry(mnt, bucket_name, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    src, back = tmp_path / "src", tmp_path / "back"
    src.mkdir()
    _make_tree(src, outside)
    dst = mnt.path / bucket_name / "tree"
    dst.mkdir(parents=True)
    res = sh("rsync", "-aX", f"{src}/", f"{dst}/", check=False)
    assert res.returncode == 0, res.stderr
    inside = _snapshot(dst)
    assert inside == _snapshot(src)
    assert len(inside) == 22
    assert inside["blk"][-1] == os.makedev(7, 3) and inside["theirs"][2:4] == (4321, 4322)
    assert inside["abs-outside"][-1] == str(outside) and inside["setgid"][1] == 0o2775
    assert inside["file"][-1] == (("user.note", b"a note"), ("user.xdg.origin.url", b"https://example.com/f"))
    res = sh("rsync", "-aX", "--itemize-changes", f"{src}/", f"{dst}/")
    assert res.stdout == "" and res.stderr == ""
    res = sh("rsync", "-aX", f"{dst}/", f"{back}/", check=False)
    assert res.returncode == 0, res.stderr
    assert _snapshot(back) == _snapshot(src)
    res = sh("rsync", "-aX", "--itemize-changes", f"{dst}/", f"{back}/")
    assert res.stdout == "" and res.stderr == ""
