"""nats-py's protocol parser with one copy per payload, and direct delivery of replies.

nats-py's parser copies a message's payload three times: into its buffer, and twice out of
it (``bytes(buf[a:b])``). :class:`ChunkParser` takes its place on the clients the store
makes (:mod:`~osfs.store.nats.client`):

* It parses each piece it is given where it lies (bytes, bytearray or a memoryview: no
  copy into a parser buffer), cuts each payload out with one copy, and keeps a message
  that straddles two pieces as references to them until it is complete. It calls the
  client exactly as nats-py's parser does (``_process_msg``, ``_process_ping`` ...), with
  the same arguments, and raises the same ``ProtocolError`` on bytes it cannot parse.
* :func:`route` delivers the messages of a subscription straight from the parser to a
  plain function: no ``Msg``, no pending queue and no task switch per message, and only
  the few header lines a reply has are parsed (:func:`parse_headers`, which reads them
  as nats-py does). It is meant for the reply inboxes of pipelined requests. With
  ``views=True`` the payload is not even copied out: the function gets views of the
  pieces it lies in, and copies them where it wants them (one copy in all).

The parser keeps the pieces it is given (views, not copies) only until the message they
hold is complete: whoever hands them over must not write to them before the next call.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from nats.aio.client import Client
from nats.errors import ProtocolError
from nats.protocol.parser import MAX_CONTROL_LINE_SIZE, Parser

# nats-py's patterns without their ``\A``: these are matched at an offset (``match(buf, pos)``).
_MSG = re.compile(rb"MSG\s+([^\s]+)\s+([^\s]+)\s+(([^\s]+)[^\S\r\n]+)?(\d+)\r\n")
_HMSG = re.compile(rb"HMSG\s+([^\s]+)\s+([^\s]+)\s+(([^\s]+)[^\S\r\n]+)?([\d]+)\s+(\d+)\r\n")
_OK = re.compile(rb"\+OK\s*\r\n")
_ERR = re.compile(rb"-ERR\s+('.+')?\r\n")
_PING = re.compile(rb"PING\s*\r\n")
_PONG = re.compile(rb"PONG\s*\r\n")
_INFO = re.compile(rb"INFO\s+([^\r\n]+)\r\n")

#: The ASCII bytes that ``str.isspace`` takes for white space.
_SPACE = re.compile(r"[\s\x1c-\x1f]", re.ASCII)

_CONTROL, _PAYLOAD = 1, 2

log = logging.getLogger(__name__)


class Reply(NamedTuple):
    """A message as :func:`route` delivers it (the fields of ``Msg`` that replies use).

    ``data`` is the payload, or, for a route with ``views=True``, the views of the received
    bytes it is made of, in order: valid only during the call.
    """

    subject: str
    headers: dict[str, str] | None
    data: bytes | list[memoryview]


def parse_headers(raw: bytes) -> dict[str, str]:
    """The headers of a message as nats-py reads them: an inline status as ``Status`` and
    ``Description``, then ``Name: value`` lines (the last of repeated names wins; names
    that are not ASCII or hold white space are skipped).

    The lines are decoded as one text (every reply of a listing carries half a dozen
    headers: one decode, not one per value); the separators are ASCII, so this gives what
    decoding each value alone gives."""
    head, _, rest = raw.partition(b"\r\n")
    out: dict[str, str] = {}
    code, _, desc = head[len(b"NATS/1.0") :].strip().partition(b" ")
    if code.isdigit():
        out["Status"] = code.decode()
    if desc.strip():
        out["Description"] = desc.strip().decode("utf-8", "replace")
    names = _names
    for line in rest.decode("utf-8", "replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            key = names[name] if name in names else _header_name(name)
            if key is not None:
                out[key] = value.strip(_BYTES_SPACE)
    return out


#: What ``bytes.strip()`` strips (``str.strip()`` strips more: any Unicode white space).
_BYTES_SPACE = " \t\n\r\x0b\x0c"
#: Header names seen, as read (None: skipped), up to ``_NAMES_KEPT`` of them: the same few
#: names come on every message.
_names: dict[str, str | None] = {}
_NAMES_KEPT = 256


def _header_name(raw: str) -> str | None:
    """The header name in ``raw`` (white space around it dropped), or None when it is empty,
    not ASCII, or holds white space."""
    name = raw.strip(_BYTES_SPACE)
    key = name if name and name.isascii() and _SPACE.search(name) is None else None
    if len(_names) < _NAMES_KEPT:
        _names[raw] = key
    return key


class ChunkParser(Parser):
    """nats-py's protocol parser, with one copy per payload instead of three.

    State between calls: either a partial control line (``self.buf``, a few hundred bytes
    at most) or the pieces of a partial payload (``_pieces``, references, never copied
    until the message is complete).
    """

    def __init__(self, nc: Any = None) -> None:
        #: sid -> (function of (subject, raw headers or None, payload), whether it takes the
        #: payload as views), see :func:`route`.
        self.direct: dict[int, tuple[Callable[[bytes, bytes | None, Any], None], bool]] = {}
        super().__init__(nc)

    def reset(self) -> None:
        super().reset()
        self._pieces: list[memoryview] = []
        self._have = 0

    async def parse(self, data: bytes | bytearray = b"") -> None:
        if not data:
            return
        view = memoryview(data)
        pos = 0
        if self._pieces:
            pos = await self._complete(view)
            if pos < 0:
                return
        elif self.buf:  # a control line cut in two (rare: the line is tiny)
            self.buf.extend(view)
            view = memoryview(bytes(self.buf))
            self.buf = bytearray()
        await self._parse_from(view, pos)

    async def _parse_from(self, view: memoryview, pos: int) -> None:
        size = len(view)  # matched in place: patterns and indexing take a memoryview
        while pos < size:
            if self.state == _PAYLOAD:
                end = pos + self.needed
                if end + 2 > size:
                    self._pieces = [view[pos:]]
                    self._have = size - pos
                    return
                hn = self.header_needed
                hdr = bytes(view[pos : pos + hn]) if hn else None
                body = view[pos + hn : end]
                pos = end + 2
                await self._deliver([body], hdr)
                continue
            m = _HMSG.match(view, pos) if view[pos] == 0x48 else _MSG.match(view, pos)  # 'H'
            if m is not None:
                groups = m.groups()
                self.msg_arg["subject"] = groups[0]
                self.msg_arg["sid"] = int(groups[1])
                self.msg_arg["reply"] = groups[3] or b""
                if len(groups) == 6:
                    self.header_needed = int(groups[4])
                    self.needed = int(groups[5])
                else:
                    self.header_needed = 0
                    self.needed = int(groups[4])
                self.state = _PAYLOAD
                pos = m.end()
                continue
            nxt = await self._control(view, pos)
            if nxt < 0:  # an incomplete line: keep it for the next piece
                self.buf = bytearray(view[pos:])
                if len(self.buf) >= MAX_CONTROL_LINE_SIZE and b"\r\n" in self.buf:
                    raise ProtocolError("nats: unknown protocol")
                return
            pos = nxt

    async def _control(self, data: memoryview, pos: int) -> int:
        """Handle the control line at ``pos`` other than (H)MSG; its end, or -1 if incomplete."""
        m = _OK.match(data, pos)
        if m is not None:
            return m.end()
        m = _ERR.match(data, pos)
        if m is not None:
            await self.nc._process_err(m.group(1).decode().lower() if m.group(1) else "")
            return m.end()
        m = _PING.match(data, pos)
        if m is not None:
            await self.nc._process_ping()
            return m.end()
        m = _PONG.match(data, pos)
        if m is not None:
            await self.nc._process_pong()
            return m.end()
        m = _INFO.match(data, pos)
        if m is not None:
            await self.nc._process_info(json.loads(m.group(1).decode()))
            return m.end()
        line_end = bytes(data[pos : pos + MAX_CONTROL_LINE_SIZE]).find(b"\r\n")
        if line_end >= 0:
            raise ProtocolError("nats: unknown protocol")
        return -1

    async def _complete(self, view: memoryview) -> int:
        """Add ``view`` to the partial payload; the offset after it once complete, else -1."""
        want = self.needed + 2 - self._have
        if len(view) < want:
            self._pieces.append(view)
            self._have += len(view)
            return -1
        pieces = self._pieces
        pieces.append(view[:want])
        self._pieces, self._have = [], 0
        hn = self.header_needed
        hdr = b"".join(_views(pieces, 0, hn)) if hn else None
        await self._deliver(_views(pieces, hn, self.needed), hdr)
        return want

    async def _deliver(self, body: list[memoryview], hdr: bytes | None) -> None:
        """Hand over the message whose payload is the concatenation of ``body``."""
        arg = self.msg_arg
        self.state = _CONTROL
        self.header_needed = 0
        entry = self.direct.get(arg["sid"])
        if entry is None:
            await self.nc._process_msg(arg["sid"], arg["subject"], arg["reply"], _joined(body), hdr)
            return
        handler, views = entry
        try:
            handler(arg["subject"], hdr, body if views else _joined(body))
        except Exception:  # the read loop must go on
            log.exception("handling a reply on %r", arg["subject"])


def _joined(body: list[memoryview]) -> bytes:
    """The bytes of ``body``'s views, copied once."""
    return bytes(body[0]) if len(body) == 1 else b"".join(body)


