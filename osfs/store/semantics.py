"""The object-store semantics, written once above a few stream primitives.

A bucket is a stream holding, per object name, a *meta subject* whose last message is the
object's latest meta (a version, a link, or a delete marker), and per version a chunk
subject named by the version's nuid. Everything :class:`~osfs.store.base.ObjectStore`
promises about metas (delete markers hidden unless asked for, links and their checks,
resolving links at most ``MAX_LINK_DEPTH`` deep, renames with ``replace``, deletes that
purge the chunks, conditional meta publishes retried on ``StaleRevision``, the commit of a
put that purges the version it replaced) is implemented here by :class:`Semantics`, over
the narrow :class:`MetaStream` protocol. The NATS store implements that protocol over its
connection (``osfs.store.nats.meta``) and runs these coroutines on its asyncio loop; the
in-memory double (``osfs.store.memory``) fakes the protocol and runs them on trio. So every
semantic test on the double runs this code, and so does the real store.

Plain ``async``/``await`` only: nothing here imports asyncio, trio or nats (the stream's
``pause`` sleeps on whichever loop runs it). Name checks and the digest's wire form live
here too, once, for both stores.
"""

from __future__ import annotations

import base64
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from .errors import BadName, BucketNotFound, Conflict, NotFound, StaleRevision, StoreError, Unavailable
from .types import BucketStatus, Link, ObjectInfo, ObjectMeta, Replacing, valid_bucket_name

log = logging.getLogger(__name__)

#: Links followed by ``resolve`` before giving up (as the official clients do).
MAX_LINK_DEPTH = 8
#: Tries of a conditional meta publish before ``StaleRevision`` is raised.
PUBLISH_ATTEMPTS = 10
#: Upper bound of the random pause before retry ``n`` (seconds, times ``n``).
RETRY_PAUSE = 0.02
#: The label of the only digest algorithm in use.
DIGEST_PREFIX = "SHA-256="

T = TypeVar("T")


# ----- names and digests ------------------------------------------------------------------


def check_bucket(bucket: str) -> None:
    """``BadName`` unless ``bucket`` is a legal bucket name."""
    if not isinstance(bucket, str) or not valid_bucket_name(bucket):
        raise BadName(f"invalid bucket name {bucket!r}: only A-Z a-z 0-9 _ - are allowed")


def check_name(name: str) -> None:
    """``BadName`` unless ``name`` is a non-empty string (the wire encoding checks the rest)."""
    if not isinstance(name, str) or not name:
        raise BadName("object name must not be empty")


def check(bucket: str, name: str | None = None) -> None:
    """:func:`check_bucket`, and :func:`check_name` when ``name`` is given."""
    check_bucket(bucket)
    if name is not None:
        check_name(name)


def encode_digest(sha256: bytes) -> str:
    """``SHA-256=`` + padded base64url of the 32-byte digest (what nats.go writes)."""
    if len(sha256) != 32:
        raise ValueError(f"a SHA-256 digest has 32 bytes, not {len(sha256)}")
    return DIGEST_PREFIX + base64.urlsafe_b64encode(sha256).decode("ascii")


# ----- the primitives ---------------------------------------------------------------------


