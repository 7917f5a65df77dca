"""What a running mount reports about itself.

* :class:`StatsOps` wraps the pyfuse3 adapter and counts bytes read and written through the
  mount, files published, and failed I/O requests. It answers the read-only extended
  attribute ``user.osfs.stats`` on the mount's root with a JSON object (see :func:`snapshot`),
  which ``osfs status MOUNTPOINT`` prints.
* :func:`serve_prometheus` serves the same numbers in the Prometheus text format on
  ``127.0.0.1:PORT/metrics`` (``--metrics-port``), as a worker in the mount's nursery.

Counters are plain integers touched only on the trio thread.
"""

from __future__ import annotations

import errno
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pyfuse3
import trio

from .fuse_ops import FuseOps

log = logging.getLogger(__name__)

STATS_XATTR = "user.osfs.stats"
_STATS_XATTR_B = STATS_XATTR.encode()

#: errnos that are answers, not failures (a missing name, a non-empty directory, …).
_NOT_FAILURES = {errno.ENOENT, errno.ENODATA, errno.EEXIST, errno.ENOTEMPTY, errno.ENOTSUP, errno.ERANGE}


@dataclass
class Counters:
    """Totals since the mount started."""

    started: float = field(default_factory=time.time)
    bytes_read: int = 0
    bytes_written: int = 0
    reads: int = 0
    writes: int = 0
    uploads: int = 0
    errors: int = 0
    last_error: str = ""


def snapshot(ops: StatsOps) -> dict[str, Any]:
    """The mount's numbers as a JSON-able dict.

    Keys: ``uptime_s``, ``bytes_read``, ``bytes_written``, ``reads``, ``writes``,
    ``uploads`` (files published), ``uploads_in_flight`` (open files with unpublished data),
    ``errors`` (failed I/O requests), ``last_error``, ``cache_hits``, ``chunk_fetches``,
    ``cache_hit_rate`` (0..1, null before the first read), ``cache_bytes``, ``cache_limit``,
    ``digests_verified`` / ``digest_failures`` (versions read in order whose SHA-256 digest
    matched / did not match), ``disk_cache_hits``, ``disk_cache_bytes`` and
    ``disk_cache_limit`` (0 without ``--disk-cache``).
    """
    c = ops.counters
    store = ops.fs.store
    stats = getattr(store, "stats", None)
    hits = int(getattr(stats, "cache_hits", 0))
    fetches = int(getattr(stats, "chunk_fetches", 0))
    return {
        "uptime_s": round(time.time() - c.started, 3),
        "bytes_read": c.bytes_read,
        "bytes_written": c.bytes_written,
        "reads": c.reads,
        "writes": c.writes,
        "uploads": c.uploads,
        "uploads_in_flight": len(getattr(ops.fs, "_writers", {})),
        "errors": c.errors,
        "last_error": c.last_error,
        "cache_hits": hits,
        "chunk_fetches": fetches,
        "cache_hit_rate": round(hits / (hits + fetches), 4) if hits + fetches else None,
        "cache_bytes": int(getattr(store, "cache_bytes", 0)),
        "cache_limit": int(getattr(store, "cache_limit", 0)),
        "digests_verified": int(getattr(stats, "verified", 0)),
        "digest_failures": int(getattr(stats, "digest_failures", 0)),
        "disk_cache_hits": int(getattr(stats, "disk_hits", 0)),
        "disk_cache_bytes": int(getattr(store, "disk_cache_bytes", 0)),
        "disk_cache_limit": int(getattr(store, "disk_cache_limit", 0)),
    }


