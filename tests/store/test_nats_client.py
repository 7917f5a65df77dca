"""The store's nats-py client: its parser sees what nats-py's parser sees, replies routed
past nats-py arrive intact, and a real connection uses the fast paths (receive blocks,
lean publishes) and still carries every byte, also across a server restart."""

from __future__ import annotations

import asyncio
import json
import os
import random
from typing import Any

import pytest
from nats.aio.client import Client
from nats.errors import ProtocolError
from nats.protocol.parser import Parser

from osfs.config import ConnectOptions
from osfs.store.nats import allocator
from osfs.store.nats import client as nats_client
from osfs.store.nats.conn import Conn
from osfs.store.nats.parse import ChunkParser, parse_headers, route
from osfs.store.nats.read.cache import Landing

KiB = 1024
MiB = 1024 * KiB


class _Recorder:
    """The part of nats-py's client a parser calls; records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, hdr: bytes | None
    ) -> None:
        assert isinstance(data, bytes) and (hdr is None or isinstance(hdr, bytes))
        self.calls.append(("msg", sid, bytes(subject), bytes(reply), data, hdr))

    async def _process_ping(self) -> None:
        self.calls.append(("ping",))

    async def _process_pong(self) -> None:
        self.calls.append(("pong",))

    async def _process_info(self, info: dict) -> None:
        self.calls.append(("info", info))

    async def _process_err(self, err: str) -> None:
        self.calls.append(("err", err))


def _stream(rnd: random.Random, n: int) -> bytes:
    """A server's side of a connection: messages of every kind and size, and control lines."""
    out = bytearray()
    for k in range(n):
        kind = rnd.choice(["msg", "msg", "hmsg", "hmsg", "status", "ping", "pong", "ok", "info", "err"])
        size = rnd.choice([0, 1, 2, 100, 4 * KiB, 128 * KiB + 3, 300 * KiB])
        payload = os.urandom(size)
        reply = rnd.choice(["", f"_INBOX.x.{k}"])
        if kind == "msg":
            out += f"MSG s.{k} {k % 5} {reply} {size}\r\n".replace("  ", " ").encode() + payload + b"\r\n"
        elif kind in ("hmsg", "status"):
            if kind == "hmsg":
                hdr = f"NATS/1.0\r\nNats-Sequence: {k}\r\nNats-Subject: $O.b.C.x\r\n\r\n".encode()
            else:
                hdr = b"NATS/1.0 404 No Messages\r\n\r\n"
                payload = b""
            total = len(hdr) + len(payload)
            line = f"HMSG s.{k} {k % 5} {reply} {len(hdr)} {total}\r\n".replace("  ", " ")
            out += line.encode() + hdr + payload + b"\r\n"
        elif kind == "ping":
            out += b"PING\r\n"
        elif kind == "pong":
            out += b"PONG\r\n"
        elif kind == "ok":
            out += b"+OK\r\n"
        elif kind == "info":
            out += b"INFO " + json.dumps({"server_id": f"S{k}", "max_payload": 1048576}).encode() + b"\r\n"
        else:
            out += b"-ERR 'Stale Connection'\r\n"
    return bytes(out)


def _pieces(rnd: random.Random, data: bytes) -> list[Any]:
    """``data`` cut at random places, as bytes, bytearrays and views into larger buffers."""
    out: list[Any] = []
    pos = 0
    while pos < len(data):
        n = rnd.choice([1, 2, 7, 64, 1000, 64 * KiB, 200 * KiB, 1 * MiB])
        piece = data[pos : pos + n]
        pos += n
        form = rnd.randrange(3)
        if form == 0:
            out.append(piece)
        elif form == 1:
            out.append(bytearray(piece))
        else:
            pad = bytearray(3) + bytearray(piece) + bytearray(5)
            out.append(memoryview(pad)[3 : 3 + len(piece)])
    return out


async def _parse_all(parser: Parser, pieces: list[Any]) -> None:
    for piece in pieces:
        await parser.parse(piece)


