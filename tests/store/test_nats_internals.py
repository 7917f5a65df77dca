"""The nats-py and asyncio internals the store's fast client leans on, and the path without them.

The store's client (lean publishes, a parser that keeps views, a socket read without copies)
replaces parts of nats-py's ``Client`` and reads asyncio's stream internals. When a release
changes their shape, the client falls back to nats-py's own path (``supported()`` is False)
and the mount is quietly slower, or, where a check is missing, breaks. So:

* :func:`test_the_internals_the_fast_client_uses_have_their_shape` fails LOUDLY, naming every
  attribute, signature and call site that changed, on a real connection to the test server;
* :func:`test_the_plain_nats_py_path_stores_and_reads_back` runs a ``NatsStore`` whose client
  is forced onto nats-py's own path end to end, so the fallback is known to work.

pyproject.toml bounds nats-py to the releases these tests have passed on.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import nats.aio.client
import pytest
import trio
from nats.aio.client import Client
from nats.aio.transport import TcpTransport
from nats.protocol.parser import Parser
from storekit import open_nats_store

from osfs.store.nats import client
from osfs.store.types import BucketConfig, ObjectMeta

CS = 1024  # small chunks: a multi-chunk object stays small


def _params(fn: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(fn).parameters)


def _source(fn: Callable[..., Any]) -> str:
    return inspect.getsource(fn)


def _checks_of_the_client_class() -> list[tuple[str, Callable[[], bool]]]:
    """What the lean publish overrides and calls, and where nats-py reads and writes."""
    return [
        (
            "Client._send_publish(self, subject, reply, payload, payload_size, headers) is a coroutine",
            lambda: (
                inspect.iscoroutinefunction(Client._send_publish)
                and _params(Client._send_publish)
                == ["self", "subject", "reply", "payload", "payload_size", "headers"]
            ),
        ),
        (
            "Client._flush_pending(self, force_flush=...) is a coroutine",
            lambda: (
                inspect.iscoroutinefunction(Client._flush_pending)
                and "force_flush" in _params(Client._flush_pending)
            ),
        ),
        (
            "Client._read_loop reads with self._transport.read(...) and hands it to self._ps.parse(...)",
            lambda: (
                "self._transport.read(" in _source(Client._read_loop)
                and "self._ps.parse(" in _source(Client._read_loop)
            ),
        ),
        (
            "Client._flusher writes the pending pieces with self._transport.writelines(...)",
            lambda: "self._transport.writelines(" in _source(Client._flusher),
        ),
        (
            "nats.aio.client.DEFAULT_BUFFER_SIZE is an int (the read size the store raises)",
            lambda: isinstance(getattr(nats.aio.client, "DEFAULT_BUFFER_SIZE", None), int),
        ),
        (
            "Parser(nc) keeps nc, and reset() sets buf, state, needed, header_needed",
            lambda: {"buf", "state", "needed", "header_needed", "nc"} <= set(vars(Parser(None))),
        ),
        (
            "Parser.parse(self, data) is a coroutine",
            lambda: (
                inspect.iscoroutinefunction(Parser.parse) and _params(Parser.parse)[:2] == ["self", "data"]
            ),
        ),
        (
            "Client._process_msg(sid, subject, reply, data, headers), _process_ping, _process_pong, "
            "_process_info, _process_err are coroutines",
            lambda: (
                all(
                    inspect.iscoroutinefunction(getattr(Client, name, None))
                    for name in (
                        "_process_msg",
                        "_process_ping",
                        "_process_pong",
                        "_process_info",
                        "_process_err",
                    )
                )
                and len(_params(Client._process_msg)) == 6
            ),
        ),
        (
            "TcpTransport.read(self, buffer_size) and TcpTransport.writelines(self, payload) exist",
            lambda: (
                _params(TcpTransport.read)[:2] == ["self", "buffer_size"]
                and len(_params(TcpTransport.writelines)) == 2
            ),
        ),
        (
            "asyncio.StreamReader has _buffer, _eof, _exception, _waiter, _maybe_resume_transport, "
            "_wait_for_data",
            lambda: all(
                hasattr(asyncio.StreamReader(), a)
                for a in (
                    "_buffer",
                    "_eof",
                    "_exception",
                    "_waiter",
                    "_maybe_resume_transport",
                    "_wait_for_data",
                )
            ),
        ),
    ]


def _checks_of_a_connection(nc: Any) -> list[tuple[str, Callable[[], bool]]]:
    """What a connected client holds: pending pieces, its parser, its transport's streams."""
    transport = getattr(nc, "_transport", None)
    reader = getattr(transport, "_io_reader", None)
    writer = getattr(transport, "_io_writer", None)
    sock = getattr(writer, "transport", None)
    return [
        ("client.supported(nc) is True on a connected client", lambda: client.supported(nc) is True),
        ("nc._pending is a list", lambda: isinstance(nc._pending, list)),
        ("nc._pending_data_size is an int", lambda: isinstance(nc._pending_data_size, int)),
        ("nc._max_pending_size is an int", lambda: isinstance(nc._max_pending_size, int)),
        ("nc._flush_queue is an asyncio.Queue", lambda: isinstance(nc._flush_queue, asyncio.Queue)),
        (
            "nc.stats counts out_msgs and out_bytes",
            lambda: isinstance(nc.stats, dict) and {"out_msgs", "out_bytes"} <= set(nc.stats),
        ),
        (
            "nc._ps is the store's ChunkParser, a nats-py Parser",
            lambda: isinstance(nc._ps, client.ChunkParser) and isinstance(nc._ps, Parser),
        ),
        ("nc._transport is exactly a TcpTransport", lambda: type(transport) is TcpTransport),
        (
            "nc._transport._io_reader is an asyncio.StreamReader",
            lambda: isinstance(reader, asyncio.StreamReader),
        ),
        (
            "nc._transport._io_writer is an asyncio.StreamWriter",
            lambda: isinstance(writer, asyncio.StreamWriter),
        ),
        (
            "the reader's _buffer is a bytearray",
            lambda: isinstance(getattr(reader, "_buffer", None), bytearray),
        ),
        (
            "the socket transport is asyncio's _SelectorSocketTransport",
            lambda: type(sock).__name__ == "_SelectorSocketTransport",
        ),
        (
            "the socket transport has _sock (a socket with sendmsg), get/set_protocol, "
            "get_write_buffer_size, is_closing",
            lambda: (
                isinstance(getattr(sock, "_sock", None), socket.socket)
                and all(
                    callable(getattr(sock, a, None))
                    for a in ("get_protocol", "set_protocol", "get_write_buffer_size", "is_closing", "write")
                )
            ),
        ),
        (
            "after connect() the socket is read by the store's receiver and writes are gathered",
            lambda: (
                type(sock.get_protocol()).__name__ == "_Receiver"
                and transport.writelines.__qualname__.startswith("fast_reads")
            ),
        ),
    ]


