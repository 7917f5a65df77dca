"""Opening the NATS store for a command (``osfs mount``, ``osfs bucket``), within a deadline.

The first connect is bounded as a whole: some failures (a TLS handshake the client refuses)
leave nats-py's own connect waiting forever. When the deadline passes, the last error the
client reported is named in the message, so a wrong CA reads as a certificate error and not
as a timeout.
"""

from __future__ import annotations

import logging

import trio

from .config import ConnectOptions
from .store import errors as store_errors
from .store.base import ObjectStore

#: The store's connection logger; it reports the client's errors at DEBUG as "NATS client error: …".
_CONN_LOGGER = "osfs.store.nats_conn"
_CLIENT_ERROR = "NATS client error: "


class ConnectError(Exception):
    """The store could not be opened; the message is one line, without secrets."""


class _LastClientError(logging.Filter):
    """Remembers the client's last error report; lets through only what would pass anyway."""

    def __init__(self, passes: int) -> None:
        super().__init__()
        self.passes = passes
        self.last = ""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if msg.startswith(_CLIENT_ERROR):
            self.last = msg[len(_CLIENT_ERROR) :]
        return record.levelno >= self.passes

    @property
    def hopeless(self) -> bool:
        """A TLS failure: trying again gives the same answer."""
        return self.last.startswith(("SSL", "CertificateError"))


def connect_deadline(opts: ConnectOptions) -> float:
    """Seconds the first connect may take: a few tries of each server, then an answer."""
    return opts.connect_timeout * 3 * max(1, len(opts.servers)) + opts.request_timeout


def _one_line(text: str) -> str:
    return " ".join(text.split())


async def open_store(opts: ConnectOptions, *, cache_size: int) -> ObjectStore:
    """Connect and check that JetStream answers; ``ConnectError`` otherwise."""
    from .store.nats_store import NatsStore

    where = ",".join(opts.servers)
    logger = logging.getLogger(_CONN_LOGGER)
    watcher = _LastClientError(logger.getEffectiveLevel())
    old_level = logger.level
    logger.addFilter(watcher)
    logger.setLevel(logging.DEBUG)
    stores: list[ObjectStore] = []
    failures: list[store_errors.StoreError] = []

    async def connect(cancel: trio.CancelScope) -> None:
        try:
            stores.append(await NatsStore.connect(opts, cache_size=cache_size))
        except store_errors.StoreError as exc:
            failures.append(exc)
        cancel.cancel()

    try:
        with trio.move_on_after(connect_deadline(opts)) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(connect, nursery.cancel_scope)
                while not watcher.hopeless:
                    await trio.sleep(0.05)
                scope.cancel()
    finally:
        logger.removeFilter(watcher)
        logger.setLevel(old_level)
    if failures:
        text = _one_line(str(failures[0]))
        if not text.startswith("cannot connect"):
            text = f"cannot connect to {where}: {text}"
        raise ConnectError(text) from failures[0]
    if not stores:
        why = _one_line(watcher.last) or "no answer"
        raise ConnectError(f"cannot connect to {where}: {why}")
    store = stores[0]
    try:
        await store.account_usage()
    except store_errors.StoreError as exc:
        await store.close()
        raise ConnectError(f"JetStream is not available on {where}: {_one_line(str(exc))}") from exc
    return store
