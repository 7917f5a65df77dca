"""A real FUSE mount of FuseOps over a MemoryStore (in a subprocess), driven by shell tools."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.mount,
    pytest.mark.skipif(
        not (os.path.exists("/dev/fuse") and os.geteuid() == 0), reason="needs /dev/fuse and root"
    ),
]

SERVER = """
import logging, sys, trio, pyfuse3
from pathlib import Path
from osfs.config import FsOptions
from osfs.fs import Filesystem
from osfs.fuse_ops import FuseOps
from osfs.store.memory import MemoryStore

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
mountpoint, spool = sys.argv[1], Path(sys.argv[2])

async def main():
    store = MemoryStore()
    fs = Filesystem(store, FsOptions(spool_dir=spool))
    options = set(pyfuse3.default_options) - {"default_permissions"} | {"fsname=osfs-test"}
    pyfuse3.init(FuseOps(fs), mountpoint, options)
    try:
        async with trio.open_nursery() as nursery:
            await fs.start(nursery)
            await pyfuse3.main()
            nursery.cancel_scope.cancel()
    finally:
        await fs.flush_all()
        pyfuse3.close(unmount=True)
        await fs.close()

trio.run(main)
"""


@pytest.fixture
def mnt(tmp_path: Path) -> Iterator[Path]:
    mountpoint = tmp_path / "mnt"
    spool = tmp_path / "spool"
    mountpoint.mkdir()
    spool.mkdir()
    log = (tmp_path / "log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(mountpoint), str(spool)], stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while not os.path.ismount(mountpoint):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("mount did not come up: " + (tmp_path / "log").read_text())
        time.sleep(0.05)
    try:
        yield mountpoint
    finally:
        res = subprocess.run(["fusermount3", "-u", str(mountpoint)], capture_output=True, text=True)
        if res.returncode != 0:
            subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True)
            proc.kill()
        code = proc.wait(30)
        log.close()
        text = (tmp_path / "log").read_text()
        assert res.returncode == 0, res.stderr
        assert code == 0, text
        assert "Traceback" not in text, text
        assert os.listdir(spool) == []


def sh(cmd: str, cwd: Path) -> str:
    res = subprocess.run(cmd, shell=True, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{cmd}: {res.stderr}"
    return res.stdout


def test_shell_tools(mnt: Path, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    sh("mkdir b && mkdir -p b/d/e", mnt)
    sh(f"cp {src} b/d/copy.bin", mnt)
    assert (mnt / "b/d/copy.bin").read_bytes() == src.read_bytes()
    assert os.stat(mnt / "b/d/copy.bin").st_blksize == 1 << 20
    assert sh("ls b/d", mnt).split() == ["copy.bin", "e"]
    sh("echo one > b/t && echo two >> b/t", mnt)
    assert sh("cat b/t", mnt) == "one\ntwo\n"
    sh("mv b/t b/d/e/t2 && ln -s d/e/t2 b/lnk", mnt)
    assert sh("cat b/lnk", mnt) == "one\ntwo\n"
    assert os.readlink(mnt / "b/lnk") == "d/e/t2"
    sh("setfattr -n user.mime -v text/plain b/d/e/t2", mnt)
    assert "text/plain" in sh("getfattr -n user.mime b/d/e/t2", mnt)
    sh("chmod 600 b/d/e/t2", mnt)
    assert os.stat(mnt / "b/d/e/t2").st_mode & 0o777 == 0o600
    res = subprocess.run("rmdir b", shell=True, cwd=mnt, capture_output=True, text=True)
    assert res.returncode != 0 and "not empty" in res.stderr
    sh("rm -r b/d b/lnk && rmdir b", mnt)
    assert os.listdir(mnt) == []


def test_ls_l_many_files(mnt: Path) -> None:
    sh("mkdir b && mkdir b/many && cd b/many && touch $(seq -f 'f%04g' 1 500)", mnt)
    out = sh("ls -l b/many", mnt).splitlines()
    assert len(out) == 501
    assert sh("find b -type f | wc -l", mnt).strip() == "500"
