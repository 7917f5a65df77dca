"""The object-store interface the filesystem is written against.

All methods are trio-async and raise only :mod:`osfs.store.errors`. Two implementations:
:class:`osfs.store.nats.store.NatsStore` (the real one) and
:class:`osfs.store.memory.MemoryStore` (a double of the stream, for the tests of the layers
above). Both run the same meta semantics, :mod:`osfs.store.semantics`, over their own
stream primitives. Each high-level call crosses the
trio/asyncio boundary at most once in the NATS implementation; pipelines (chunk publishing,
read-ahead) run wholly on the asyncio side.

Contracts shared by both implementations (``tests/store/test_contract.py`` checks them):

* Bucket names are validated (``types.valid_bucket_name``) before anything is sent:
  ``BadName``. Object names must be non-empty: ``BadName``.
* A put becomes visible only when its upload commits (meta published last); until then, and
  whenever it fails, readers see the previous version unchanged.
* ``read`` of a version that was replaced or deleted raises ``ObjectReplaced``; a version whose
  chunks are missing or whose digest fails raises ``Corrupt``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager

from .types import (
    AccountUsage,
    BucketConfig,
    BucketStatus,
    ObjectInfo,
    ObjectMeta,
    Replacing,
    StoreCounters,
)


class Upload(ABC):
    """A put in progress: data goes in with ``write``, becomes visible on ``commit``.

    Data is re-chunked to the chunk size and chunks are published as they fill, several in
    flight; ``write`` waits only when the window of unacknowledged chunks is full, so memory
    stays bounded whatever the object size: only the unacknowledged chunks and the partial
    last one are held (an acknowledged chunk is stored). A publish that fails for want of
    the server is resumed on the same chunk subject (the store's retry bound; then the
    upload is failed). ``read`` returns what was written so far, from the stored chunks and
    the held ones. ``commit`` publishes the meta (after every chunk is acknowledged) and
    purges the previous version's chunks; ``abort`` (and any failure) purges the new chunks
    and leaves the previous version intact. After ``commit`` or ``abort`` the upload is
    finished; ``abort`` of a finished upload does nothing.
    """

    @property
    @abstractmethod
    def size(self) -> int:
        """Bytes written so far."""

    @abstractmethod
    async def write(self, data: bytes) -> None:
        """Append ``data``; raises ``TooLarge`` past the bucket's max object size."""

    @abstractmethod
    async def read(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset+length)`` of what was written so far (short at its end)."""

    @abstractmethod
    async def commit(self, meta: ObjectMeta | None = None) -> ObjectInfo:
        """Wait for every chunk, publish the meta, purge the old chunks; return the info.

        ``meta`` (its name, description, headers, metadata) replaces the one the upload
        began with: a file renamed or whose metadata changed while it streamed."""

    @abstractmethod
    async def abort(self) -> None:
        """Discard what was written (purge the new chunks)."""


class ObjectStore(ABC):
    """A connection to a set of object-store buckets."""

    # ----- lifecycle -------------------------------------------------------------------
    @abstractmethod
    async def close(self) -> None:
        """Release the connection; further calls raise ``Unavailable``."""

    # ----- buckets ---------------------------------------------------------------------
    @abstractmethod
    async def bucket_names(self) -> list[str]:
        """Names of every object store on the account (made by any client), sorted."""

    @abstractmethod
    async def bucket_status(self, bucket: str) -> BucketStatus:
        """Status of one bucket; ``BucketNotFound`` if it does not exist."""

    @abstractmethod
    async def create_bucket(self, config: BucketConfig) -> BucketStatus:
        """Create a bucket; ``Conflict`` if one exists with a different config."""

    @abstractmethod
    async def delete_bucket(self, bucket: str) -> None:
        """Destroy a bucket and everything in it; ``BucketNotFound`` if missing."""

    @abstractmethod
    async def seal_bucket(self, bucket: str) -> BucketStatus:
        """Seal a bucket (irreversible: no more writes, deletes or purges)."""

    @abstractmethod
    async def account_usage(self) -> AccountUsage:
        """Account-wide usage and limits (for ``statfs``)."""

    # ----- objects: metadata -----------------------------------------------------------
    @abstractmethod
    async def info(self, bucket: str, name: str, *, show_deleted: bool = False) -> ObjectInfo:
        """Latest meta of ``name`` (links are returned as links, not resolved).

        ``NotFound`` if there is none (or it is a delete marker and not ``show_deleted``).
        """

    @abstractmethod
    async def list_objects(self, bucket: str, *, show_deleted: bool = False) -> list[ObjectInfo]:
        """Latest meta of every name in the bucket, without reading any chunk data."""

    @abstractmethod
    async def update_meta(self, bucket: str, name: str, meta: ObjectMeta) -> ObjectInfo:
        """Replace description, headers and metadata of ``name`` without touching its data.

        ``meta.name`` must equal ``name`` (use ``rename`` to move). ``NotFound`` if missing.
        """

    @abstractmethod
    async def rename(self, bucket: str, old: str, new: str, *, replace: bool = False) -> ObjectInfo:
        """Move ``old`` to ``new`` in O(1): same nuid, no chunk moves.

        The meta is published under ``new`` first, then ``old``'s meta subject is purged (no
        delete marker). If ``new`` exists: ``Conflict`` unless ``replace``, in which case the
        replaced version's chunks are purged after the move.
        """

    @abstractmethod
    async def delete(self, bucket: str, name: str) -> ObjectInfo:
        """Publish a delete marker, then purge the chunks; ``NotFound`` if not live.
        Returns the meta that was deleted (as it was last stored)."""

    @abstractmethod
    async def add_link(
        self,
        bucket: str,
        name: str,
        target_bucket: str,
        target_name: str,
        *,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Create (or overwrite a link at) ``name`` pointing to an object.

        ``metadata`` goes into the link's meta (the filesystem keeps the symlink text there).
        ``Conflict`` when the target is a link or deleted, or ``name`` is a live non-link
        object; ``NotFound`` when the target does not exist.
        """

    @abstractmethod
    async def add_bucket_link(
        self, bucket: str, name: str, target_bucket: str, *, metadata: dict[str, str] | None = None
    ) -> ObjectInfo:
        """Create (or overwrite a link at) ``name`` pointing to a whole bucket (``metadata``
        as for :meth:`add_link`)."""

    @abstractmethod
    async def resolve(self, bucket: str, name: str) -> ObjectInfo:
        """``info`` with object links followed (at most 8 deep), across buckets too.

        A bucket link raises ``Conflict`` (it has no data); a dangling link ``NotFound``.
        """

    # ----- objects: data ---------------------------------------------------------------
    @abstractmethod
    async def begin_put(
        self,
        bucket: str,
        meta: ObjectMeta,
        *,
        chunk_size: int | None = None,
        replacing: Replacing | None = None,
        server_time: bool = True,
    ) -> Upload:
        """Start a streaming put of ``meta.name``; see :class:`Upload`. ``replacing``: what
        the caller believes the name holds (the commit then publishes on that condition
        without reading the previous meta first; a wrong belief only costs a retry).
        ``server_time=False``: the committed info's ``mtime`` may be this client's clock
        rather than the stored meta's server time (every reader still sees the server time;
        reading it back costs the NATS store a round trip per commit)."""

    async def put(
        self,
        bucket: str,
        meta: ObjectMeta,
        data: AsyncIterable[bytes] | bytes,
        *,
        chunk_size: int | None = None,
    ) -> ObjectInfo:
        """Put a whole object from bytes or an async iterator of blocks of any size."""
        upload = await self.begin_put(bucket, meta, chunk_size=chunk_size)
        try:
            if isinstance(data, (bytes, bytearray, memoryview)):
                await upload.write(bytes(data))
            else:
                async for block in data:
                    await upload.write(block)
            return await upload.commit()
        except BaseException:
            await upload.abort()
            raise

    @abstractmethod
    async def read(
        self, info: ObjectInfo, offset: int, length: int, *, readahead: int = 0
    ) -> bytes | memoryview:
        """Bytes ``[offset, offset+length)`` of the version ``info`` names (short at EOF), as
        bytes or a read-only memoryview (the caller must not keep it longer than it needs:
        a view can hold a larger buffer).

        Fetches only the chunks that cover the range. ``readahead`` is a hint: that many
        bytes past the range may be fetched in the background into the chunk cache.
        Raises ``ObjectReplaced`` if the version is gone, ``Corrupt`` if chunks are missing.
        """

    @abstractmethod
    def get(self, info: ObjectInfo) -> AsyncIterator[bytes]:
        """The whole version ``info`` names, in order; digest verified at the end
        (``Corrupt`` on mismatch, raised after the last block)."""

    @abstractmethod
    def watch(
        self, bucket: str, *, initial: bool = True
    ) -> AbstractAsyncContextManager[AsyncIterator[ObjectInfo | None]]:
        """Changes to a bucket's metas, as ``async with store.watch(b) as events``.

        With ``initial``, first the latest meta of every name (delete markers included),
        then ``None`` once, then live updates (puts, deletes, links, the new name of a
        rename). A rename's old name is purged without an event: consumers must treat a
        known nuid appearing under a new name as the old name's disappearance.
        """

    # ----- maintenance -----------------------------------------------------------------
    @abstractmethod
    async def sweep_orphans(self, bucket: str, older_than: float) -> int:
        """Purge the chunks of ``bucket`` that no meta names (left by uploads that never
        committed nor aborted); return how many versions' chunks were purged.

        Only chunks provably unreferenced go: their nuid is named by no meta of the bucket
        (live, delete marker or link), and the newest of them was stored at least
        ``older_than`` seconds ago (an upload in progress, of any client, is younger than
        that). ``Sealed`` for a sealed or mirror bucket; ``ValueError`` if ``older_than`` < 0.
        """

    # ----- introspection ---------------------------------------------------------------
    def counters(self) -> StoreCounters:
        """Read-path counters (zeros for stores that keep none)."""
        return StoreCounters()
