"""Extended attributes of files and directory markers, mapped onto the object meta.

=========================  ==========================================================
``user.description``       the object's description (read/write)
``user.mime``              the ``Content-Type`` header (read/write)
``user.header.<Name>``     any header; several values are joined with ``", "`` (r/w)
``user.meta.<key>``        an object metadata entry (r/w; ``osfs-*`` keys are reserved)
``user.digest``            ``SHA-256=…`` of the content (computed)
``user.nuid``              the object's nuid (computed)
``user.chunks``            number of chunks (computed)
``user.<any other name>``  kept in the metadata key ``osfs-xattr.<name>`` (r/w)
=========================  ==========================================================

Any other ``user.*`` attribute is stored in the object's metadata: its name less
``user.``, percent-encoded (every byte outside printable ASCII, and ``%``), after
``osfs-xattr.`` when the value is UTF-8 (stored as is) or ``osfs-xattr64.`` otherwise
(stored in base64). Names are up to 255 bytes and values up to 64 KiB (the kernel's
limits); the stored attributes of one object take at most :data:`MAX_TOTAL` bytes
(``ENOSPC`` beyond).

The computed attributes (these three and the bucket status below) are not listed, so
``cp -a``, ``rsync -X`` and ``mv`` never copy them; they are read by name. Writing one
with its current value is accepted and changes nothing; any other write or a removal is
``EPERM``.

A bucket's own directory exposes the bucket's status, read-only and not listed:

==================================  ===================================================
``user.bucket.description``         the bucket's description (absent when empty)
``user.bucket.ttl``                 maximum age of objects in seconds (``0``: none)
``user.bucket.storage``             ``file`` or ``memory``
``user.bucket.replicas``            number of replicas
``user.bucket.compression``         ``none`` or ``s2``
``user.bucket.sealed``              ``true`` or ``false``
``user.bucket.bytes``               bytes stored in the bucket's stream
``user.bucket.max_object_size``     limit per object in bytes (``-1``: none)
``user.bucket.max_bytes``           limit of the bucket in bytes (``-1``: none)
``user.bucket.meta.<key>``          the bucket's metadata entries
==================================  ===================================================

The status is fetched from the server on every ``getxattr`` of the bucket directory
(never cached). Writing a ``user.bucket.*`` attribute with its current value
is accepted and changes nothing; any other write, a removal, a reserved key
(``user.meta.osfs-*``) or any attribute of a bucket's own directory fails with
``EPERM``. A directory without a marker gets one to hold its attributes. Names outside
``user.*`` fail with ``ENOTSUP``; reading an absent attribute fails with ``ENODATA``.

The :class:`Xattrs` part answers these for the filesystem.
"""

from __future__ import annotations

import base64
import errno
import logging
from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import quote_from_bytes, unquote_to_bytes

from .attrs import RESERVED_PREFIX
from .config import FsOptions
from .errors import FsError, fail, from_store
from .inodes import InodeTable, Key
from .names import Node
from .namespace import Namespace
from .openfiles import OpenFiles
from .store.base import ObjectStore
from .store.errors import StoreError
from .store.types import MIME_HEADER, BucketStatus, ObjectInfo, ObjectMeta
from .views import Views

READ_ONLY = ("user.digest", "user.nuid", "user.chunks")
BUCKET_PREFIX = "user.bucket."
#: Metadata key prefixes of other ``user.*`` attributes: UTF-8 values, base64 values.
TEXT_KEY = "osfs-xattr."
BINARY_KEY = "osfs-xattr64."
#: Bytes the stored attributes of one object may take (names and values).
MAX_TOTAL = 256 * 1024
#: Bytes left as they are in names within metadata keys: printable ASCII but ``%``.
_SAFE = bytes(c for c in range(0x21, 0x7F) if c != ord("%"))


def _own_name(name: str) -> bool:
    """True for a ``user.*`` name kept under :data:`TEXT_KEY`/:data:`BINARY_KEY`."""
    return not (
        name in ("user.description", "user.mime")
        or name in READ_ONLY
        or name.startswith(("user.header.", "user.meta.", BUCKET_PREFIX))
    )


def _key_part(name: str) -> str:
    """``name`` less ``user.``, percent-encoded for a metadata key."""
    return quote_from_bytes(name[len("user.") :].encode("utf-8", "surrogateescape"), safe=_SAFE)