def _failures(checks: list[tuple[str, Callable[[], bool]]]) -> list[str]:
    failed = []
    for what, check in checks:
        try:
            ok = check()
        except Exception as exc:  # a missing attribute is a changed shape, named below
            failed.append(f"{what}: {type(exc).__name__}: {exc}")
            continue
        if not ok:
            failed.append(what)
    return failed


def test_the_internals_the_fast_client_uses_have_their_shape(nats_url: str) -> None:
    async def main() -> list[str]:
        nc = client.new_client()
        assert type(nc) is not Client, "new_client() fell back to nats-py's own client before connecting"
        await client.connect(nc, servers=[nats_url], allow_reconnect=False)
        try:  # on the loop: a StreamReader is made for the loop it runs on
            failed = _failures(_checks_of_the_client_class()) + _failures(_checks_of_a_connection(nc))
            await nc.publish("internals.check", b"x" * 3000)  # a lean publish goes out whole
            await nc.flush(timeout=10)
            return failed
        finally:
            await nc.close()

    failed = asyncio.run(main())
    if failed:
        pytest.fail(
            f"nats-py {version('nats-py')} or Python's asyncio changed the internals osfs/store relies "
            "on (see the store's nats client module); the store would run on nats-py's own, slower "
            "path. What changed:\n  - " + "\n  - ".join(failed),
            pytrace=False,
        )


def test_the_plain_nats_py_path_stores_and_reads_back(
    nats_url: str, bucket_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``supported()`` False the store runs on nats-py's own client, parser and
    transport: a multi-chunk object goes in and comes back whole, by range and in full, and
    the bucket's listing shows it."""
    made: list[Any] = []
    new_client = client.new_client

    def recording_new_client() -> Any:
        nc = new_client()
        made.append(nc)
        return nc

    monkeypatch.setattr(client, "supported", lambda _nc: False)
    monkeypatch.setattr(client, "new_client", recording_new_client)
    data = os.urandom(CS * 37 + 123)

    async def main() -> None:
        async with open_nats_store(nats_url) as store:
            await store.create_bucket(BucketConfig(bucket_name))
            try:
                info = await store.put(bucket_name, ObjectMeta("dir/big.bin"), data, chunk_size=CS)
                await store.put(bucket_name, ObjectMeta("small"), b"tiny", chunk_size=CS)
                assert info.size == len(data)
                for off, length in ((0, len(data)), (CS - 7, 3 * CS), (len(data) - 100, 500)):
                    assert bytes(await store.read(info, off, length)) == data[off : off + length]
                whole = b"".join([bytes(b) async for b in store.get(info)])
                assert whole == data
                listed = {i.name: i.size for i in await store.list_objects(bucket_name)}
                assert listed == {"dir/big.bin": len(data), "small": 4}
            finally:
                await store.delete_bucket(bucket_name)

    trio.run(main)
    assert made, "the store did not make its client through new_client()"
    for nc in made:
        assert type(nc) is Client, f"expected nats-py's own client, got {type(nc).__name__}"
        assert type(nc._ps) is Parser, f"expected nats-py's own parser, got {type(nc._ps).__name__}"
