"""Owners through a real mount shared with ``--allow-other``: entries belong to the user
who made them, the kernel checks modes (``default_permissions`` comes with
``--allow-other``), chown/chgrp follow the kernel's rules, setgid directories pass their
group on. Users are played with ``setpriv`` (no account needed)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mountkit import Mounted, requires_fuse, start_mount

pytestmark = [
    pytest.mark.mount,
    requires_fuse,
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

ALICE, BOB = 4101, 4102


def as_user(uid: int, *cmd: str, groups: str | None = None) -> subprocess.CompletedProcess:
    who = [f"--reuid={uid}", f"--regid={uid}"]
    who += [f"--groups={groups}"] if groups else ["--clear-groups"]
    return subprocess.run(
        ["setpriv", *who, *cmd], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


@pytest.fixture
def shared(nats_url: str, tmp_path: Path) -> Iterator[Mounted]:
    """A mount with ``--allow-other`` in a directory every user can reach."""
    d = Path(tempfile.mkdtemp(prefix="osfs-owners-"))
    d.chmod(0o755)
    m = start_mount(d / "mnt", tmp_path / "osfs.log", "--server", nats_url, "--allow-other")
    try:
        yield m
    finally:
        m.unmount()
        shutil.rmtree(d, ignore_errors=True)


def test_each_users_files_are_theirs(shared, bucket_name):
    b = shared.path / bucket_name / "shared"
    b.mkdir(parents=True)
    b.chmod(0o1777)  # a bucket's own directory has no object to keep a mode: use one below
    for uid in (ALICE, BOB):
        script = f"umask 077; echo mine > {b}/f{uid}; mkdir {b}/d{uid}; ln -s f{uid} {b}/l{uid}"
        res = as_user(uid, "sh", "-c", script)
        assert res.returncode == 0, res.stderr
        for name, kind in ((f"f{uid}", stat.S_IFREG), (f"d{uid}", stat.S_IFDIR), (f"l{uid}", stat.S_IFLNK)):
            st = os.lstat(b / name)
            assert (st.st_uid, st.st_gid, stat.S_IFMT(st.st_mode)) == (uid, uid, kind), name
        assert stat.S_IMODE(os.stat(b / f"f{uid}").st_mode) == 0o600
        assert stat.S_IMODE(os.stat(b / f"d{uid}").st_mode) == 0o700
    # the other user is refused by the modes; only root changes owners
    res = as_user(BOB, "cat", str(b / f"f{ALICE}"))
    assert res.returncode != 0 and "Permission denied" in res.stderr
    res = as_user(BOB, "sh", "-c", f"echo x > {b}/f{ALICE}")
    assert res.returncode != 0 and "Permission denied" in res.stderr
    res = as_user(BOB, "chown", str(BOB), str(b / f"f{ALICE}"))
    assert res.returncode != 0 and "not permitted" in res.stderr
    res = as_user(ALICE, "chown", str(BOB), str(b / f"f{ALICE}"))
    assert res.returncode != 0 and "not permitted" in res.stderr
    res = as_user(BOB, "chmod", "666", str(b / f"f{ALICE}"))
    assert res.returncode != 0 and "not permitted" in res.stderr
    res = as_user(BOB, "rm", "-f", str(b / f"f{ALICE}"))  # the directory is sticky
    assert res.returncode != 0 and "not permitted" in res.stderr
    # the owner may chmod, and chgrp to a group it is in (not to another)
    assert as_user(ALICE, "chmod", "640", str(b / f"f{ALICE}")).returncode == 0
    res = as_user(ALICE, "chgrp", "4200", str(b / f"f{ALICE}"), groups="4200")
    assert res.returncode == 0, res.stderr
    assert os.stat(b / f"f{ALICE}").st_gid == 4200
    res = as_user(ALICE, "chgrp", "4300", str(b / f"f{ALICE}"), groups="4200")
    assert res.returncode != 0 and "not permitted" in res.stderr
    os.chown(b / f"f{ALICE}", BOB, BOB)  # root may
    assert os.stat(b / f"f{ALICE}").st_uid == BOB
    assert as_user(BOB, "cat", str(b / f"f{ALICE}")).stdout == "mine\n"


def test_setgid_directory_passes_its_group_on(shared, bucket_name):
    b = shared.path / bucket_name
    b.mkdir()
    (b / "team").mkdir()
    os.chown(b / "team", 0, 4200)
    (b / "team").chmod(0o2777)
    res = as_user(ALICE, "sh", "-c", f"touch {b}/team/f && mkdir {b}/team/sub")
    assert res.returncode == 0, res.stderr
    assert (os.stat(b / "team" / "f").st_uid, os.stat(b / "team" / "f").st_gid) == (ALICE, 4200)
    sub = os.stat(b / "team" / "sub")
    assert sub.st_gid == 4200 and sub.st_mode & stat.S_ISGID


def test_a_write_by_another_user_clears_setuid_and_setgid(shared, bucket_name):
    d = shared.path / bucket_name / "priv"
    d.mkdir(parents=True)
    for mode in (0o4777, 0o2777, 0o6777):
        f = d / f"f{mode:o}"
        f.write_bytes(b"")
        f.chmod(mode)
        assert stat.S_IMODE(f.stat().st_mode) == mode
        res = as_user(BOB, "sh", "-c", f"printf x >> {f}")
        assert res.returncode == 0, res.stderr
        assert stat.S_IMODE(f.stat().st_mode) == 0o777, f"{mode:o}"
        # clearing is all a non-owner may do to the mode
        res = as_user(BOB, "chmod", "0700", str(f))
        assert res.returncode != 0 and stat.S_IMODE(f.stat().st_mode) == 0o777
