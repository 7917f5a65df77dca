"""Opening the NATS store for a command (``osfs mount``, ``osfs bucket``).

The store's own connect is bounded (every try of every server, and a refused TLS handshake
ends it at once); this adds the check that JetStream answers and turns both failures into
one line without secrets.
"""

from __future__ import annotations

from .config import ConnectOptions
from .store import errors as store_errors
from .store.base import ObjectStore


class ConnectError(Exception):
    """The store could not be opened; the message is one line, without secrets."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


async def open_store(opts: ConnectOptions, *, cache_size: int) -> ObjectStore:
    """Connect and check that JetStream answers; ``ConnectError`` otherwise."""
    from .store.nats_store import NatsStore

    where = ",".join(opts.servers)
    try:
        store = await NatsStore.connect(opts, cache_size=cache_size)
    except store_errors.StoreError as exc:
        text = _one_line(str(exc))
        if not text.startswith("cannot connect"):
            text = f"cannot connect to {where}: {text}"
        raise ConnectError(text) from exc
    try:
        await store.account_usage()
    except store_errors.StoreError as exc:
        await store.close()
        raise ConnectError(f"JetStream is not available on {where}: {_one_line(str(exc))}") from exc
    return store
