"""The store's nats-py client: lean publishes and a socket read without copies.

nats-py copies every payload it sends twice before the socket (``PUB`` line + payload +
CRLF in one new ``bytes``, then once more when its flusher joins what is pending), and
every payload it receives twice before the parser (into an asyncio stream reader's buffer,
then ``bytes(buffer[:n])`` out of it). The mount moves every byte of every file through
here, so :func:`new_client` makes a client that does neither:

* its publishes queue the ``PUB`` line (``HPUB`` line and header block when there are
  plain headers, such as a chunk's ``Nats-Msg-Id``), the payload itself and the CRLF as
  separate pieces (the payload must not change afterwards: the store's chunks are
  immutable ``bytes`` or views of them);
* after :func:`connect` (and after every reconnect, :func:`fast_reads`), a plain TCP
  socket is read by a :class:`_Receiver`: ``recv_into`` large blocks that the parser
  (:class:`~osfs.store.nats.parse.ChunkParser`) reads in place, and what the flusher
  writes goes out with one ``sendmsg`` of the pieces as they are (Python 3.11's
  ``writelines`` joins them first). A TLS socket hands over its stream reader's whole
  buffer instead of copying out of it.

This relies on nats-py and asyncio internals (``Client._ps``, ``_pending``,
``TcpTransport._io_reader``, ``StreamReader._buffer``, the socket transport's ``_sock``
...). :func:`supported` checks they have the expected shape; when they do not, the client
is nats-py's own, unchanged (and a socket transport without ``_sock`` keeps asyncio's
``writelines``).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
from typing import Any

from nats.aio.client import Client
from nats.aio.transport import TcpTransport
from nats.protocol.parser import Parser

from .parse import ChunkParser


def supported(nc: Any) -> bool:
    """Whether ``nc`` and asyncio have the internals this module relies on."""
    reader = asyncio.StreamReader()
    return (
        isinstance(nc, Client)
        and isinstance(getattr(nc, "_ps", None), Parser)
        and isinstance(getattr(nc, "_pending", None), list)
        and hasattr(nc, "_pending_data_size")
        and all(hasattr(reader, a) for a in ("_buffer", "_eof", "_exception", "_waiter"))
        and hasattr(reader, "_maybe_resume_transport")
        and hasattr(reader, "_wait_for_data")
    )


class _LeanClient(Client):
    """nats-py's client, publishing without copying the payload."""

    async def _send_publish(
        self, subject: str, reply: str, payload: Any, payload_size: int, headers: Any
    ) -> None:
        if not subject or (headers is not None and not _plain_headers(headers)):
            await super()._send_publish(subject, reply, payload, payload_size, headers)
            return
        if headers is None:
            parts: tuple[bytes, ...] = (f"PUB {subject} {reply} {payload_size}\r\n".encode(),)
        else:
            hdr = "NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            head = hdr.encode()
            line = f"HPUB {subject} {reply} {len(head)} {len(head) + payload_size}\r\n".encode()
            parts = (line, head)
        self.stats["out_msgs"] += 1
        self.stats["out_bytes"] += payload_size
        self._pending += (*parts, payload, b"\r\n")
        self._pending_data_size += sum(len(p) for p in parts) + payload_size + 2
        if self._max_pending_size > 0 and self._pending_data_size > self._max_pending_size:
            await self._flush_pending(force_flush=True)
        if self._flush_queue is not None and self._flush_queue.empty():
            await self._flush_pending()


def _plain_headers(headers: dict[str, str]) -> bool:
    """Whether ``headers`` can go out as given (ASCII tokens, no line breaks or colons in
    keys); others take nats-py's own path, which checks and cleans them."""
    return all(
        k.isascii()
        and k.isprintable()
        and ":" not in k
        and " " not in k
        and k
        and v.isascii()
        and v.isprintable()
        and "\r" not in v
        and "\n" not in v
        for k, v in headers.items()
    )