class StatsOps(FuseOps):
    """:class:`FuseOps` that counts, and answers ``user.osfs.stats`` on the root."""

    def __init__(self, fs: Any) -> None:
        super().__init__(fs)
        self.counters = Counters()

    def _failed(self, op: str, exc: pyfuse3.FUSEError) -> None:
        if exc.errno not in _NOT_FAILURES:
            self.counters.errors += 1
            self.counters.last_error = f"{op}: {errno.errorcode.get(exc.errno, exc.errno)}"

    async def read(self, fh: int, off: int, size: int) -> bytes:
        try:
            data = await super().read(fh, off, size)
        except pyfuse3.FUSEError as exc:
            self._failed("read", exc)
            raise
        self.counters.reads += 1
        self.counters.bytes_read += len(data)
        return data

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        try:
            n = await super().write(fh, off, buf)
        except pyfuse3.FUSEError as exc:
            self._failed("write", exc)
            raise
        self.counters.writes += 1
        self.counters.bytes_written += n
        return n

    async def _publishing(self, op: str, fh: int, call: Any) -> None:
        before = len(getattr(self.fs, "_writers", {}))
        try:
            await call
        except pyfuse3.FUSEError as exc:
            self._failed(op, exc)
            raise
        if len(getattr(self.fs, "_writers", {})) < before:
            self.counters.uploads += 1

    async def flush(self, fh: int) -> None:
        await self._publishing("flush", fh, super().flush(fh))

    async def fsync(self, fh: int, datasync: bool) -> None:
        await self._publishing("fsync", fh, super().fsync(fh, datasync))

    async def release(self, fh: int) -> None:
        await self._publishing("release", fh, super().release(fh))

    async def _counted(self, op: str, call: Any) -> Any:
        try:
            return await call
        except pyfuse3.FUSEError as exc:
            self._failed(op, exc)
            raise

    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: Any) -> Any:
        return await self._counted("create", super().create(parent_inode, name, mode, flags, ctx))

    async def open(self, inode: int, flags: int, ctx: Any) -> Any:
        return await self._counted("open", super().open(inode, flags, ctx))

    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> Any:
        return await self._counted("mkdir", super().mkdir(parent_inode, name, mode, ctx))

    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        await self._counted("unlink", super().unlink(parent_inode, name, ctx))

    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        await self._counted("rmdir", super().rmdir(parent_inode, name, ctx))

    async def getxattr(self, inode: int, name: bytes, ctx: Any) -> bytes:
        if inode == pyfuse3.ROOT_INODE and name == _STATS_XATTR_B:
            return json.dumps(snapshot(self), sort_keys=True).encode()
        return await super().getxattr(inode, name, ctx)

    async def listxattr(self, inode: int, ctx: Any) -> list[bytes]:
        names = await super().listxattr(inode, ctx)
        if inode == pyfuse3.ROOT_INODE:
            names.append(_STATS_XATTR_B)
        return names

    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: Any) -> None:
        if inode == pyfuse3.ROOT_INODE and name == _STATS_XATTR_B:
            raise pyfuse3.FUSEError(errno.EPERM)
        await super().setxattr(inode, name, value, ctx)


# ----- Prometheus ----------------------------------------------------------------------

_HELP = {
    "bytes_read": ("counter", "Bytes returned to readers of the mount."),
    "bytes_written": ("counter", "Bytes accepted from writers to the mount."),
    "reads": ("counter", "Read requests answered."),
    "writes": ("counter", "Write requests answered."),
    "uploads": ("counter", "Files published (objects completed)."),
    "uploads_in_flight": ("gauge", "Open files with data not yet published."),
    "errors": ("counter", "Failed I/O requests."),
    "cache_hits": ("counter", "Chunk reads served from the cache."),
    "chunk_fetches": ("counter", "Chunks fetched from the server."),
    "cache_bytes": ("gauge", "Bytes of chunk data in the cache."),
    "cache_limit": ("gauge", "Bound of the chunk cache in bytes."),
    "digests_verified": ("counter", "Versions read in order whose digest matched."),
    "digest_failures": ("counter", "Versions read in order whose digest did not match."),
    "disk_cache_hits": ("counter", "Chunk reads served from the disk cache."),
    "disk_cache_bytes": ("gauge", "Bytes of chunk data in the disk cache."),
    "disk_cache_limit": ("gauge", "Bound of the disk cache in bytes (0: none)."),
    "uptime_s": ("gauge", "Seconds since the mount started."),
}


def prometheus_text(snap: dict[str, Any], mountpoint: str) -> str:
    """``snap`` in the Prometheus text exposition format (version 0.0.4)."""
    label = mountpoint.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    lines = []
    for key, (kind, text) in _HELP.items():
        value = snap.get(key)
        if value is None:
            continue
        name = f"osfs_{key}_total" if kind == "counter" else f"osfs_{key}"
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f'{name}{{mountpoint="{label}"}} {value}']
    return "\n".join(lines) + "\n"


async def serve_prometheus(ops: StatsOps, mountpoint: str, listeners: list[trio.SocketListener]) -> None:
    """Serve ``GET /metrics`` on ``listeners`` (bound to loopback by the caller) until cancelled."""

    async def handle(stream: trio.SocketStream) -> None:
        try:
            with trio.move_on_after(10):
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 8192:
                    data = await stream.receive_some(4096)
                    if not data:
                        return
                    request += data
                line = request.split(b"\r\n", 1)[0].split()
                if len(line) >= 2 and line[0] == b"GET" and line[1].split(b"?")[0] in (b"/metrics", b"/"):
                    body = prometheus_text(snapshot(ops), mountpoint).encode()
                    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                else:
                    body, head = b"not found\n", b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                head += b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                await stream.send_all(head + body)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.debug("metrics client: %s", exc)
        finally:
            await stream.aclose()

    for listener in listeners:
        host, port = listener.socket.getsockname()[:2]
        log.info("metrics at http://%s:%d/metrics", host, port)
    await trio.serve_listeners(handle, listeners)
