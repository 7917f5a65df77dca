"""The full meta behind a compact listing record: read when it is needed, kept for what
this mount writes."""

from __future__ import annotations

import os

from corekit import read_file, resolve

from osfs.listed import Listed
from osfs.store.types import BucketConfig, ObjectMeta


def test_a_listed_object_opens_reads_and_shows_its_digest(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        stored = await store.put("b", ObjectMeta("d/f", metadata={"k": "v"}), b"hello")
        await store.put("b", ObjectMeta("plain", description="about"), b"x")
        assert await read_file(fs, "b/d/f") == b"hello"
        view = fs.views.view("b")
        assert isinstance(view.infos["plain"], Listed) and view.infos["plain"].metadata == {}
        assert view.infos["d/f"].metadata == {"k": "v"}
        ino = await resolve(fs, "b/d/f")
        assert await fs.getxattr(ino, "user.digest") == stored.digest.encode()
        assert await fs.getxattr(ino, "user.meta.k") == b"v"
        assert await fs.getxattr(await resolve(fs, "b/plain"), "user.description") == b"about"

    run_fs(body)


def test_an_attribute_set_while_a_file_is_created_is_kept(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        reply, attr = await fs.create(await resolve(fs, "b"), "new", os.O_WRONLY | os.O_CREAT, 0o644)
        await fs.write(reply.fh, 0, b"data")
        await fs.setxattr(attr.ino, "user.note", b"n")
        assert await fs.getxattr(attr.ino, "user.note") == b"n"
        await fs.flush(reply.fh)
        await fs.release(reply.fh)
        assert await fs.getxattr(attr.ino, "user.note") == b"n"
        assert (await store.info("b", "new")).metadata["osfs-xattr.note"] == "n"

    run_fs(body)