class MetaStream(Protocol):
    """What :class:`Semantics` needs of a bucket's stream.

    Every method raises ``BucketNotFound`` for a missing bucket (``writable`` and
    ``check_bucket`` at least; the others may) and only store errors otherwise.
    """

    async def last_meta(self, bucket: str, name: str, *, leader: bool = False) -> ObjectInfo | None:
        """The last meta on ``name``'s meta subject, decoded (delete markers included), or
        None. ``leader``: read where a conditional publish is decided (no lagging replica).
        ``Corrupt`` when it cannot be decoded."""
        ...

    async def subject_revision(self, bucket: str, name: str, *, leader: bool = False) -> int:
        """The sequence of the last message on ``name``'s meta subject (0: none), for a
        meta that ``last_meta`` cannot decode."""
        ...

    async def publish_meta(self, info: ObjectInfo, *, expected: int | None, stamp: bool = True) -> ObjectInfo:
        """Store ``info`` as the latest meta of its name (replacing what was there) and
        return it with its ``revision`` and ``mtime`` as stored. With ``expected``, only
        while the meta subject's last message is at that sequence (0: none), else
        ``StaleRevision``; without, unconditionally. ``stamp=False``: the returned
        ``mtime`` may be this client's clock instead of the stored one (a stream that must
        read the stored time back then saves that round trip)."""
        ...

    async def purge_meta(self, bucket: str, name: str, *, before: int) -> None:
        """Remove the messages on ``name``'s meta subject below sequence ``before``."""
        ...

    async def purge_chunks(self, bucket: str, nuid: str) -> None:
        """Remove every chunk of version ``nuid``."""
        ...

    async def all_metas(self, bucket: str) -> list[ObjectInfo]:
        """The latest meta of every name (delete markers included), oldest first."""
        ...

    async def check_bucket(self, bucket: str) -> None:
        """``BucketNotFound`` unless the bucket exists."""
        ...

    async def writable(self, bucket: str) -> BucketStatus:
        """The bucket's status; ``Sealed`` when it takes no writes (sealed, or a mirror)."""
        ...

    async def pause(self, seconds: float) -> None:
        """Sleep on the loop that runs the semantics."""
        ...

    def new_nuid(self) -> str:
        """A fresh nuid (the chunk subject id of a new version or link)."""
        ...


# ----- the semantics ----------------------------------------------------------------------


