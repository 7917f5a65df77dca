"""Per-bucket metadata caches kept coherent from ``store.watch``, and the part that owns them.

:class:`Views` is the filesystem's part that holds one :class:`BucketView` per visited
bucket (starting its watch in the filesystem's nursery), the cached list of bucket names,
and finds the node behind a ``(bucket, path)`` key.

A :class:`BucketView` holds the latest live version of every name in one bucket as a
compact :class:`~osfs.listed.Listed` record (what ``readdir``/``getattr`` need) and the
directory tree built from them (:func:`osfs.names.build_tree`; single changes are applied
in place, only changes involving name conflicts or skipped names rebuild it), so ``ls -l``
of a large bucket costs one listing, not one request per file. The full meta of an object
(digest, chunks, headers) is fetched when it is opened or its attributes are read
(:meth:`Views.full_info`); the full metas this mount wrote or saw change live, and the
ones it fetched, are kept for the last :data:`FULL_KEEP` names, so opening a file just
written or changed costs no request.

It is filled and kept current by :meth:`BucketView.run`, a worker started in the
filesystem's nursery the first time the bucket is visited: it opens ``store.watch(bucket)``
with the initial snapshot, serves once the snapshot's end (``None``) arrives, then applies
live updates as they come (other clients' puts, deletes and renames show up within the
watch's latency). A rename arrives as the same nuid under a new name and is applied as the
old name's removal. Every update that changes the view calls ``on_change(name)`` so the
filesystem can invalidate the kernel's caches. If the watch fails, the worker logs it,
falls back to re-listing the bucket when the view is older than ``FALLBACK_TTL`` and
retries the watch; when the bucket is deleted, the view is marked ``gone``.

The filesystem applies its own changes with :meth:`apply` right away (so a change is
visible to this mount before the watch echoes it); the echo carries the same revision and
is then ignored; the echo of a delete for a name that is already absent changes nothing.
A name this mount removed remembers the revision it had, so a late watch echo of that (or
an older) version does not bring the name back; the mount's own ``apply`` always wins.

While the mount changes names itself (a rename: :meth:`BucketView.holding`), watch updates
of those names wait and are applied after it: the echo of a rename can arrive before the
rename's reply, and applying it early would show the new content under a name whose inode
the filesystem has not moved yet.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import trio

from .config import FsOptions
from .errors import FsError, from_store
from .inodes import Key, is_top
from .listed import Listed, nuid_key
from .names import Node, Tree, build_tree
from .store.base import ObjectStore
from .store.errors import BucketNotFound, NotFound, StoreError
from .store.types import ObjectInfo

log = logging.getLogger(__name__)

#: Age after which a view whose watch is down is re-listed on access (seconds).
FALLBACK_TTL = 1.0
#: Pause before re-opening a failed watch (seconds).
RETRY_DELAY = 1.0
#: How long the list of buckets is reused (seconds).
BUCKET_LIST_TTL = 1.0
#: How many full metas (by name) a view keeps beside its compact records.
FULL_KEEP = 1024


def _load_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (None elsewhere)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_malloc_trim = _load_trim()


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``).

    Called after a whole bucket is listed: the listing's transient metas are freed by then,
    but their pages stay in the process's RSS (in the heap, and in the bulk lane's thread
    arena) until trimmed. Costs a walk of the heap, once per listing.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)


class BucketView:
    """Live metas of one bucket; see the module docstring."""

    def __init__(self, store: ObjectStore, bucket: str, on_change: Callable[[str, str], None]) -> None:
        self.store = store
        self.bucket = bucket
        self.infos: dict[str, Listed] = {}
        self.pending: dict[str, ObjectInfo] = {}
        self.gone = False
        self.ready = trio.Event()
        self.error: StoreError | None = None
        self._on_change = on_change
        #: The name of each live nuid (by :func:`~osfs.listed.nuid_key`).
        self._nuids: dict[int, str] = {}
        self._removed: dict[str, int] = {}
        self._tree: Tree | None = None
        self._warned: set[str] = set()
        self._watching = False
        self._listed_at = 0.0
        self._held: dict[str, int] = {}
        self._deferred: list[ObjectInfo] = []
        self._full: OrderedDict[str, ObjectInfo] = OrderedDict()

    @property
    def cached_tree(self) -> Tree | None:
        """The tree if it is built and current, without waiting or listing."""
        return self._tree

    @property
    def watching(self) -> bool:
        """True while live updates are flowing (the cached metas are current)."""
        return self._watching

    # ----- reading -----------------------------------------------------------------------
    async def tree(self) -> Tree:
        """The current tree; waits for the first snapshot, re-lists if the watch is down."""
        await self.ready.wait()
        if self.gone:
            raise self.error if self.error is not None else BucketNotFound(self.bucket)
        if not self._watching and trio.current_time() - self._listed_at > FALLBACK_TTL:
            await self._relist()
        if self._tree is None:
            shown = self.infos
            if self.pending:
                shown = dict(self.infos)
                for name, info in self.pending.items():
                    shown[name] = Listed.of(info, self.bucket)
            self._tree = build_tree(shown.values(), self._warned)
        return self._tree

    def names_under(self, prefix: str) -> list[str]:
        """Live object names starting with ``prefix`` (pending new files included)."""
        return sorted(n for n in {**self.infos, **self.pending} if n.startswith(prefix))

    def cached_full(self, listed: Listed) -> ObjectInfo | None:
        """The full meta of the version ``listed`` stands for, if it is kept (a file being
        created by this mount, not stored yet, is always)."""
        pending = self.pending.get(listed.name)
        if pending is not None and pending.nuid == listed.nuid:
            return pending
        info = self._full.get(listed.name)
        if info is None or not listed.same_version(info):
            return None
        self._full.move_to_end(listed.name)
        return info

    def keep_full(self, info: ObjectInfo) -> None:
        """Keep the full meta ``info`` (the oldest kept goes beyond :data:`FULL_KEEP`)."""
        if info.deleted:
            self._full.pop(info.name, None)
            return
        self._full[info.name] = info
        self._full.move_to_end(info.name)
        while len(self._full) > FULL_KEEP:
            self._full.popitem(last=False)

    # ----- changes -----------------------------------------------------------------------
    @contextmanager
    def holding(self, *names: str) -> Iterator[None]:
        """Defer watch updates that touch ``names`` until the block ends (then apply them,
        in order; the block's own :meth:`apply` calls make the echoes no-ops)."""
        for n in names:
            self._held[n] = self._held.get(n, 0) + 1
        try:
            yield
        finally:
            for n in names:
                left = self._held.pop(n) - 1
                if left:
                    self._held[n] = left
            waiting, self._deferred = self._deferred, []
            for info in waiting:
                self.apply(info, notify=True)

    def _touches_held(self, info: ObjectInfo) -> bool:
        if info.name in self._held:
            return True
        old_name = self._nuids.get(nuid_key(info.nuid)) if info.nuid else None
        return old_name is not None and old_name in self._held

    def apply(self, info: ObjectInfo, *, notify: bool = False) -> None:
        """Record a new meta (a delete marker removes the name); a watch update
        (``notify``) of a held name waits for the end of :meth:`holding`."""
        if notify and self._held and self._touches_held(info):
            self._deferred.append(info)
            return
        current = self.infos.get(info.name)
        if current is not None and info.revision and current.revision >= info.revision:
            return
        self.keep_full(info)
        floor = self._removed.pop(info.name, None)
        if notify and floor is not None and info.revision and info.revision <= floor:
            self._removed[info.name] = floor
            return
        changed: list[str] = []
        if info.nuid:
            old_name = self._nuids.get(nuid_key(info.nuid))
            if old_name is not None and old_name != info.name and not info.deleted:
                old = self.infos.get(old_name)
                if old is not None and old.nuid == info.nuid:
                    del self.infos[old_name]
                    changed.append(old_name)
        if info.deleted:
            if current is None:
                if not changed:
                    return
            else:
                del self.infos[info.name]
                self._nuids.pop(current.nuid_key, None)
                changed.append(info.name)
        else:
            if current is not None and current.nuid != info.nuid:
                self._nuids.pop(current.nuid_key, None)
            self.infos[info.name] = Listed.of(info, self.bucket)
            if info.nuid:
                self._nuids[self.infos[info.name].nuid_key] = info.name
            changed.append(info.name)
        for name in changed:
            self._retree(name)
        if notify:
            for name in changed:
                self._on_change(self.bucket, name)

    def remove(self, name: str) -> None:
        """Forget ``name`` (deleted or renamed by this mount)."""
        info = self.infos.pop(name, None)
        self._full.pop(name, None)
        if info is not None:
            if info.revision:
                self._removed[name] = info.revision
            self._nuids.pop(info.nuid_key, None)
            self._retree(name)

    def set_pending(self, name: str, info: ObjectInfo | None) -> None:
        """Show (or stop showing) a file being created by this mount, not yet in the store."""
        if info is None:
            if self.pending.pop(name, None) is not None:
                self._retree(name)
        else:
            self.pending[name] = info
            self._retree(name)

    def _retree(self, name: str) -> None:
        """Bring the tree in line with the shown version of ``name`` (or rebuild later)."""
        if self._tree is None:
            return
        pending = self.pending.get(name)
        shown = Listed.of(pending, self.bucket) if pending is not None else self.infos.get(name)
        ok = self._tree.add(shown) if shown is not None else self._tree.remove(name)
        if not ok:
            self._tree = None

    def _replace_all(self, infos: dict[str, Listed], *, notify: bool) -> None:
        """Take ``infos`` (the live objects of a whole listing, a dict the view then owns) as
        the view's content."""
        old = self.infos
        removed = self._removed
        self.infos = (
            {n: i for n, i in infos.items() if not (i.revision and i.revision <= removed.get(n, 0))}
            if removed
            else infos
        )
        for name in [
            n for n, full in self._full.items() if n not in self.infos or not self.infos[n].same_version(full)
        ]:
            del self._full[name]
        self._nuids = {i.nuid_key: n for n, i in self.infos.items() if i.nuid}
        self._tree = None
        if notify:
            for name in set(old) | set(self.infos):
                a, b = old.get(name), self.infos.get(name)
                if a is None or b is None or a.revision != b.revision:
                    self._on_change(self.bucket, name)

    async def _relist(self) -> None:
        try:
            infos = await self.store.list_objects(self.bucket)
        except BucketNotFound as e:
            self.gone = True
            self.error = e
            raise
        self._listed_at = trio.current_time()
        self._replace_all({i.name: Listed.of(i, self.bucket) for i in infos if not i.deleted}, notify=True)

    # ----- the worker --------------------------------------------------------------------
    async def run(self) -> None:
        """Watch the bucket until it is deleted or the worker is cancelled."""
        first = True
        while not self.gone:
            try:
                async with self.store.watch(self.bucket, initial=True) as events:
                    snapshot: dict[str, Listed] | None = {}
                    async for info in events:
                        if info is None:
                            if snapshot is not None:
                                self._replace_all(snapshot, notify=not first)
                                snapshot = None
                                release_free_memory()
                                self._watching = True
                                self.error = None
                                first = False
                                self.ready.set()
                        elif snapshot is not None:
                            if info.deleted:
                                snapshot.pop(info.name, None)
                            else:
                                snapshot[info.name] = Listed.of(info, self.bucket)
                        else:
                            self.apply(info, notify=True)
                self._watching = False
                await self._check_exists()
            except BucketNotFound as e:
                self._watching = False
                self.gone = True
                self.error = e
            except StoreError as e:
                self._watching = False
                self.error = e
                log.warning("watch of bucket %s failed: %s; retrying", self.bucket, e)
            finally:
                self._watching = False
            self.ready.set()
            if not self.gone:
                await trio.sleep(RETRY_DELAY)

    async def _check_exists(self) -> None:
        try:
            await self.store.bucket_status(self.bucket)
        except BucketNotFound as e:
            self.gone = True
            self.error = e


class Views:
    """The bucket views of one filesystem and the cached bucket names.

    ``on_change(bucket, name)`` is called for every change a watch brings in (see
    :class:`BucketView`). Views are started in the nursery given to :meth:`start`.
    """

    def __init__(self, store: ObjectStore, options: FsOptions, on_change: Callable[[str, str], None]) -> None:
        self.store = store
        self.options = options
        self._on_change = on_change
        self._views: dict[str, BucketView] = {}
        self._nursery: trio.Nursery | None = None
        self._buckets: tuple[float, list[str]] | None = None

    def start(self, nursery: trio.Nursery) -> None:
        """Start watches in ``nursery`` from now on (the mount's bucket's at once)."""
        self._nursery = nursery
        if self.options.bucket:
            self.view(self.options.bucket)

    def get(self, bucket: str) -> BucketView | None:
        """The view of ``bucket`` if one was started (without starting one)."""
        return self._views.get(bucket)

    def loaded(self) -> list[str]:
        """Buckets that have a view, in the order they were first visited."""
        return list(self._views)

    def view(self, bucket: str) -> BucketView:
        """The live view of ``bucket``, started on first use (or after the bucket vanished)."""
        view = self._views.get(bucket)
        if view is None or view.gone:
            if self._nursery is None:
                raise RuntimeError("Filesystem.start() must be called first")
            view = BucketView(self.store, bucket, self._on_change)
            self._views[bucket] = view
            self._nursery.start_soon(view.run)
        return view

    def drop(self, bucket: str) -> None:
        """``bucket`` was deleted by this mount: its view is gone, the names are stale."""
        view = self._views.pop(bucket, None)
        if view is not None:
            view.gone = True
        self._buckets = None

    def cached_tree(self, bucket: str) -> Tree | None:
        """``bucket``'s tree if it is loaded, without waiting or listing."""
        view = self._views.get(bucket)
        return view.cached_tree if view is not None else None

    async def tree(self, bucket: str) -> Tree:
        """``bucket``'s current tree (``FsError`` if it cannot be listed)."""
        try:
            return await self.view(bucket).tree()
        except StoreError as e:
            raise from_store(e, "list", bucket) from None

    async def node(self, key: Key, *, need_tree: bool = False) -> tuple[Node, Tree | None]:
        """The node at ``key`` and its bucket's tree (``ENOENT`` when there is none).

        The tree is None for the top, and for a bucket's own directory whose bucket is not
        loaded yet unless ``need_tree``: ``ls -l`` of the top does not start a watch per
        bucket.
        """
        if is_top(key):
            return Node("", True), None
        if key[1] == "" and not need_tree:
            view = self._views.get(key[0])
            if view is None or view.gone or not view.ready.is_set():
                if key[0] != self.options.bucket and key[0] not in await self.bucket_names():
                    raise FsError(errno.ENOENT)
                return Node("", True), None
        tree = await self.tree(key[0])
        node = tree.node(key[1])
        if node is None:
            raise FsError(errno.ENOENT)
        return node, tree

    async def current_info(self, key: Key, node: Node) -> ObjectInfo | None:
        """The latest full meta of the stored file ``node`` at ``key`` (None for a file not
        stored yet; ``ENOENT`` when it is gone).

        While the bucket's watch is live the listed version is current (within the watch's
        latency; a read that finds it replaced before serving anything re-reads it), so
        only its full meta is fetched when not kept; otherwise the latest is fetched.
        """
        if node.info is None or not node.info.nuid:
            return None
        view = self.view(key[0])
        if view.watching:
            return await self.full_info(key[0], node.info, "open")
        return await self._fetch(key[0], node.info.name, "open")

    async def full_info(self, bucket: str, listed: Listed, op: str = "open") -> ObjectInfo:
        """The full meta of the listed version ``listed`` of an object of ``bucket`` (a
        newer one if it changed meanwhile; ``ENOENT`` when it is gone)."""
        view = self.view(bucket)
        kept = view.cached_full(listed)
        if kept is not None:
            return kept
        return await self._fetch(bucket, listed.name, op)

    async def _fetch(self, bucket: str, name: str, op: str) -> ObjectInfo:
        try:
            info = await self.store.info(bucket, name)
        except NotFound:
            self.view(bucket).remove(name)
            raise FsError(errno.ENOENT) from None
        except StoreError as e:
            raise from_store(e, op, f"{bucket}/{name}") from None
        view = self.view(bucket)
        view.apply(info)
        view.keep_full(info)
        return info

    async def reread(self, info: ObjectInfo, op: str) -> ObjectInfo:
        """The current meta behind a version that turned out to be replaced."""
        try:
            current = await self.store.info(info.bucket, info.name)
        except StoreError as e:
            raise from_store(e, op, f"{info.bucket}/{info.name}") from None
        view = self.view(info.bucket)
        view.apply(current)
        view.keep_full(current)
        return current

    async def bucket_names(self, fresh: bool = False) -> list[str]:
        """The account's bucket names, reused for :data:`BUCKET_LIST_TTL` unless ``fresh``."""
        now = trio.current_time()
        if fresh or self._buckets is None or now - self._buckets[0] > BUCKET_LIST_TTL:
            try:
                self._buckets = (now, await self.store.bucket_names())
            except StoreError as e:
                raise from_store(e, "list buckets") from None
        return self._buckets[1]

    def forget_bucket_names(self) -> None:
        """A bucket was created or found: list the names again on next use."""
        self._buckets = None