def new_client() -> Client:
    """A client for :func:`connect`: lean publishes and a :class:`ChunkParser`, or
    nats-py's own client where its internals are not what this module expects."""
    nc = _LeanClient()
    if not supported(nc):
        return Client()
    nc._ps = ChunkParser(nc)
    return nc


async def connect(nc: Client, **options: Any) -> Client:
    """``nc.connect(**options)``, then :func:`fast_reads`; returns ``nc`` (as ``nats.connect``)."""
    await nc.connect(**options)
    fast_reads(nc)
    return nc


def fast_reads(nc: Client) -> None:
    """Make ``nc``'s current TCP transport hand over what it receives without copying it,
    and send what it is given without joining it first.

    A plain socket is switched to a :class:`_Receiver` (received straight into blocks the
    parser reads in place), and its writes go out gathered (:func:`_send_gathered`); a TLS
    one hands over its stream reader's buffer instead of copying out of it. Call after
    connecting and after every reconnect (nats-py makes a new transport). Does nothing
    unless the client's parser is a :class:`ChunkParser` (only it may keep references to
    what it is given).
    """
    transport = getattr(nc, "_transport", None)
    if not isinstance(nc._ps, ChunkParser) or type(transport) is not TcpTransport:
        return
    reader, writer = transport._io_reader, transport._io_writer
    if reader is None or writer is None or getattr(transport, "_osfs_reader", None) is reader:
        return
    # nats-py reuses the transport object across reconnects, with a new reader each time:
    # a read for an older reader falls back to nats-py's own.
    sock = writer.transport
    stream = sock.get_protocol()
    plain = type(sock).__name__ == "_SelectorSocketTransport"
    if plain and isinstance(stream, asyncio.StreamReaderProtocol):
        receiver = _Receiver(stream, reader, sock)
        sock.set_protocol(receiver)
        take = receiver.read
    else:
        take = functools.partial(_take_buffer, reader)

    async def read(size: int) -> bytes | bytearray | memoryview:
        if transport._io_reader is not reader:
            return await TcpTransport.read(transport, size)
        return await take()

    transport.read = read  # type: ignore[method-assign]
    transport._osfs_reader = reader  # type: ignore[attr-defined]
    raw = getattr(sock, "_sock", None)
    if plain and hasattr(raw, "sendmsg"):

        def writelines(pieces: list[Any]) -> None:
            if transport._io_writer is not writer:  # an older connection's writer
                TcpTransport.writelines(transport, pieces)
            else:
                _send_gathered(sock, raw, pieces)

        transport.writelines = writelines  # type: ignore[method-assign]


#: Pieces sent with one ``sendmsg`` at most (well under the system's IOV_MAX of 1024).
GATHER_MAX = 512


def _send_gathered(sock: Any, raw: socket.socket, pieces: list[Any]) -> None:
    """``sock.writelines(pieces)`` without joining the pieces into one copy first.

    When the transport has nothing buffered (so nothing may go before these), the pieces go
    to the socket as they are in one ``sendmsg``; only what the socket does not take is
    joined and handed to the transport, which sends it when it can. Otherwise (bytes
    still buffered, a closing transport, too many pieces) it is the transport's own
    ``writelines``. Errors are left to the transport, which meets them on its next send.
    """
    if sock.get_write_buffer_size() or sock.is_closing() or len(pieces) > GATHER_MAX:
        sock.writelines(pieces)
        return
    try:
        sent = raw.sendmsg(pieces)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        sock.writelines(pieces)  # the transport sees the error and closes as usual
        return
    rest = unsent(pieces, sent)
    if rest:
        sock.write(b"".join(rest))


def unsent(pieces: list[Any], sent: int) -> list[Any]:
    """What is left of ``pieces`` after their first ``sent`` bytes went out (views, no copy)."""
    for k, piece in enumerate(pieces):
        if sent < len(piece):
            return [memoryview(piece)[sent:] if sent else piece, *pieces[k + 1 :]]
        sent -= len(piece)
    return []


