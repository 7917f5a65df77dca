"""Real tools on real trees through a mount: ``python3 -m venv``, ``git clone``, ``tar -x``
of an archive whose links come before their targets."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from mountkit import requires_fuse
from semkit import sh

pytestmark = [pytest.mark.mount, requires_fuse]


def test_python_venv_in_the_mount_runs(mnt, bucket_name):
    b = mnt.path / bucket_name
    b.mkdir()
    sh("python3", "-m", "venv", "--without-pip", str(b / "venv"))
    assert os.readlink(b / "venv" / "bin" / "python").endswith("python3")
    if (b / "venv" / "lib64").is_symlink():
        assert os.readlink(b / "venv" / "lib64") == "lib"
    out = sh(str(b / "venv" / "bin" / "python"), "-c", "import sys; print(1, sys.prefix)")
    assert out.stdout.split() == ["1", str(b / "venv")]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_clone_then_status_is_clean(mnt, bucket_name, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(tmp_path),
    }

    def git(*args: str, cwd: Path) -> str:
        res = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
        return res.stdout

    git("init", "-q", ".", cwd=src)
    (src / "a.txt").write_text("a\n")
    (src / "dir").mkdir()
    (src / "dir" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (src / "dir" / "run.sh").chmod(0o755)
    os.symlink("dir", src / "link-to-dir")
    os.symlink("../a.txt", src / "dir" / "up")
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "one", cwd=src)
    b = mnt.path / bucket_name
    b.mkdir()
    git("clone", "-q", str(src), str(b / "clone"), cwd=tmp_path)
    assert git("status", "--porcelain", cwd=b / "clone") == ""
    assert os.readlink(b / "clone" / "link-to-dir") == "dir"
    assert os.access(b / "clone" / "dir" / "run.sh", os.X_OK)
    (b / "clone" / "a.txt").write_text("changed\n")
    assert git("status", "--porcelain", cwd=b / "clone").strip() == "M a.txt"


def test_tar_x_with_links_before_their_targets(mnt, bucket_name, tmp_path):
    archive = tmp_path / "t.tar"
    with tarfile.open(archive, "w") as tar:

        def add(name: str, kind: bytes, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            info.size = len(data)
            info.mtime = 1_000_000_000
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("top/", tarfile.DIRTYPE)
        add("top/l-file", tarfile.SYMTYPE, link="later.txt")
        add("top/l-dir", tarfile.SYMTYPE, link="sub")
        add("top/l-chain", tarfile.SYMTYPE, link="l-file")
        add("top/l-abs", tarfile.SYMTYPE, link="/etc/hostname")
        add("top/sub/", tarfile.DIRTYPE)
        add("top/sub/x", tarfile.REGTYPE, b"x data")
        add("top/later.txt", tarfile.REGTYPE, b"later")
    b = mnt.path / bucket_name
    b.mkdir()
    sh("tar", "-xf", str(archive), "-C", str(b))
    t = b / "top"
    assert {n: os.readlink(t / n) for n in ("l-file", "l-dir", "l-chain", "l-abs")} == {
        "l-file": "later.txt",
        "l-dir": "sub",
        "l-chain": "l-file",
        "l-abs": "/etc/hostname",
    }
    assert (t / "l-chain").read_bytes() == b"later"
    assert (t / "l-dir" / "x").read_bytes() == b"x data"
    assert os.lstat(t / "l-file").st_mtime == 1_000_000_000
    out = tmp_path / "out"
    out.mkdir()
    sh("tar", "-cf", str(tmp_path / "back.tar"), "-C", str(b), "top")
    sh("tar", "-xf", str(tmp_path / "back.tar"), "-C", str(out))
    assert os.readlink(out / "top" / "l-chain") == "l-file"
    assert (out / "top" / "later.txt").read_bytes() == b"later"
