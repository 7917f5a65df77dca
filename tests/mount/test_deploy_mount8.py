"""mount(8), fstab and mount.fuse3 run osfs for ``-t fuse.osfs`` (tested with the real tools)."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest
from mountkit import needs, needs_program, requires_fuse
from semkit import wait_for

from osfs.mount import pid_file, process_running

pytestmark = [pytest.mark.mount, requires_fuse]

HELPER = Path("/sbin/mount.fuse.osfs")
VENV_BIN = Path(sys.executable).parent


def _helper_is_ours() -> bool:
    """scripts/setup.sh links /sbin/mount.fuse.osfs to the venv's console script; mount(8)
    runs helpers with a fixed PATH, so without the link it cannot find osfs at all."""
    return HELPER.is_symlink() and Path(os.readlink(HELPER)).parent == VENV_BIN


needs_helper = needs(
    _helper_is_ours() and shutil.which("mount") is not None,
    "/sbin/mount.fuse.osfs linked to this venv (scripts/setup.sh without OSFS_NO_SYSTEM_LINKS)",
)


def put_by_peer(nats_url: str, bucket: str, name: str, data: bytes) -> None:
    async def put() -> None:
        nc = await nats.connect(nats_url)
        try:
            obs = await nc.jetstream().object_store(bucket)
            await obs.put(name, data)
        finally:
            await nc.close()

    asyncio.run(put())


def run(*cmd: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
    )


def wait_unmounted(mnt: Path, pid: int | None, timeout: float = 60) -> None:
    """Wait until the mount is gone and its daemon has finished (uploads flushed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = pid is not None and process_running(pid)
        if not alive and not os.path.ismount(mnt):
            return
        time.sleep(0.05)
    raise AssertionError(f"{mnt} still mounted or its daemon {pid} still running")


def daemon_pid(mnt: Path) -> int | None:
    try:
        return int(pid_file(mnt).read_text())
    except (OSError, ValueError):
        return None


def findmnt(mnt: Path) -> dict[str, str]:
    res = run("findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", str(mnt))
    assert res.returncode == 0, f"{mnt} not mounted"
    source, fstype, options = res.stdout.split()
    return {"source": source, "fstype": fstype, "options": options}


@pytest.fixture
def cleanup():
    mounts: list[Path] = []
    yield mounts.append
    for m in mounts:
        if os.path.ismount(m):
            pid = daemon_pid(m)
            subprocess.run(["umount", "-l", str(m)], capture_output=True)
            wait_unmounted(m, pid)


@needs_helper
def test_mount_t_fuse_osfs_and_umount(tmp_path: Path, nats_url: str, bucket_name: str, cleanup):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cleanup(mnt)
    log = tmp_path / "osfs.log"
    opts = f"_netdev,noauto,nofail,allow_other,umask=027,chunk_size=64K,log_file={log},x-systemd.automount"
    res = run("mount", "-t", "fuse.osfs", nats_url, str(mnt), "-o", opts)
    assert res.returncode == 0, res.stderr + (log.read_text() if log.exists() else "")
    info = findmnt(mnt)
    assert info["fstype"] == "fuse.osfs"
    assert info["source"] == nats_url
    assert "allow_other" in info["options"]
    os.mkdir(mnt / bucket_name)
    (mnt / bucket_name / "f.txt").write_bytes(b"through mount(8)\n")
    put_by_peer(nats_url, bucket_name, "peer.txt", b"no mode of its own")
    # coherence is asynchronous: the watch brings the peer's object in (milliseconds)
    assert wait_for(lambda: (mnt / bucket_name / "peer.txt").exists())
    # umask=027 applies to objects without a mode of their own
    assert oct(os.stat(mnt / bucket_name / "peer.txt").st_mode & 0o777) == oct(0o640)
    pid = daemon_pid(mnt)
    assert pid is not None
    res = run("umount", str(mnt))
    assert res.returncode == 0, res.stderr
    wait_unmounted(mnt, pid)
    assert "mounted" in log.read_text()

    # a single bucket as the root, read-only, from the BUCKET@URL spec
    res = run("mount", "-t", "fuse.osfs", f"{bucket_name}@{nats_url}", str(mnt), "-o", f"ro,log_file={log}")
    assert res.returncode == 0, res.stderr
    assert findmnt(mnt)["source"] == f"{bucket_name}@{nats_url}"
    assert (mnt / "f.txt").read_bytes() == b"through mount(8)\n"
    with pytest.raises(OSError) as e:
        (mnt / "g.txt").write_bytes(b"x")
    assert e.value.errno == errno.EROFS
    pid = daemon_pid(mnt)
    assert run("umount", str(mnt)).returncode == 0
    wait_unmounted(mnt, pid)


@needs_helper
def test_fstab_line_with_mount_T(tmp_path: Path, nats_url: str, bucket_name: str, cleanup):
    mnt = tmp_path / "objects"
    mnt.mkdir()
    cleanup(mnt)
    log = tmp_path / "osfs.log"
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "# osfs\n"
        f"{nats_url}  {mnt}  fuse.osfs  _netdev,noauto,allow_other,default_permissions,"
        f"bucket_ttl=30d,log_file={log}  0  0\n"
    )
    res = run("mount", "-T", str(fstab), str(mnt))
    assert res.returncode == 0, res.stderr + (log.read_text() if log.exists() else "")
    assert findmnt(mnt)["fstype"] == "fuse.osfs"
    assert "default_permissions" in findmnt(mnt)["options"]
    os.mkdir(mnt / bucket_name)
    res = run(sys.executable, "-m", "osfs", "bucket", "status", bucket_name, "--server", nats_url, "--json")
    assert res.returncode == 0, res.stderr
    assert '"ttl_s": 2592000.0' in res.stdout
    pid = daemon_pid(mnt)
    assert run("umount", str(mnt)).returncode == 0
    wait_unmounted(mnt, pid)


@needs_helper
def test_mount_reports_bad_options_and_failures(tmp_path: Path, nats_url: str):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = run("mount", "-t", "fuse.osfs", nats_url, str(mnt), "-o", "frobnicate")
    assert res.returncode != 0
    assert "unknown mount option: frobnicate" in res.stderr
    res = run("mount", "-t", "fuse.osfs", nats_url, str(mnt), "-o", "password=hunter2")
    assert res.returncode != 0
    assert "hunter2" not in res.stderr and "password_file" in res.stderr
    assert not os.path.ismount(mnt)


@needs_program("mount.fuse3", "fuse3")
def test_mount_fuse3_runs_osfs_spec_mnt_form(tmp_path: Path, nats_url: str, bucket_name: str, cleanup):
    """Without /sbin/mount.fuse.osfs, mount(8) falls back to mount.fuse3, which runs
    ``osfs SPEC MNT -o OPTS`` from PATH: the same path, exercised directly."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cleanup(mnt)
    log = tmp_path / "osfs.log"
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    res = run("mount.fuse3", f"osfs#{nats_url}", str(mnt), "-o", f"_netdev,log_file={log}", env=env)
    assert res.returncode == 0, res.stderr
    assert findmnt(mnt)["fstype"] == "fuse.osfs"
    os.mkdir(mnt / bucket_name)
    assert bucket_name in os.listdir(mnt)
    pid = daemon_pid(mnt)
    assert run("umount", str(mnt)).returncode == 0
    wait_unmounted(mnt, pid)
