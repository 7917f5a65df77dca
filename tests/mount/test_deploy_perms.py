"""Permissions as another user sees them: --allow-other, --default-permissions, --uid/--gid/--umask,
--read-only. Needs root (to add a test user and to mount); commands run as that user via setpriv."""

from __future__ import annotations

import asyncio
import errno
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from mountkit import Mounted, requires_fuse, start_mount

pytestmark = [pytest.mark.mount, requires_fuse]

USER = "osfs-test"


@pytest.fixture(scope="module")
def other_user() -> tuple[int, int]:
    """uid and gid of an unprivileged user (added if missing)."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        if shutil.which("useradd") is None:
            pytest.skip("cannot add a test user (no useradd)")
        res = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            pytest.skip(f"cannot add a test user: {res.stderr.strip()}")
        pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


def as_user(user: tuple[int, int], *cmd: str) -> subprocess.CompletedProcess:
    uid, gid = user
    return subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *cmd],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="osfs-perm-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def mount_as(public_dir: Path, nats_url: str, tmp_path: Path) -> Iterator:
    mounts: list[Mounted] = []

    def mount(*args: str) -> Mounted:
        n = len(mounts)
        m = start_mount(public_dir / f"mnt{n}", tmp_path / f"osfs{n}.log", "--server", nats_url, *args)
        mounts.append(m)
        return m

    yield mount
    for m in mounts:
        m.unmount()


def peer_put(nats_url: str, bucket: str, name: str, data: bytes) -> None:
    async def put() -> None:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            try:
                obs = await js.object_store(bucket)
            except Exception:
                obs = await js.create_object_store(bucket)
            await obs.put(name, data)
        finally:
            await nc.close()

    asyncio.run(put())


def test_only_the_mounting_user_without_allow_other(mount_as, other_user, nats_url, bucket_name):
    peer_put(nats_url, bucket_name, "f.txt", b"data")
    m = mount_as()
    assert (m.path / bucket_name / "f.txt").read_bytes() == b"data"
    res = as_user(other_user, "ls", str(m.path))
    assert res.returncode != 0 and "Permission denied" in res.stderr


def test_allow_other_uid_gid_umask_and_default_permissions(mount_as, other_user, nats_url, bucket_name):
    uid, gid = other_user
    peer_put(nats_url, bucket_name, "f.txt", b"secret data")
    # objects without a mode of their own belong to --uid/--gid with mode 0666 & ~umask
    shared = mount_as("--allow-other", "--uid", str(uid), "--gid", str(gid), "--umask", "077")
    st = os.stat(shared.path / bucket_name / "f.txt")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (uid, gid, 0o600)
    res = as_user(other_user, "cat", str(shared.path / bucket_name / "f.txt"))
    assert res.returncode == 0 and res.stdout == "secret data", res.stderr
    # owned by root, mode 0600, and the kernel checks modes: the other user is refused
    checked = mount_as("-o", "allow_other,default_permissions,uid=0,gid=0,umask=077")
    assert os.stat(checked.path / bucket_name / "f.txt").st_mode & 0o777 == 0o600
    res = as_user(other_user, "cat", str(checked.path / bucket_name / "f.txt"))
    assert res.returncode != 0 and "Permission denied" in res.stderr
    res = as_user(other_user, "ls", str(checked.path / bucket_name))
    assert res.returncode != 0 and "Permission denied" in res.stderr
    # the same with umask 022: readable, but not writable by others
    readable = mount_as("--allow-other", "--default-permissions", "--uid", "0", "--gid", "0")
    res = as_user(other_user, "cat", str(readable.path / bucket_name / "f.txt"))
    assert res.returncode == 0 and res.stdout == "secret data", res.stderr
    res = as_user(other_user, "sh", "-c", f"echo x > {readable.path / bucket_name / 'new.txt'}")
    assert res.returncode != 0 and "Permission denied" in res.stderr
    assert not (readable.path / bucket_name / "new.txt").exists()


def test_read_only_refuses_every_change(mount_as, other_user, nats_url, bucket_name):
    peer_put(nats_url, bucket_name, "f.txt", b"data")
    m = mount_as("--read-only", "--allow-other")
    b = m.path / bucket_name
    assert (b / "f.txt").read_bytes() == b"data"
    for attempt in (
        lambda: (b / "g.txt").write_bytes(b"x"),
        lambda: (b / "f.txt").write_bytes(b"x"),
        lambda: os.unlink(b / "f.txt"),
        lambda: os.mkdir(m.path / (bucket_name + "x")),
        lambda: os.rename(b / "f.txt", b / "h.txt"),
        lambda: os.setxattr(b / "f.txt", "user.description", b"x"),
    ):
        with pytest.raises(OSError) as e:
            attempt()
        assert e.value.errno == errno.EROFS
    res = as_user(other_user, "cat", str(b / "f.txt"))
    assert res.returncode == 0 and res.stdout == "data", res.stderr
    assert "ro" in subprocess.run(
        ["findmnt", "-n", "-o", "OPTIONS", str(m.path)], capture_output=True, text=True
    ).stdout.split(",")
