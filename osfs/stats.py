"""What a running mount reports about itself: its counters and how they are shown.

* :class:`Counters` are the FUSE adapter's totals (bytes read and written through the
  mount, failed requests), counted where requests are translated (:mod:`osfs.fuse_ops`).
* :func:`snapshot` joins them with the public counters of the core (files published, files
  open for writing: :class:`osfs.openfiles.OpenFiles`) and of the store
  (:meth:`osfs.store.base.ObjectStore.counters`) into one JSON-able dict. The adapter
  answers it as the read-only extended attribute ``user.osfs.stats`` (:data:`STATS_XATTR`)
  on the mount's root, which ``osfs status MOUNTPOINT`` prints.
* :func:`serve_prometheus` serves the same numbers in the Prometheus text format on
  ``127.0.0.1:PORT/metrics`` (``--metrics-port``), as a worker in the mount's nursery.

Counters are plain integers touched only on the trio thread.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from .store.base import ObjectStore

log = logging.getLogger(__name__)

#: The extended attribute of the mount's root that holds :func:`snapshot` as JSON.
STATS_XATTR = "user.osfs.stats"

#: errnos that are answers, not failures (a missing name, a non-empty directory, …).
ANSWERS = frozenset({errno.ENOENT, errno.ENODATA, errno.EEXIST, errno.ENOTEMPTY, errno.ENOTSUP, errno.ERANGE})


@dataclass
class Counters:
    """Totals of the requests the adapter translated since the mount started."""

    started: float = field(default_factory=time.time)
    bytes_read: int = 0
    bytes_written: int = 0
    reads: int = 0
    writes: int = 0
    errors: int = 0
    last_error: str = ""
    #: Requests translated, by operation (answered and failed alike).
    requests: dict[str, int] = field(default_factory=dict)

    def failed(self, op: str, err: int) -> None:
        """Request ``op`` failed with ``err``: counted unless ``err`` is an answer."""
        self.requests[op] = self.requests.get(op, 0) + 1
        if err not in ANSWERS:
            self.errors += 1
            self.last_error = f"{op}: {errno.errorcode.get(err, err)}"

    def answered(self, op: str, result: Any) -> None:
        """Request ``op`` succeeded with ``result``: reads count the bytes returned, writes
        the bytes accepted; every request counts in ``requests``."""
        self.requests[op] = self.requests.get(op, 0) + 1
        if op == "read":
            self.reads += 1
            self.bytes_read += len(result)
        elif op == "write":
            self.writes += 1
            self.bytes_written += result


class Uploads(Protocol):
    """The core's publishing counters (:class:`osfs.openfiles.OpenFiles` has them)."""

    @property
    def published(self) -> int:
        """Files published since the mount started."""
        ...

    @property
    def in_flight(self) -> int:
        """Files open for writing, or publishing at their last close."""
        ...


def snapshot(counters: Counters, uploads: Uploads, store: ObjectStore) -> dict[str, Any]:
    """The mount's numbers as a JSON-able dict.

    Keys: ``uptime_s``, ``bytes_read``, ``bytes_written``, ``reads``, ``writes``,
    ``uploads`` (files published), ``uploads_in_flight`` (files open for writing or still
    publishing),
    ``errors`` (failed requests), ``last_error``, ``requests`` (FUSE requests translated,
    by operation), ``cache_hits``, ``chunk_fetches``,
    ``cache_hit_rate`` (0..1, null before the first read), ``cache_bytes``, ``cache_limit``,
    ``digests_verified`` / ``digest_failures`` (versions read in order whose SHA-256 digest
    matched / did not match), ``disk_cache_hits``, ``disk_cache_bytes`` and
    ``disk_cache_limit`` (0 without ``--disk-cache``).
    """
    c = counters
    s = store.counters()
    hits, fetches = s.cache_hits, s.chunk_fetches
    return {
        "uptime_s": round(time.time() - c.started, 3),
        "bytes_read": c.bytes_read,
        "bytes_written": c.bytes_written,
        "reads": c.reads,
        "writes": c.writes,
        "uploads": uploads.published,
        "uploads_in_flight": uploads.in_flight,
        "errors": c.errors,
        "last_error": c.last_error,
        "requests": dict(c.requests),
        "cache_hits": hits,
        "chunk_fetches": fetches,
        "cache_hit_rate": round(hits / (hits + fetches), 4) if hits + fetches else None,
        "cache_bytes": s.cache_bytes,
        "cache_limit": s.cache_limit,
        "digests_verified": s.verified,
        "digest_failures": s.digest_failures,
        "disk_cache_hits": s.disk_hits,
        "disk_cache_bytes": s.disk_cache_bytes,
        "disk_cache_limit": s.disk_cache_limit,
    }


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


async def serve_prometheus(
    read: Callable[[], dict[str, Any]], mountpoint: str, listeners: list[trio.SocketListener]
) -> None:
    """Serve ``GET /metrics`` on ``listeners`` (bound to loopback by the caller) until
    cancelled; every request is answered with the numbers ``read()`` returns then."""

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
                    body = prometheus_text(read(), mountpoint).encode()
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
