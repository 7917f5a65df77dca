"""Attribute names outside ``user.*`` are not supported, for reading too: ``ENOTSUP`` (so
``ls -l`` stops asking for SELinux labels and ACLs), answered by the FUSE adapter without
entering the core, and the same answer from the core itself."""

from __future__ import annotations

import errno

import pyfuse3
import pytest
import trio
from corekit import resolve, write_file

from osfs.errors import FsError
from osfs.fuse_ops import FuseOps
from osfs.store.types import BucketConfig

OTHER_NAMESPACES = ["security.capability", "security.selinux", "system.posix_acl_access", "trusted.x"]


def test_the_core_answers_enotsup_outside_user(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await write_file(fs, "b/f", b"x")
        ino = await resolve(fs, "b/f")
        for name in OTHER_NAMESPACES:
            with pytest.raises(FsError) as exc:
                await fs.getxattr(ino, name)
            assert exc.value.errno == errno.ENOTSUP, name
        with pytest.raises(FsError) as exc:
            await fs.getxattr(ino, "user.absent")
        assert exc.value.errno == errno.ENODATA

    run_fs(body)


def test_the_adapter_answers_without_the_core() -> None:
    class NoCore:
        """Fails any use: the adapter must answer on its own."""

        invalidator = None

        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"the core was asked for {name}")

    ops = FuseOps(NoCore())  # type: ignore[arg-type]

    async def main() -> None:
        for name in OTHER_NAMESPACES:
            with pytest.raises(pyfuse3.FUSEError) as exc:
                await ops.getxattr(1, name.encode(), None)
            assert exc.value.errno == errno.ENOTSUP, name

    trio.run(main)
