"""Fixtures of the core tests: a Filesystem over a MemoryStore, run under trio (no FUSE)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from osfs.config import FsOptions
from osfs.fs import Filesystem
from osfs.store.memory import MemoryStore

Body = Callable[[Filesystem, MemoryStore], Awaitable[None]]


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    d = tmp_path / "spool"
    d.mkdir()
    return d


@pytest.fixture
def run_fs(spool: Path) -> Callable[..., None]:
    """``run_fs(body, **fs_options)``: run ``await body(fs, store)`` with the workers started.

    After the body, no spool file may be left behind.
    """

    def run(body: Body, **options: object) -> None:
        async def main() -> None:
            store = MemoryStore()
            fs = Filesystem(store, FsOptions(spool_dir=spool, **options))  # type: ignore[arg-type]
            async with trio.open_nursery() as nursery:
                await fs.start(nursery)
                try:
                    with trio.fail_after(30):
                        await body(fs, store)
                finally:
                    await fs.close()
                    nursery.cancel_scope.cancel()

        trio.run(main)
        assert os.listdir(spool) == []

    return run