async def _take_buffer(reader: asyncio.StreamReader, _size: int = -1) -> bytes | bytearray:
    """What ``reader`` holds (waiting for something), without copying it out."""
    if reader._exception is not None:
        raise reader._exception
    if not reader._buffer and not reader._eof:
        await reader._wait_for_data("read")
    buf = reader._buffer
    reader._buffer = bytearray()  # the parser owns the old one now: nobody writes to it
    reader._maybe_resume_transport()
    return buf


#: Size of the blocks a :class:`_Receiver` reads the socket into.
RECV_BLOCK = 4 * 1024 * 1024
#: A block with less room than this left is retired for a new one.
RECV_MIN_ROOM = 256 * 1024
#: Received bytes not yet read past which reading from the socket pauses.
RECV_LIMIT = 8 * 1024 * 1024


class _Receiver(asyncio.BufferedProtocol):
    """The socket's protocol in place of asyncio's stream protocol: bytes are received
    into large blocks (``recv_into``) and :meth:`read` returns views of them.

    A block is written front to back, and used again only when nobody holds a view of it
    any more (its reference count says so): views handed out stay valid while held.
    Connection events (end of stream, loss) and write flow control still go to the stream
    protocol, so nats-py's reader and writer see them as before. Bytes that arrive while
    a read started before the switch waits on the stream reader are fed to that reader.
    """

    def __init__(
        self, stream: asyncio.StreamReaderProtocol, reader: asyncio.StreamReader, sock: asyncio.Transport
    ) -> None:
        self._stream = stream
        self._reader = reader
        self._sock = sock
        self._block = bytearray(RECV_BLOCK)
        #: The block before: used again once nobody holds a view of it (saves zeroing a new one).
        self._spare: bytearray | None = None
        self._start = 0  # first byte not read yet
        self._end = 0  # end of the bytes received
        self._ready: asyncio.Future[None] | None = None
        self._paused = False

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self._block) - self._end < RECV_MIN_ROOM:
            n = self._end - self._start  # unread: moves to the next block
            block = self._spare if n + RECV_MIN_ROOM <= RECV_BLOCK else None
            if block is None or sys.getrefcount(block) > 3:  # a view of it is still held
                block = bytearray(max(RECV_BLOCK, n + RECV_MIN_ROOM))
            with memoryview(self._block) as whole, whole[self._start : self._end] as unread:
                block[:n] = unread
            old = self._block
            self._block, self._start, self._end = block, 0, n
            self._spare = old if len(old) == RECV_BLOCK else None
        return memoryview(self._block)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        if self._reader._waiter is not None:  # a read from before the switch
            self._reader.feed_data(bytes(memoryview(self._block)[self._start : self._end]))
            self._start = self._end
            return
        self._wake()
        if not self._paused and self._end - self._start > RECV_LIMIT:
            self._paused = True
            self._sock.pause_reading()

    def _wake(self) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def eof_received(self) -> bool | None:
        try:
            return self._stream.eof_received()
        finally:
            self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self._stream.connection_lost(exc)
        finally:
            self._wake()

    def pause_writing(self) -> None:
        self._stream.pause_writing()

    def resume_writing(self) -> None:
        self._stream.resume_writing()

    async def read(self, _size: int = -1) -> bytes | bytearray | memoryview:
        """Everything received and not read yet (waits for something); b"" at the end."""
        reader = self._reader
        if reader._buffer:  # received before the switch
            return await _take_buffer(reader)
        while self._start == self._end:
            if reader._exception is not None:
                raise reader._exception
            if reader._eof:
                return b""
            self._ready = asyncio.get_running_loop().create_future()
            await self._ready
        view = memoryview(self._block)[self._start : self._end]
        self._start = self._end
        if self._paused:
            self._paused = False
            self._sock.resume_reading()
        return view
