"""The NATS connection of :class:`~osfs.store.nats.store.NatsStore` (asyncio side only).

Everything here runs on the bridge's asyncio loop. :class:`Conn` owns the nats-py client and
offers the few primitives the store is built from, each with a timeout and with nats errors
mapped to :mod:`osfs.store.errors` in one place (:func:`map_error`):

* ``api(subject, body)``: a ``$JS.API.*`` request, JSON in, JSON out;
* ``direct_get(stream, body)`` / ``last_msg(stream, subject)``: Direct Get (with the
  ``STREAM.MSG.GET`` fallback for streams without ``allow_direct``);
* ``publish(subject, data, headers)``: a JetStream publish that waits for its ack.

The first connect tries each server ``INITIAL_ATTEMPTS`` times and then fails with
``Unavailable``; once connected the client reconnects forever (``max_reconnect_attempts``
-1), so a server restart makes calls fail with ``Unavailable`` for a while instead of
wedging the store.

It is one module of near 600 lines because every primitive shares the client's state
(the ack and batch routing tables, the reconnect count, the ``no_direct`` set) and the one
error mapping: split, each part would reach into the others' private state.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nats
import nats.aio.client
import nats.errors
import nats.js.api
import nats.js.errors
from nats.aio.msg import Msg

from ..errors import (
    BucketNotFound,
    Conflict,
    NoSpace,
    NotFound,
    Sealed,
    StaleRevision,
    StoreError,
    TooLarge,
    Unavailable,
)
from . import client as nats_client
from . import parse as nats_parse
from . import wire
from .options import ConnectOptions
from .read.cache import Landing

log = logging.getLogger(__name__)

API = "$JS.API."

#: Tries of each server before the first connect fails (later reconnects never stop).
INITIAL_ATTEMPTS = 2

#: Socket read size of nats-py (its ``DEFAULT_BUFFER_SIZE``, 32 KiB as shipped). nats-py
#: reads and parses the socket in pieces of this size, and pauses reading while its stream
#: buffer holds twice as much: at 32 KiB a 1 MiB chunk takes 32 reads and as many parser
#: passes and epoll re-registrations. Raised (never lowered) before every connect.
READ_BUFFER = 1024 * 1024


def _raise_read_buffer() -> None:
    if getattr(nats.aio.client, "DEFAULT_BUFFER_SIZE", READ_BUFFER) < READ_BUFFER:
        nats.aio.client.DEFAULT_BUFFER_SIZE = READ_BUFFER


#: JetStream API error codes (``err_code``) and what they mean to the store.
_ERR_CODES: dict[int, type[StoreError]] = {
    10059: BucketNotFound,  # stream not found
    10058: Conflict,  # stream name already in use with a different configuration
    10047: NoSpace,  # insufficient resources
    10028: NoSpace,  # insufficient storage resources available
    10023: NoSpace,  # insufficient resources (clustered)
    10027: NoSpace,  # maximum streams exceeded
    10109: Sealed,  # stream sealed (purge/delete refused)
    10037: NotFound,  # no message found
    10044: NotFound,  # consumer not found
    10077: NoSpace,  # maximum messages exceeded
    10071: StaleRevision,  # wrong last sequence (Nats-Expected-Last-Subject-Sequence)
}

_TEXT_HINTS: tuple[tuple[str, type[StoreError]], ...] = (
    ("stream not found", BucketNotFound),
    ("maximum bytes exceeded", NoSpace),
    ("maximum messages exceeded", NoSpace),
    ("insufficient", NoSpace),
    ("resource limits exceeded", NoSpace),
    ("storage", NoSpace),
    ("sealed", Sealed),
    ("message size exceeds", TooLarge),
    ("maximum payload", TooLarge),
    ("no message found", NotFound),
    ("already in use", Conflict),
)


def api_error(err: dict) -> StoreError:
    """The store error for a JetStream API ``error`` object."""
    code = err.get("err_code")
    desc = str(err.get("description", "")) or "JetStream error"
    if isinstance(code, int) and code in _ERR_CODES:
        return _ERR_CODES[code](desc)
    low = desc.lower()
    for hint, cls in _TEXT_HINTS:
        if hint in low:
            return cls(desc)
    if err.get("code") == 503:
        return Unavailable(desc)
    return StoreError(f"{desc} (code {err.get('code')}, err_code {code})")


def map_error(exc: BaseException) -> BaseException:
    """Translate an exception from nats-py into a store error (others pass through)."""
    if isinstance(exc, StoreError | asyncio.CancelledError):
        return exc
    if isinstance(exc, nats.js.errors.APIError):
        return api_error({"code": exc.code, "err_code": exc.err_code, "description": exc.description or ""})
    if isinstance(
        exc,
        nats.errors.TimeoutError
        | asyncio.TimeoutError
        | nats.errors.NoRespondersError
        | nats.errors.ConnectionClosedError
        | nats.errors.ConnectionDrainingError
        | nats.errors.ConnectionReconnectingError
        | nats.errors.OutboundBufferLimitError
        | nats.errors.StaleConnectionError
        | nats.errors.NoServersError
        | ConnectionError
        | OSError,
    ):
        return Unavailable(f"NATS unavailable: {type(exc).__name__}: {exc}")
    if isinstance(exc, nats.errors.MaxPayloadError):
        return TooLarge(f"message larger than the server's max_payload: {exc}")
    if isinstance(exc, nats.errors.Error):
        return StoreError(f"{type(exc).__name__}: {exc}")
    return exc


def connect_deadline(opts: ConnectOptions) -> float:
    """Seconds the first connect may take: every try of every server, then an answer."""
    return opts.connect_timeout * (INITIAL_ATTEMPTS + 1) * max(1, len(opts.servers)) + opts.request_timeout


def _tls_context(opts: ConnectOptions) -> ssl.SSLContext | None:
    if not (opts.tls_ca or opts.tls_cert):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=opts.tls_ca)
    if opts.tls_cert:
        ctx.load_cert_chain(opts.tls_cert, opts.tls_key)
    return ctx


def connect_kwargs(opts: ConnectOptions) -> dict[str, Any]:
    """Keyword arguments of ``nats.connect`` for ``opts`` (servers must be non-empty)."""
    kw: dict[str, Any] = {
        "servers": list(opts.servers),
        "name": opts.name,
        "connect_timeout": opts.connect_timeout,
        "max_reconnect_attempts": INITIAL_ATTEMPTS,
        "reconnect_time_wait": 0.5,
        "allow_reconnect": True,
        "pending_size": 64 * 1024 * 1024,
    }
    if opts.user is not None:
        kw["user"] = opts.user
        kw["password"] = opts.password or ""
    if opts.token is not None:
        kw["token"] = opts.token
    if opts.creds_file:
        kw["user_credentials"] = opts.creds_file
    if opts.nkey_seed_file:
        kw["nkeys_seed"] = opts.nkey_seed_file
    tls = _tls_context(opts)
    if tls is not None:
        kw["tls"] = tls
    return kw


class _NoResponders(Exception):
    """Nobody answered a Direct Get: the stream is missing or has no ``allow_direct``."""


@dataclass(frozen=True)
class RawMsg:
    """A stored message as read by Direct Get or MSG.GET (``data`` is a read-only view of a
    :class:`~osfs.store.nats.read.cache.Landing` when the batch get was given one)."""

    subject: str
    seq: int
    data: bytes | memoryview
    time: str
    headers: dict[str, str]


class Conn:
    """The nats-py client plus timed, error-mapped JetStream primitives (asyncio side)."""

    def __init__(self, nc: nats.NATS, timeout: float) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=timeout)
        self.timeout = timeout
        self.no_direct: set[str] = set()
        self.reconnects = 0
        self._ack_prefix: str | None = None
        self._ack_seq = 0
        self._acks: dict[str, asyncio.Future[dict]] = {}
        self._batch_prefix: str | None = None
        self._batches: dict[str, tuple[asyncio.Future, list[RawMsg], Landing | None]] = {}
        self.closing = False

    @classmethod
    async def open(cls, opts: ConnectOptions) -> Conn:
        holder: list[Conn] = []

        client = nats_client.new_client()

        async def on_reconnect() -> None:
            log.info("reconnected to NATS")
            nats_client.fast_reads(client)
            if holder:
                holder[0].reconnects += 1

        async def on_disconnect() -> None:
            if holder and not holder[0].closing:
                log.warning("disconnected from NATS")

        # nats-py reports a refused TLS handshake only to error_cb and then keeps waiting
        # (it never returns from connect), so the first such error ends the attempt.
        hopeless: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()

        async def on_error(exc: Exception) -> None:
            log.debug("NATS client error: %r", exc)
            if isinstance(exc, ssl.SSLError | ssl.CertificateError) and not hopeless.done():
                hopeless.set_result(exc)

        where = ", ".join(opts.servers)
        _raise_read_buffer()
        attempt = asyncio.ensure_future(
            nats_client.connect(
                client,
                **connect_kwargs(opts),
                reconnected_cb=on_reconnect,
                disconnected_cb=on_disconnect,
                error_cb=on_error,
            )
        )
        try:
            done, _ = await asyncio.wait(
                {attempt, hopeless}, timeout=connect_deadline(opts), return_when=asyncio.FIRST_COMPLETED
            )
            if attempt not in done:
                attempt.cancel()
                why = (
                    f"{type(hopeless.result()).__name__}: {hopeless.result()}"
                    if hopeless.done()
                    else "no answer"
                )
                raise Unavailable(f"cannot connect to {where}: {why}")
            nc = attempt.result()
        except asyncio.CancelledError:
            attempt.cancel()
            raise
        except StoreError:
            raise
        except Exception as exc:
            raise Unavailable(f"cannot connect to {where}: {type(exc).__name__}: {exc}") from exc
        nc.options["max_reconnect_attempts"] = -1  # once connected, never give up
        conn = cls(nc, opts.request_timeout)
        holder.append(conn)
        return conn

    async def close(self) -> None:
        self.closing = True
        if not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.close(), self.timeout)
            except Exception as exc:  # closing is best effort
                log.debug("closing NATS connection: %r", exc)

    def check_open(self) -> None:
        if self.nc.is_closed:
            raise Unavailable("store is closed")

    async def request(self, subject: str, payload: bytes = b"", headers: dict | None = None) -> Msg:
        self.check_open()
        try:
            return await self.nc.request(subject, payload, timeout=self.timeout, headers=headers)
        except BaseException as exc:
            raise map_error(exc) from exc

    async def api(self, subject: str, body: dict | None = None) -> dict:
        """A ``$JS.API.<subject>`` request; raises the mapped error of an error reply."""
        payload = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        msg = await self.request(API + subject, payload)
        try:
            reply = json.loads(msg.data)
        except ValueError as exc:
            raise StoreError(f"bad JetStream API reply to {subject}") from exc
        if "error" in reply:
            raise api_error(reply["error"])
        return reply

    async def publish(self, subject: str, data: bytes, headers: dict | None = None) -> dict:
        """A JetStream publish; returns the ack ({"stream", "seq"}), errors mapped."""
        msg = await self.request(subject, data, headers)
        return parse_ack(msg)

    async def publish_pipelined(
        self, subject: str, data: bytes | memoryview, headers: dict | None = None
    ) -> asyncio.Future[dict]:
        """Hand a JetStream publish to the connection; the future gets its ack (or error).

        Returns once the message is buffered for sending, without waiting for the ack: acks
        arrive on one wildcard reply subscription and complete their futures directly (no
        task and no timer per message). The future has no timeout of its own: the caller
        bounds its wait with ``timeout``.
        """
        self.check_open()
        if self._ack_prefix is None:
            self._ack_prefix = await self._reply_inbox(self._on_ack)
        token = self._next_token()
        fut: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._acks[token] = fut
        fut.add_done_callback(lambda _f: self._acks.pop(token, None))
        await self._publish_for(fut, subject, data, self._ack_prefix + token, headers)
        return fut

    async def _reply_inbox(self, handler: Callable[[Any], None], *, views: bool = False) -> str:
        """Subscribe ``handler`` to a fresh wildcard inbox; return its prefix (ending in ".").

        ``handler`` gets each reply (``subject``, ``headers``, ``data``) on the loop, straight
        from the parser when it can (:func:`nats_parse.route`, with ``views`` as given: then
        ``data`` may be a list of views, valid only during the call).
        """

        async def cb(msg: Msg) -> None:
            handler(msg)

        prefix = self.nc.new_inbox() + "."
        try:
            sub = await self.nc.subscribe(prefix + "*", cb=cb)
        except BaseException as exc:
            raise map_error(exc) from exc
        nats_parse.route(self.nc, sub._id, handler, views=views)
        return prefix

    def _next_token(self) -> str:
        self._ack_seq += 1
        return str(self._ack_seq)

    async def _publish_for(
        self,
        fut: asyncio.Future,
        subject: str,
        data: bytes | memoryview,
        reply: str,
        headers: dict | None = None,
    ) -> None:
        """Publish a request whose answer completes ``fut``; cancel ``fut`` if it cannot go."""
        try:
            await self.nc.publish(subject, data, reply=reply, headers=headers)
        except BaseException as exc:
            fut.cancel()
            raise map_error(exc) from exc

    async def batch_get(
        self,
        stream: str,
        subject: str,
        first_seq: int,
        count: int,
        *,
        into: Landing | None = None,
        max_bytes: int | None = None,
    ) -> asyncio.Future[list[RawMsg]]:
        """Send one batch Direct Get: up to ``count`` messages on ``subject`` from ``first_seq``.

        Returns at once; the future gets the messages in stream order (fewer when the subject
        has fewer from there; an empty list for a 404). Without batch support the server
        answers one plain message, and the list has just that one. With ``into``, payloads
        are copied there as they arrive (their ``data`` are views of it; see
        :class:`~osfs.store.nats.read.cache.Landing`) instead of into bytes of their own. The caller
        bounds its wait on the future; errors are store errors. ``max_bytes`` ends the batch
        once its messages take that many bytes (the server's default is its pending limit).
        """
        body: dict[str, object] = {"seq": first_seq, "next_by_subj": subject, "batch": count}
        if max_bytes is not None:
            body["max_bytes"] = max_bytes
        fut = await self._pipelined(
            API + "DIRECT.GET." + stream, json.dumps(body, separators=(",", ":")).encode(), into
        )
        return fut

    async def _pipelined(self, subject: str, payload: bytes, into: Landing | None = None) -> asyncio.Future:
        self.check_open()
        if self._batch_prefix is None:
            self._batch_prefix = await self._reply_inbox(self._on_batch, views=True)
        token = self._next_token()
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._batches[token] = (fut, [], into)
        fut.add_done_callback(lambda _f: self._batches.pop(token, None))
        await self._publish_for(fut, subject, payload, self._batch_prefix + token)
        return fut

    def _on_batch(self, msg: Msg | nats_parse.Reply) -> None:
        """A batch reply: from nats-py (``data`` bytes) or routed with views (a list)."""
        entry = self._batches.get(msg.subject.rsplit(".", 1)[-1])
        if entry is None or entry[0].done():
            return
        fut, got, landing = entry
        hdrs = msg.headers or {}
        status = hdrs.get("Status")
        if status:
            if status in ("204", "404"):  # end of batch; nothing (more) to get
                fut.set_result(got)
            elif status == "503":
                fut.set_exception(Unavailable("no responders for direct get"))
            else:
                fut.set_exception(
                    StoreError(f"batch direct get failed: {status} {hdrs.get('Description', '')}")
                )
            return
        data = msg.data
        if isinstance(data, list):
            placed = landing.place(data) if landing is not None else None
            data = placed if placed is not None else b"".join(data)
        got.append(
            RawMsg(
                hdrs.get("Nats-Subject", ""),
                int(hdrs.get("Nats-Sequence", "0") or 0),
                data,
                hdrs.get("Nats-Time-Stamp", ""),
                hdrs,
            )
        )
        if "Nats-Num-Pending" not in hdrs:  # a server without batch support: one message
            fut.set_result(got)

    def _on_ack(self, msg: Msg | nats_parse.Reply) -> None:
        fut = self._acks.get(msg.subject.rsplit(".", 1)[-1])
        if fut is None or fut.done():
            return
        status = (msg.headers or {}).get("Status")
        if status == "503":
            fut.set_exception(Unavailable("no stream answered the publish"))
            return
        try:
            fut.set_result(parse_ack(msg))
        except StoreError as exc:
            fut.set_exception(exc)

    async def snapshot(self, stream: str, subject: str, *, headers_only: bool = False) -> AsyncIterator[Msg]:
        """Every message now on ``subject``, in stream order, from an ephemeral push consumer.

        No acks and no flow control (a plain consumer streams at full speed; nats-py answers
        flow-control requests only every 250 ms), ``headers_only`` to skip payloads. Ends
        after the delivery whose ack subject says nothing is pending, so the caller must know
        the subject has messages. ``Unavailable`` when the deliveries stall for a timeout.
        """
        inbox: collections.deque[Msg] = collections.deque()
        arrived = asyncio.Event()

        async def deliver(msg: Msg) -> None:
            inbox.append(msg)
            arrived.set()

        config = nats.js.api.ConsumerConfig(
            deliver_policy=nats.js.api.DeliverPolicy.ALL,
            ack_policy=nats.js.api.AckPolicy.NONE,
            headers_only=headers_only or None,
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=30.0,
        )
        try:
            sub = await self.js.subscribe(
                subject,
                stream=stream,
                config=config,
                cb=deliver,
                pending_msgs_limit=-1,
                pending_bytes_limit=-1,
            )
        except BaseException as exc:
            raise map_error(exc) from exc
        try:
            while True:
                if not inbox:
                    arrived.clear()
                    try:
                        await asyncio.wait_for(arrived.wait(), self.timeout)
                    except TimeoutError:
                        raise Unavailable(f"{subject}: deliveries stalled") from None
                    continue
                msg = inbox.popleft()
                yield msg
                parsed = wire.parse_ack_reply(msg.reply or "")
                if parsed is None or parsed[1] == 0:
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def publish_stored(
        self, stream: str, subject: str, data: bytes, headers: dict | None = None
    ) -> tuple[int, datetime | None]:
        """Publish and return the stored message's sequence and server timestamp."""
        ack = await self.publish(subject, data, headers)
        seq = int(ack.get("seq", 0))
        stored = await self.direct_get(stream, {"seq": seq}) if seq else None
        when = wire.parse_timestamp(stored.time) if stored is not None and stored.subject == subject else None
        return seq, when

    async def direct_get(self, stream: str, body: dict) -> RawMsg | None:
        """Direct Get of one message; None when there is no such message.

        Streams without ``allow_direct`` (nobody answers) fall back to ``STREAM.MSG.GET``,
        remembered per stream once it worked.
        """
        if stream not in self.no_direct:
            payload = json.dumps(body, separators=(",", ":")).encode()
            with contextlib.suppress(_NoResponders):
                return _direct_reply(await self._direct(API + "DIRECT.GET." + stream, payload))
        return await self._fallback(stream, body)

    async def last_msg(self, stream: str, subject: str) -> RawMsg | None:
        """The last message on ``subject`` (None if there is none)."""
        if stream not in self.no_direct:
            with contextlib.suppress(_NoResponders):
                return _direct_reply(await self._direct(f"{API}DIRECT.GET.{stream}.{subject}", b""))
        return await self._fallback(stream, {"last_by_subj": subject})

    async def _direct(self, subject: str, payload: bytes) -> Msg:
        self.check_open()
        try:
            return await self.nc.request(subject, payload, timeout=self.timeout)
        except nats.errors.NoRespondersError:
            raise _NoResponders() from None
        except BaseException as exc:
            raise map_error(exc) from exc

    async def _fallback(self, stream: str, body: dict) -> RawMsg | None:
        msg = await self.msg_get(stream, body)
        self.no_direct.add(stream)
        return msg

    async def msg_get(self, stream: str, body: dict) -> RawMsg | None:
        """``STREAM.MSG.GET`` (leader-consistent); None when there is no such message."""
        try:
            reply = await self.api("STREAM.MSG.GET." + stream, body)
        except NotFound:
            return None
        m = reply["message"]
        hdrs: dict[str, str] = {}
        if m.get("hdrs"):
            hdrs = _parse_header_block(base64.b64decode(m["hdrs"]))
        return RawMsg(
            m["subject"], int(m["seq"]), base64.b64decode(m.get("data") or b""), m.get("time", ""), hdrs
        )


def parse_ack(msg: Msg | nats_parse.Reply) -> dict:
    """The JSON ack of a JetStream publish, errors raised as store errors."""
    try:
        ack = json.loads(msg.data)
    except ValueError as exc:
        raise StoreError("bad publish ack") from exc
    if "error" in ack:
        raise api_error(ack["error"])
    return ack


def _direct_reply(msg: Msg) -> RawMsg | None:
    hdrs = msg.headers or {}
    status = hdrs.get("Status")
    if status:
        if status == "404":
            return None
        if status == "503":
            raise Unavailable("no responders for direct get")
        raise StoreError(f"direct get failed: {status} {hdrs.get('Description', '')}")
    return RawMsg(
        hdrs.get("Nats-Subject", ""),
        int(hdrs.get("Nats-Sequence", "0") or 0),
        msg.data,
        hdrs.get("Nats-Time-Stamp", ""),
        hdrs,
    )


def _parse_header_block(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in raw.decode(errors="replace").split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out