@pytest.mark.parametrize("seed", range(12))
def test_chunk_parser_makes_the_same_calls_as_nats_py_in_any_cut(seed: int) -> None:
    rnd = random.Random(seed)
    data = _stream(rnd, 60)
    theirs, ours = _Recorder(), _Recorder()
    asyncio.run(_parse_all(Parser(theirs), [data]))
    asyncio.run(_parse_all(ChunkParser(ours), _pieces(rnd, data)))
    assert [c[0] for c in ours.calls] == [c[0] for c in theirs.calls]
    assert ours.calls == theirs.calls


def test_unknown_protocol_is_a_protocol_error_as_in_nats_py() -> None:
    for parser in (Parser(_Recorder()), ChunkParser(_Recorder())):
        with pytest.raises(ProtocolError):
            asyncio.run(parser.parse(b"PING\r\nBOGUS line\r\n"))


@pytest.mark.parametrize("views", [False, True])
def test_routed_subscriptions_bypass_the_client_and_others_do_not(views: bool) -> None:
    """Routed payloads come whole, or as views (valid during the call) of the pieces fed."""
    rec = _Recorder()
    parser = ChunkParser(rec)
    got: list[tuple[bytes, bytes | None, bytes]] = []

    def handler(subject: bytes, hdr: bytes | None, data: Any) -> None:
        if views:
            assert isinstance(data, list) and all(isinstance(v, memoryview) for v in data)
            data = b"".join(data)
        else:
            assert isinstance(data, bytes)
        got.append((bytes(subject), hdr, data))

    parser.direct[7] = (handler, views)
    hdr = b"NATS/1.0\r\nNats-Sequence: 9\r\n\r\n"
    stream = (
        b"MSG a 7 5\r\nhello\r\n"
        + f"HMSG b 7 {len(hdr)} {len(hdr) + 3}\r\n".encode()
        + hdr
        + b"abc\r\n"
        + b"MSG c 8 2\r\nhi\r\n"
    )
    cuts = [bytearray(stream[:13]), stream[13:40], memoryview(stream)[40:58], stream[58:]]
    asyncio.run(_parse_all(parser, cuts))
    assert got == [(b"a", None, b"hello"), (b"b", hdr, b"abc")]
    assert rec.calls == [("msg", 8, b"c", b"", b"hi", None)]


@pytest.mark.parametrize(
    "raw",
    [
        b"NATS/1.0\r\nNats-Subject: $O.b.C.x\r\nNats-Sequence: 12\r\n"
        b"Nats-Time-Stamp: 2026-01-01T00:00:00Z\r\n\r\n",
        b"NATS/1.0 404 No Messages\r\n\r\n",
        b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\n\r\n",
        b"NATS/1.0 503\r\n\r\n",
        b"NATS/1.0 204 EOB\r\nNats-Num-Pending: 0\r\nNats-Last-Sequence: 40\r\n\r\n",
        b"NATS/1.0\r\nA: 1\r\nA: 2\r\nB:no-space\r\nbad name: x\r\nNats-Msg-Id: \xc3\xa9t\xc3\xa9\r\n\r\n",
        b"NATS/1.0\r\nx\ty: 1\r\nq\x1cr: 2\r\n ok : 3\r\n\xc3\xa9: 4\r\nv\x0bw: 5\r\n\r\n",
        b"NATS/1.0\r\nA: \xc2\x85x\xc2\xa0\r\nB: \x1cv\x1c \r\nC: \xe2\x82\r\n"
        b"D\xff: 1\r\nE: \xff:\xe2\r\n\r\n",
        b"NATS/1.0 409 Bad Thing\r\nF:\x0c\x0b v \t\r\n\r\n",
    ],
)
def test_headers_read_as_nats_py_reads_them(raw: bytes) -> None:
    expected = asyncio.run(Client()._process_headers(raw))
    assert parse_headers(raw) == expected


def test_route_needs_the_chunk_parser() -> None:
    async def main() -> None:  # clients are made on the loop
        assert not route(Client(), 1, lambda _m: None)
        nc = nats_client.new_client()
        assert isinstance(nc._ps, ChunkParser)
        assert route(nc, 1, lambda _m: None) and 1 in nc._ps.direct

    asyncio.run(main())


