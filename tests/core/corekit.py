"""Helpers of the core tests: path-based shortcuts over the inode-based Filesystem API."""

from __future__ import annotations

import os

import trio

from osfs.fs import Filesystem
from osfs.inodes import ROOT_INODE


async def resolve(fs: Filesystem, path: str) -> int:
    """The inode of ``path`` (components separated by '/'), looked up from the root."""
    ino = ROOT_INODE
    for part in [p for p in path.split("/") if p]:
        ino = (await fs.lookup(ino, part)).ino
    return ino


async def write_file(fs: Filesystem, path: str, data: bytes, *, block: int = 4096) -> int:
    """Create (or truncate) ``path`` (its parent must exist), write ``data``, close it."""
    parent, _, name = path.rpartition("/")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    reply, attr = await fs.create(await resolve(fs, parent), name, flags, 0o644)
    for off in range(0, len(data), block):
        await fs.write(reply.fh, off, data[off : off + block])
    await fs.flush(reply.fh)
    await fs.release(reply.fh)
    return attr.ino


async def read_file(fs: Filesystem, path: str, *, block: int = 65536) -> bytes:
    ino = await resolve(fs, path)
    reply = await fs.open(ino, os.O_RDONLY)
    out = bytearray()
    while True:
        data = await fs.read(reply.fh, len(out), block)
        if not data:
            break
        out += data
    await fs.release(reply.fh)
    return bytes(out)


async def listdir(fs: Filesystem, path: str) -> list[str]:
    """The names in directory ``path``, without ``.`` and ``..``."""
    fh = await fs.opendir(await resolve(fs, path))
    try:
        return [e.name for e in fs.readdir(fh, 0) if e.name not in (".", "..")]
    finally:
        fs.releasedir(fh)


async def settle() -> None:
    """Let the watch and invalidation workers apply what another client just did."""
    for _ in range(20):
        await trio.sleep(0)
    await trio.sleep(0.02)