def _views(pieces: list[memoryview], start: int, stop: int) -> list[memoryview]:
    """Views of bytes ``[start, stop)`` of the concatenation of ``pieces`` (no copy)."""
    if len(pieces[0]) >= stop:
        return [pieces[0][start:stop]]
    parts = []
    pos = 0
    for piece in pieces:
        lo, hi = max(start - pos, 0), min(stop - pos, len(piece))
        if lo < hi:
            parts.append(piece[lo:hi])
        pos += len(piece)
        if pos >= stop:
            break
    return parts


def route(nc: Client, sid: int, handler: Callable[[Reply], None], *, views: bool = False) -> bool:
    """Deliver subscription ``sid``'s messages to ``handler`` from the parser, in order.

    Returns False (and changes nothing) when ``nc``'s parser is nats-py's own: the caller's
    nats-py callback then keeps delivering. ``handler`` runs on the read loop and must not
    block; an exception it raises is logged. With ``views``, ``Reply.data`` is the list of
    views the payload lies in, valid only during the call: the handler copies what it keeps
    (a view it kept would only keep a receive block from being reused). The route outlives
    reconnects (nats-py keeps the sid); it is meant for subscriptions that last as long as
    the connection.
    """
    ps = getattr(nc, "_ps", None)
    if not isinstance(ps, ChunkParser):
        return False

    def deliver(subject: bytes, hdr: bytes | None, payload: Any) -> None:
        handler(Reply(subject.decode(), parse_headers(hdr) if hdr else None, payload))

    ps.direct[sid] = (deliver, views)
    return True
