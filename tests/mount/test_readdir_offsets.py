"""``readdir`` through a real mount while the directory changes: a directory read in several
``getdents`` calls, with names added and removed between them, gives every name it had when
it was opened exactly once (the kernel continues from the cookie of the last entry it
took, which indexes the listing taken at ``opendir``)."""

from __future__ import annotations

import asyncio
import os

import pytest
from mountkit import requires_fuse

from osfs.embedded import EmbeddedServer
from osfs.store.nats.bulkfill import fill_bucket, object_name

pytestmark = [pytest.mark.mount, requires_fuse]

#: Entries of the directory: several times what one ``getdents`` buffer of glibc holds.
ENTRIES = 5000


def test_readdir_offsets_stay_valid_while_the_directory_changes(
    mount_factory, nats_server: EmbeddedServer, bucket_name: str
) -> None:
    asyncio.run(fill_bucket(nats_server.url, bucket_name, ENTRIES, per_dir=ENTRIES))
    names = {object_name(i, ENTRIES).split("/")[1] for i in range(ENTRIES)}
    mnt = mount_factory()
    d = mnt.path / bucket_name / object_name(0, ENTRIES).split("/")[0]
    assert set(os.listdir(d)) == names
    seen: list[str] = []
    with os.scandir(d) as it:
        seen.append(next(it).name)  # the first getdents: a part of the directory only
        removed = sorted(names)[-10:] + sorted(names)[:10]
        for name in removed:
            os.unlink(d / name)
        for i in range(10):
            (d / f"new{i}").write_bytes(b"new")
        seen.extend(e.name for e in it)
    assert len(seen) == len(set(seen))
    assert set(seen) == names  # the listing as it was at opendir: the removed names too
    assert set(os.listdir(d)) == (names - set(removed)) | {f"new{i}" for i in range(10)}