def _own_values(metadata: Mapping[str, str]) -> dict[str, str]:
    """The attributes kept under :data:`TEXT_KEY`/:data:`BINARY_KEY` in ``metadata``,
    values as ``str`` (bytes that are not UTF-8 decoded with ``surrogateescape``)."""
    out: dict[str, str] = {}
    for k, v in metadata.items():
        if k.startswith(BINARY_KEY):
            raw, part = base64.b64decode(v), k[len(BINARY_KEY) :]
        elif k.startswith(TEXT_KEY):
            raw, part = v.encode("utf-8", "surrogateescape"), k[len(TEXT_KEY) :]
        else:
            continue
        name = "user." + unquote_to_bytes(part).decode("utf-8", "surrogateescape")
        out[name] = raw.decode("utf-8", "surrogateescape")
    return out


def _number(value: float) -> str:
    """``value`` without a useless ``.0``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _bucket_values(status: BucketStatus) -> dict[str, str]:
    out = {
        "user.bucket.ttl": _number(status.ttl),
        "user.bucket.storage": status.storage,
        "user.bucket.replicas": str(status.replicas),
        "user.bucket.compression": status.compression,
        "user.bucket.sealed": "true" if status.sealed else "false",
        "user.bucket.bytes": str(status.bytes),
        "user.bucket.max_object_size": str(status.max_object_size),
        "user.bucket.max_bytes": str(status.max_bytes),
    }
    if status.description:
        out["user.bucket.description"] = status.description
    for k, v in status.metadata.items():
        out[f"user.bucket.meta.{k}"] = v
    return out


def _values(info: ObjectInfo) -> dict[str, str]:
    out: dict[str, str] = {}
    if info.description:
        out["user.description"] = info.description
    mime = info.mime
    if mime is not None:
        out["user.mime"] = mime
    for name, values in info.headers.items():
        if name != MIME_HEADER:
            out[f"user.header.{name}"] = ", ".join(values)
    for k, v in info.metadata.items():
        if not k.startswith(RESERVED_PREFIX):
            out[f"user.meta.{k}"] = v
    out.update(_own_values(info.metadata))
    if info.nuid:
        if info.digest:
            out["user.digest"] = info.digest
        out["user.nuid"] = info.nuid
        out["user.chunks"] = str(info.chunks)
    return out


def _edit(meta: ObjectMeta, name: str, value: str | None) -> ObjectMeta:
    """``meta`` with attribute ``name`` set to ``value`` (None: removed)."""
    headers = dict(meta.headers)
    metadata = dict(meta.metadata)
    if name == "user.description":
        return replace(meta, description=value or "")
    if name == "user.mime" or name.startswith("user.header."):
        header = MIME_HEADER if name == "user.mime" else name[len("user.header.") :]
        if value is None:
            headers.pop(header, None)
        else:
            headers[header] = (
                tuple(v.strip() for v in value.split(",")) if header != MIME_HEADER else (value,)
            )
        return replace(meta, headers=headers)
    if _own_name(name):
        part = _key_part(name)
        metadata.pop(TEXT_KEY + part, None)
        metadata.pop(BINARY_KEY + part, None)
        if value is not None:
            raw = value.encode("utf-8", "surrogateescape")
            try:
                metadata[TEXT_KEY + part] = raw.decode("utf-8")
            except UnicodeDecodeError:
                metadata[BINARY_KEY + part] = base64.b64encode(raw).decode()
        return replace(meta, metadata=metadata)
    key = name[len("user.meta.") :]
    if value is None:
        metadata.pop(key, None)
    else:
        metadata[key] = value
    return replace(meta, metadata=metadata)


def _stored_size(meta: ObjectMeta) -> int:
    """Bytes the ``user.*`` attributes of ``meta`` take, as :data:`MAX_TOTAL` counts them."""
    size = len(meta.description.encode())
    size += sum(len(k) + sum(len(v) for v in vs) for k, vs in meta.headers.items())
    size += sum(len(k) + len(v) for k, v in meta.metadata.items() if not k.startswith(RESERVED_PREFIX))
    size += sum(len(k) + len(v) for k, v in meta.metadata.items() if k.startswith((TEXT_KEY, BINARY_KEY)))
    return size


class Xattrs:
    """Extended attributes of the filesystem's nodes; see the module docstring."""

    def __init__(
        self,
        store: ObjectStore,
        options: FsOptions,
        inodes: InodeTable,
        views: Views,
        files: OpenFiles,
        namespace: Namespace,
    ) -> None:
        self.store = store
        self.options = options
        self.inodes = inodes
        self.views = views
        self.files = files
        self.namespace = namespace

    async def _xattr_node(self, ino: int) -> tuple[Key, Node]:
        key = self.inodes.key(ino)
        node, _ = await self.views.node(key)
        return key, node

    async def _full(self, key: Key, node: Node) -> ObjectInfo:
        """The full meta of the object behind ``node`` (which has one)."""
        assert node.info is not None
        return await self.views.full_info(key[0], node.info, "getxattr")

    async def _all_values(self, ino: int) -> dict[str, str]:
        """Every attribute of ``ino``: its object's, and a bucket directory's status."""
        key, node = await self._xattr_node(ino)
        out = _values(await self._full(key, node)) if node.info is not None else {}
        if key[0] and key[1] == "":
            try:
                status = await self.store.bucket_status(key[0])
            except StoreError as e:
                raise from_store(e, "getxattr", key[0]) from None
            out.update(_bucket_values(status))
        return out

    async def listxattr(self, ino: int) -> list[str]:
        """Every attribute name of ``ino`` but the computed ones (bucket status included)."""
        key, node = await self._xattr_node(ino)
        values = _values(await self._full(key, node)) if node.info is not None else {}
        return sorted(n for n in values if n not in READ_ONLY)

    async def getxattr(self, ino: int, name: str) -> bytes:
        if not name.startswith("user."):
            # security.capability before every write, SELinux and ACL probes on every ls -l:
            # answered without a lookup, and ENOTSUP (not ENODATA) so that ls stops asking
            # for the rest of the mount
            raise FsError(errno.ENOTSUP)
        if name.startswith(BUCKET_PREFIX):
            value = (await self._all_values(ino)).get(name)
        else:
            key, node = await self._xattr_node(ino)
            value = _values(await self._full(key, node)).get(name) if node.info is not None else None
        if value is None:
            raise FsError(errno.ENODATA)
        return value.encode("utf-8", "surrogateescape")

    async def setxattr(self, ino: int, name: str, value: bytes) -> None:
        await self._change_xattr(ino, name, value.decode("utf-8", "surrogateescape"))

    async def removexattr(self, ino: int, name: str) -> None:
        key, node = await self._xattr_node(ino)
        present = node.info is not None and name in _values(await self._full(key, node))
        if not present and name not in READ_ONLY and not name.startswith(BUCKET_PREFIX):
            raise FsError(errno.ENODATA)
        await self._change_xattr(ino, name, None)

    async def _change_xattr(self, ino: int, name: str, value: str | None) -> None:
        await self.files.settle(self.inodes.key(ino))
        key, node = await self._xattr_node(ino)
        if self.options.read_only:
            raise fail(errno.EROFS, "setxattr", name, "read-only mount")
        if not name.startswith("user."):
            raise fail(errno.ENOTSUP, "setxattr", name, "unsupported attribute name")
        if name in READ_ONLY or name.startswith(BUCKET_PREFIX):
            if value is not None and (await self._all_values(ino)).get(name) == value:
                return  # a copy of a computed value: nothing to change
            raise fail(errno.EPERM, "setxattr", name, "read-only attribute", logging.INFO)
        if name.startswith("user.meta." + RESERVED_PREFIX) or name in ("user.header.", "user.meta.", "user."):
            raise fail(errno.EPERM, "setxattr", name, "reserved or empty key", logging.INFO)
        if node.info is None and (not node.is_dir or not key[1]):
            raise fail(errno.EPERM, "setxattr", name, "no object behind this directory", logging.INFO)
        base = (await self._full(key, node)).meta() if node.info is not None else ObjectMeta(key[1] + "/")
        if value is not None and _stored_size(_edit(base, name, value)) > MAX_TOTAL:
            raise fail(errno.ENOSPC, "setxattr", name, f"attributes over {MAX_TOTAL} bytes", logging.INFO)
        if node.info is None:
            await self.namespace.write_marker(key, _edit(base, name, value))
            return
        await self.files.update_meta(ino, key, node, lambda m: _edit(m, name, value))