class Semantics:
    """Every meta operation of an object store, over ``stream``; see the module docstring.

    Arguments are validated here before the stream is asked anything (``BadName``).
    """

    def __init__(self, stream: MetaStream) -> None:
        self.stream = stream

    async def retry_stale(self, attempt: Callable[[bool], Awaitable[T]]) -> T:
        """Run ``attempt(retry)`` (which reads the current meta and publishes on condition)
        until it does not raise ``StaleRevision``: at most ``PUBLISH_ATTEMPTS`` runs, with a
        short random pause between them; the last run's ``StaleRevision`` propagates.
        ``retry`` is True after a refusal: the attempt then reads from the leader."""
        for n in range(1, PUBLISH_ATTEMPTS):
            try:
                return await attempt(n > 1)
            except StaleRevision:
                await self.stream.pause(random.uniform(0, RETRY_PAUSE * n))
        return await attempt(True)

    # ----- reading -------------------------------------------------------------------------
    async def info(
        self, bucket: str, name: str, *, show_deleted: bool = False, leader: bool = False
    ) -> ObjectInfo:
        """The latest meta of ``name``; ``NotFound`` if none (or a marker, unless
        ``show_deleted``)."""
        check(bucket, name)
        info = await self.stream.last_meta(bucket, name, leader=leader)
        if info is None or (info.deleted and not show_deleted):
            raise NotFound(f"{bucket}/{name}")
        return info

    async def list_objects(self, bucket: str, *, show_deleted: bool = False) -> list[ObjectInfo]:
        """The latest meta of every name, oldest first (markers only with ``show_deleted``)."""
        check(bucket)
        return [i for i in await self.stream.all_metas(bucket) if show_deleted or not i.deleted]

    async def resolve(self, bucket: str, name: str) -> ObjectInfo:
        """``info`` with object links followed, at most ``MAX_LINK_DEPTH`` deep."""
        info = await self.info(bucket, name)
        for _ in range(MAX_LINK_DEPTH):
            if info.link is None:
                return info
            if info.link.name is None:
                raise Conflict(f"{bucket}/{name} is a bucket link")
            try:
                info = await self.info(info.link.bucket, info.link.name)
            except (BucketNotFound, BadName) as exc:
                raise NotFound(f"{bucket}/{name}: dangling link") from exc
        if info.link is None:
            return info
        raise NotFound(f"{bucket}/{name}: too many levels of links")

    # ----- changing metas ------------------------------------------------------------------
    async def update_meta(self, bucket: str, name: str, meta: ObjectMeta) -> ObjectInfo:
        """Replace description, headers and metadata of the live ``name``."""
        check(bucket, name)
        if meta.name != name:
            raise BadName(f"update_meta cannot rename {name!r} to {meta.name!r}")
        await self.stream.writable(bucket)

        async def update(retry: bool) -> ObjectInfo:
            info = await self.info(bucket, name, leader=retry)
            new = replace(info, description=meta.description, headers=meta.headers, metadata=meta.metadata)
            return await self.stream.publish_meta(new, expected=info.revision)

        return await self.retry_stale(update)

    async def rename(self, bucket: str, old: str, new: str, *, replace_existing: bool = False) -> ObjectInfo:
        """Move ``old`` to ``new`` (same nuid): publish under ``new``, then purge ``old``'s
        meta subject up to the version moved; a replaced live object's chunks go too."""
        check(bucket, old)
        check_name(new)
        await self.stream.writable(bucket)
        info = await self.info(bucket, old)
        if old == new:
            return info
        target: ObjectInfo | None = None

        async def move(retry: bool) -> ObjectInfo:
            nonlocal target
            target = await self.stream.last_meta(bucket, new, leader=retry)
            if target is not None and not target.deleted and not replace_existing:
                raise Conflict(f"{bucket}/{new} exists")
            return await self.stream.publish_meta(
                replace(info, name=new), expected=target.revision if target else 0
            )

        moved = await self.retry_stale(move)
        # only up to the version moved: one committed under ``old`` meanwhile stays
        await self.stream.purge_meta(bucket, old, before=info.revision + 1)
        replaced = target is not None and not target.deleted and not target.is_link
        if replaced and target is not None and target.nuid and target.nuid != info.nuid:
            await self.stream.purge_chunks(bucket, target.nuid)
        return moved

    async def delete(self, bucket: str, name: str) -> ObjectInfo:
        """Publish a delete marker over the live ``name``, then purge its chunks; returns the
        meta deleted. The marker's stored time is not read back (nobody asks for it)."""
        check(bucket, name)
        await self.stream.writable(bucket)

        async def mark(retry: bool) -> ObjectInfo:
            info = await self.info(bucket, name, leader=retry)
            marker = replace(info, deleted=True, size=0, chunks=0, digest="")
            await self.stream.publish_meta(marker, expected=info.revision, stamp=False)
            return info

        info = await self.retry_stale(mark)
        if info.nuid:
            await self.stream.purge_chunks(bucket, info.nuid)
        return info

    # ----- links -------------------------------------------------------------------------
    async def add_link(
        self,
        bucket: str,
        name: str,
        target_bucket: str,
        target_name: str,
        *,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """A link at ``name`` to a live object that is not a link itself."""
        check(bucket, name)
        check(target_bucket, target_name)
        await self.stream.writable(bucket)
        target = await self.stream.last_meta(target_bucket, target_name)
        if target is None:
            await self.stream.check_bucket(target_bucket)
            raise NotFound(f"{target_bucket}/{target_name}")
        if target.deleted or target.is_link:
            raise Conflict(f"cannot link to {'a deleted object' if target.deleted else 'a link'}")
        await self._check_link_name(bucket, name)
        return await self._publish_link(bucket, name, Link(target_bucket, target_name), metadata)

    async def add_bucket_link(
        self, bucket: str, name: str, target_bucket: str, *, metadata: dict[str, str] | None = None
    ) -> ObjectInfo:
        """A link at ``name`` to the whole bucket ``target_bucket``."""
        check(bucket, name)
        check(target_bucket)
        await self.stream.writable(bucket)
        await self.stream.check_bucket(target_bucket)
        await self._check_link_name(bucket, name)
        return await self._publish_link(bucket, name, Link(target_bucket), metadata)

    async def _check_link_name(self, bucket: str, name: str) -> None:
        """``Conflict`` when ``name`` is a live object that is not a link."""
        existing = await self.stream.last_meta(bucket, name)
        if existing is not None and not existing.deleted and not existing.is_link:
            raise Conflict(f"{bucket}/{name} exists and is not a link")

    async def _publish_link(
        self, bucket: str, name: str, link: Link, metadata: dict[str, str] | None
    ) -> ObjectInfo:
        info = ObjectInfo(
            bucket=bucket,
            name=name,
            nuid=self.stream.new_nuid(),
            size=0,
            chunks=0,
            digest="",
            mtime=datetime.now(UTC),
            link=link,
            metadata=dict(metadata or {}),
        )
        return await self.stream.publish_meta(info, expected=None)

    # ----- the commit of a put -------------------------------------------------------------
    async def commit(
        self,
        info: ObjectInfo,
        *,
        unanswered: Callable[[ObjectInfo, Unavailable], Awaitable[ObjectInfo]] | None = None,
        replacing: Replacing | None = None,
        stamp: bool = True,
    ) -> ObjectInfo:
        """Publish the meta of a new version whose chunks are all stored, then purge the
        chunks of the version it replaced (unless that was deleted, a link, or this one).

        With ``replacing`` (what the caller believes the name holds), the first publish is
        made on that condition without reading the previous meta: one round trip instead of
        two when the belief holds (a new name: revision 0), and the usual read and retry
        when the server refuses it. ``stamp=False``: the returned ``mtime`` may be this
        client's clock (see :meth:`MetaStream.publish_meta`).

        The meta is published on condition that its subject is still at the revision of
        the meta read just before, so the version whose chunks are purged is exactly the
        one it replaced; when another writer published in between, the previous meta is
        read again and the publish retried (:meth:`retry_stale`). A previous meta that
        cannot be read (any error but ``Unavailable``) is replaced, its chunks left alone.
        When the publish itself gets no answer (``Unavailable`` after it was sent),
        ``unanswered(info, exc)`` decides: it returns the info as committed, or raises.
        A failed purge of the old chunks is logged, not raised: the put did commit.
        """
        old = ""  # the nuid of the replaced version whose chunks go ("" none)
        sent = False  # a publish is out whose answer may have been lost

        async def attempt(retry: bool) -> ObjectInfo:
            nonlocal old, sent
            sent = False
            if replacing is not None and not retry:
                old, expected = replacing.nuid, replacing.revision
            else:
                previous, expected = await self._previous(info.bucket, info.name, retry)
                live = previous is not None and not previous.deleted and not previous.is_link
                old = previous.nuid if live and previous is not None else ""
            sent = True
            return await self.stream.publish_meta(info, expected=expected, stamp=stamp)

        try:
            committed = await self.retry_stale(attempt)
        except Unavailable as exc:
            if not sent or unanswered is None:
                raise
            committed = await unanswered(info, exc)
        if old and old != info.nuid:
            try:
                await self.stream.purge_chunks(info.bucket, old)
            except StoreError as exc:
                log.warning(
                    "%s/%s: purging the replaced version's chunks failed: %s", info.bucket, info.name, exc
                )
        return committed

    async def _previous(self, bucket: str, name: str, leader: bool) -> tuple[ObjectInfo | None, int]:
        """The meta a put replaces (None when there is none or it cannot be decoded) and the
        sequence its subject must still be at when the new meta is published."""
        try:
            old = await self.stream.last_meta(bucket, name, leader=leader)
        except StoreError as exc:
            if isinstance(exc, Unavailable):
                raise
            log.warning("%s/%s: unreadable previous meta is replaced: %s", bucket, name, exc)
            return None, await self.stream.subject_revision(bucket, name, leader=leader)
        return old, old.revision if old is not None else 0