def test_malloc_thresholds_are_raised_once() -> None:
    assert allocator.tune() is True  # glibc: the CI machines and this one
    assert allocator.tune() is True


def test_a_real_connection_moves_every_byte_through_the_fast_paths(nats_url: str, bucket_name: str) -> None:
    """Messages of every size up to the max payload, published with lean publishes and read
    back by batch Direct Gets through several receive blocks (rolled over and reused)."""
    rnd = random.Random(5)
    sizes = [rnd.choice([0, 1, 1000, 128 * KiB, 1 * MiB - 200, rnd.randrange(1, 1 * MiB)]) for _ in range(48)]
    payloads = [os.urandom(n) for n in sizes]
    stream = f"FAST_{bucket_name}"
    subject = f"fast.{bucket_name}"

    async def main() -> None:
        conn = await Conn.open(ConnectOptions(servers=(nats_url,)))
        try:
            nc = conn.nc
            assert type(nc).__name__ == "_LeanClient" and isinstance(nc._ps, ChunkParser)
            sock = nc._transport._io_writer.transport
            assert type(sock.get_protocol()).__name__ == "_Receiver"
            assert nc._transport.writelines.__name__ == "writelines"  # gathered sends
            assert nc._transport.writelines.__qualname__.startswith("fast_reads")
            await conn.api(
                f"STREAM.CREATE.{stream}", {"name": stream, "subjects": [subject], "allow_direct": True}
            )
            acks = []
            for data in payloads:  # views of a larger buffer: what the upload path publishes
                buf = bytearray(b"x" + data + b"y")
                acks.append(await conn.publish_pipelined(subject, memoryview(bytes(buf))[1:-1]))
            seqs = [(await a)["seq"] for a in acks]
            assert seqs == list(range(seqs[0], seqs[0] + len(payloads)))
            got: list[bytes] = []
            landed = 0
            while len(got) < len(payloads):
                # no landing, one that holds the batch exactly, one that holds half of it
                k = len(got)
                room = sum(sizes[k : k + 7])
                landing = [None, Landing(room), Landing(room // 2)][(k // 7) % 3]
                fut = await conn.batch_get(stream, subject, seqs[0] + k, 7, into=landing)
                msgs = await asyncio.wait_for(fut, 30)
                assert msgs, "a batch came back empty"
                for m in msgs:
                    if isinstance(m.data, memoryview):
                        assert m.data.obj is landing and m.data.readonly
                        landed += 1
                    else:
                        assert isinstance(m.data, bytes)
                got += [bytes(m.data) for m in msgs]
            assert [len(g) for g in got] == sizes
            assert got == payloads
            assert landed >= 7, "payloads were not placed in their landings"
            await conn.api(f"STREAM.DELETE.{stream}", {})
        finally:
            await conn.close()

    asyncio.run(main())


def test_landing_places_payloads_back_to_back_until_full() -> None:
    land = Landing(10, base=100, first=3, count=2)
    a = land.place([memoryview(b"abc"), memoryview(b"de")])
    b = land.place([memoryview(b"fghij")])
    assert bytes(a) == b"abcde" and bytes(b) == b"fghij" and land.filled == 10
    assert a.readonly and a.obj is land and bytes(land) == b"abcdefghij"
    assert land.place([memoryview(b"k")]) is None and land.filled == 10
    assert land.place([]) is not None  # an empty payload always fits


def test_what_a_partial_send_leaves_is_the_rest_in_order() -> None:
    pieces = [b"PUB a 5\r\n", memoryview(b"xhellox")[1:6], b"\r\n", b"", b"PUB b 0\r\n\r\n"]
    whole = b"".join(pieces)
    for sent in range(len(whole) + 1):
        rest = nats_client.unsent(pieces, sent)
        assert b"".join(rest) == whole[sent:]
        assert all(len(p) for p in rest[:1]), "the first piece left is never empty"
