"""An on-disk chunk cache of bounded size, for working sets larger than memory.

Second level under the in-memory chunk cache of :mod:`osfs.store.nats.read.fetch`: a chunk
fetched from the server is also written here, and a chunk missing from memory is looked for
here before it is fetched again. Keys are ``(bucket, nuid, chunk_no)`` like the memory
cache's, so a replaced version is never served (a nuid names one immutable version); the
chunks of a version the store saw replaced are deleted at once.

Layout: ``DIR/chunks/<bucket>/<nuid>/<chunk_no>``, each file holding exactly the chunk's
bytes, written to a temporary name and renamed into place (a crash leaves no torn chunk).
The directory is created ``0700`` (it holds object data) and locked with ``flock`` on
``DIR/lock`` for as long as the cache is open: two mounts cannot share one directory
(``DiskCacheError``). Opening it again after a restart keeps what it holds: files are
indexed oldest first (by access time) and trimmed to the size bound.

The size bound counts chunk bytes (not file-system blocks); least recently used chunks are
deleted first. Keys whose parts are not plain names (a nuid written by another client can
be any text) are never cached, so no path leaves the directory.

Every method does blocking file I/O: call it from a worker thread (the NATS store calls it
through its loop's executor). Methods are thread-safe; an I/O error on the cache disk
disables nothing: a failed read is a miss, a failed write is skipped (both logged once).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
from pathlib import Path

import cachetools

log = logging.getLogger(__name__)

#: A chunk of one version: ``(bucket, nuid, chunk number)`` (the memory cache's key too).
ChunkKey = tuple[str, str, int]

_PLAIN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_TMP_SUFFIX = ".tmp"


class DiskCacheError(Exception):
    """The cache directory cannot be used (in use by another mount, not writable)."""


class _Index(cachetools.LRUCache):
    """Key -> size in bytes; evicting a key deletes its file."""

    def __init__(self, limit: int, unlink) -> None:  # type: ignore[no-untyped-def]
        super().__init__(maxsize=limit, getsizeof=lambda size: size)
        self._unlink = unlink

    def popitem(self):  # type: ignore[no-untyped-def]
        key, size = super().popitem()
        self._unlink(key)
        return key, size


class DiskCache:
    """See the module docstring. ``limit`` is the bound in bytes (> 0)."""

    def __init__(self, directory: str | os.PathLike[str], limit: int) -> None:
        if limit <= 0:
            raise ValueError("the disk cache needs a positive size")
        self.directory = Path(directory)
        self.limit = limit
        self._root = self.directory / "chunks"
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        try:
            self._root.mkdir(parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise DiskCacheError(f"disk cache {self.directory}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise DiskCacheError(f"disk cache {self.directory} is in use by another mount") from None
        self._versions: dict[tuple[str, str], set[int]] = {}
        self._index = _Index(limit, self._evicted)
        self._load()

    # ----- paths -------------------------------------------------------------------------
    def _path(self, key: ChunkKey) -> Path | None:
        bucket, nuid, i = key
        if not (_PLAIN.match(bucket) and _PLAIN.match(nuid)) or i < 0:
            return None
        return self._root / bucket / nuid / str(i)

    def _evicted(self, key: ChunkKey) -> None:
        """``key`` left the index by size pressure (lock held)."""
        self._untrack(key)
        self._unlink(key)

    def _track(self, key: ChunkKey, size: int) -> None:
        self._index[key] = size
        self._versions.setdefault((key[0], key[1]), set()).add(key[2])

    def _untrack(self, key: ChunkKey) -> None:
        chunks = self._versions.get((key[0], key[1]))
        if chunks is not None:
            chunks.discard(key[2])
            if not chunks:
                del self._versions[(key[0], key[1])]

    def _unlink(self, key: ChunkKey) -> None:
        path = self._path(key)
        if path is None:
            return
        with contextlib.suppress(OSError):
            path.unlink()
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only succeeds once the version's last chunk is gone

    def _load(self) -> None:
        """Index what an earlier run left (oldest access first), trimmed to the bound."""
        found: list[tuple[float, ChunkKey, int]] = []
        for bucket_dir in self._root.iterdir():
            for version_dir in bucket_dir.iterdir() if bucket_dir.is_dir() else ():
                for f in version_dir.iterdir() if version_dir.is_dir() else ():
                    if f.name.endswith(_TMP_SUFFIX) or not f.name.isdigit():
                        with contextlib.suppress(OSError):
                            f.unlink()
                        continue
                    try:
                        st = f.stat()
                    except OSError:
                        continue
                    found.append((st.st_atime, (bucket_dir.name, version_dir.name, int(f.name)), st.st_size))
        found.sort()
        for _, key, size in found:
            if self._path(key) is None:
                continue
            if size > self.limit:
                self._unlink(key)
                continue
            self._track(key, size)

    # ----- the cache ---------------------------------------------------------------------
    @property
    def bytes(self) -> int:
        """Chunk bytes held."""
        with self._lock:
            return int(self._index.currsize)

    def __contains__(self, key: ChunkKey) -> bool:
        with self._lock:
            return key in self._index

    def get(self, key: ChunkKey, size: int | None = None) -> bytes | None:
        """The chunk's bytes, or None. ``size``: the length the chunk must have (a file of
        another length is dropped as damaged)."""
        with self._lock:
            if self._index.get(key) is None:
                return None
        path = self._path(key)
        assert path is not None
        try:
            data = path.read_bytes()
        except OSError as exc:
            self._forget(key, exc)
            return None
        if size is not None and len(data) != size:
            log.warning("disk cache: %s has %d bytes, expected %d; dropped", path, len(data), size)
            self._forget(key, None)
            return None
        return data

    def put(self, key: ChunkKey, data: bytes | memoryview) -> None:
        """Keep the chunk (no-op if it is held, too large, or its key is not a plain name)."""
        path = self._path(key)
        if path is None or len(data) > self.limit:
            return
        with self._lock:
            if key in self._index:
                return
        tmp = path.with_name(f"{path.name}.{threading.get_ident()}{_TMP_SUFFIX}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            self._warn_once("write", exc)
            return
        with self._lock:
            if key not in self._index:
                self._track(key, len(data))

    def discard_version(self, bucket: str, nuid: str) -> None:
        """Delete every chunk of one version (it was replaced or deleted)."""
        with self._lock:
            chunks = self._versions.pop((bucket, nuid), set())
            keys = [(bucket, nuid, i) for i in chunks]
            for k in keys:
                self._index.pop(k, None)
        for k in keys:
            self._unlink(k)

    def close(self) -> None:
        """Release the directory's lock (the chunks stay for the next mount)."""
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    # ----- errors ------------------------------------------------------------------------
    def _forget(self, key: ChunkKey, exc: OSError | None) -> None:
        with self._lock:
            if self._index.pop(key, None) is not None:
                self._untrack(key)
        if exc is not None and not isinstance(exc, FileNotFoundError):
            self._warn_once("read", exc)
        self._unlink(key)

    def _warn_once(self, what: str, exc: OSError) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning(
                "disk cache %s: %s failed: %s (further failures are not logged)", self.directory, what, exc
            )
