"""Opening the NATS store for a command (``osfs mount``, ``osfs bucket``).

The store's own connect is bounded (every try of every server, and a refused TLS handshake
ends it at once); this adds the check that JetStream answers (waiting up to the connect
timeout while it answers "unavailable", as a cluster that is still starting does) and turns
both failures into one line without secrets.
"""

from __future__ import annotations

import trio

from .config import ConnectOptions
from .store import errors as store_errors
from .store.base import ObjectStore
from .store.disk_cache import DiskCache

#: Pause between checks of a JetStream that answers "unavailable" (seconds).
JETSTREAM_RETRY = 0.5


class ConnectError(Exception):
    """The store could not be opened; the message is one line, without secrets."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


async def open_store(
    opts: ConnectOptions, *, cache_size: int, disk_cache: DiskCache | None = None
) -> ObjectStore:
    """Connect and check that JetStream answers; ``ConnectError`` otherwise. The store
    owns ``disk_cache`` from then on (closed with it, or here on failure)."""
    from .store.nats.store import NatsStore

    where = ",".join(opts.servers)
    try:
        store = await NatsStore.connect(opts, cache_size=cache_size, disk_cache=disk_cache)
    except store_errors.StoreError as exc:
        text = _one_line(str(exc))
        if not text.startswith("cannot connect"):
            text = f"cannot connect to {where}: {text}"
        raise ConnectError(text) from exc
    try:
        await _jetstream_answers(store, opts.connect_timeout)
    except store_errors.StoreError as exc:
        await store.close()
        raise ConnectError(f"JetStream is not available on {where}: {_one_line(str(exc))}") from exc
    return store


async def _jetstream_answers(store: ObjectStore, patience: float) -> None:
    """Return once JetStream answers; ``Unavailable`` answers (a cluster still electing its
    meta leader, a server still recovering its streams) are retried for ``patience``
    seconds, any other error is raised at once."""
    deadline = trio.current_time() + patience
    while True:
        try:
            await store.account_usage()
            return
        except store_errors.Unavailable:
            if trio.current_time() + JETSTREAM_RETRY > deadline:
                raise
        await trio.sleep(JETSTREAM_RETRY)
