"""``--allow-other`` turns on ``default_permissions`` unless the user turns it off
explicitly; the ownership rules of :mod:`osfs.callers`."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from osfs import cli
from osfs.callers import Caller, check_setattr, new_owner
from osfs.config import MountOptions
from osfs.errors import FsError
from osfs.mount import fuse_options


def _mount_options(*argv: str) -> MountOptions:
    return cli.mount_options(cli.parse_args(["mount", "/mnt", *argv]), {})


@pytest.mark.parametrize(
    ("argv", "checked"),
    [
        ((), False),
        (("--allow-other",), True),
        (("-o", "allow_other"), True),
        (("--allow-other", "--no-default-permissions"), False),
        (("-o", "allow_other,no_default_permissions"), False),
        (("--default-permissions",), True),
    ],
)
def test_allow_other_implies_default_permissions(argv, checked):
    opts = _mount_options(*argv)
    assert ("default_permissions" in fuse_options(opts)) is checked


def test_config_file_can_turn_default_permissions_off(tmp_path: Path):
    conf = tmp_path / "osfs.conf"
    conf.write_text("allow_other = yes\ndefault_permissions = no\n")
    opts = _mount_options("--config", str(conf))
    assert opts.allow_other and "default_permissions" not in fuse_options(opts)


def test_new_entries_and_setgid_directories():
    alice = Caller(1000, 1000, umask=0o027)
    assert new_owner(alice, 50, 0o755, 0o666, is_dir=False) == (1000, 1000, 0o640)
    uid, gid, mode = new_owner(alice, 50, 0o2775 | stat.S_IFDIR, 0o777, is_dir=True)
    assert (uid, gid) == (1000, 50) and mode & stat.S_ISGID and mode & 0o777 == 0o750


def test_chown_chgrp_chmod_rules():
    root, alice = Caller(0, 0), Caller(1000, 1000, pid=os.getpid())
    check_setattr(root, (1000, 1000), mode=0o600, uid=5, gid=6)
    check_setattr(alice, (1000, 1000), mode=0o600, uid=1000, gid=1000)
    for kwargs, owner in (
        ({"mode": None, "uid": 5, "gid": None}, (1000, 1000)),
        ({"mode": None, "uid": None, "gid": 77777}, (1000, 1000)),
        ({"mode": 0o644, "uid": None, "gid": None}, (2000, 2000)),
    ):
        with pytest.raises(FsError) as exc:
            check_setattr(alice, owner, **kwargs)
        assert exc.value.errno == errno.EPERM
