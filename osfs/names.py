"""Object names ↔ paths: how a bucket's flat name space becomes a directory tree.

Rules (deterministic: the same set of names always gives the same tree):

* ``/`` separates path components. A name ending in ``/`` (e.g. ``docs/``) is a *directory
  marker*: a zero-size object that makes the directory exist even when nothing is in it
  (``mkdir`` writes one, ``rmdir`` deletes it). Every prefix of a name is a directory too.
* A name that cannot be a path is **skipped** (not shown; logged once per name per mount at
  WARNING): an empty component (``a//b``, ``/a``, or the marker ``/``), a component ``.`` or
  ``..``, a component longer than 255 bytes in UTF-8, or a NUL character anywhere.
* A file (or link) ``a`` beside a directory ``a`` (from ``a/…`` names or a marker ``a/``):
  the directory keeps the name ``a`` and the file is shown as ``a.~file`` (``a.~file2``,
  ``a.~file3``… if that is taken too). Files are placed in sorted name order, so a real
  object ``a.~file`` that finds its name taken is itself shown as ``a.~file.~file``.
  Operations on a shown name act on the object behind it; nothing is hidden. A shown name
  that would exceed 255 bytes is skipped as above.
* Delete markers are not part of the tree.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .listed import Listed
from .store.types import ObjectInfo

log = logging.getLogger(__name__)

MAX_COMPONENT = 255
CONFLICT_SUFFIX = ".~file"


@dataclass(frozen=True)
class BadComponent:
    """Why a name cannot be a path component, and the errno that refuses it."""

    errno: int
    why: str


def bad_component(part: str) -> BadComponent | None:
    """Why ``part`` cannot be a path component (None when it can): ``ENAMETOOLONG`` for
    a component over :data:`MAX_COMPONENT` bytes, ``EINVAL`` for anything else."""
    if not part:
        return BadComponent(errno.EINVAL, "empty path component")
    if part in (".", ".."):
        return BadComponent(errno.EINVAL, f"component {part!r}")
    if "\0" in part:
        return BadComponent(errno.EINVAL, "NUL character")
    if "/" in part:
        return BadComponent(errno.EINVAL, "slash in component")
    if len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT:
        return BadComponent(errno.ENAMETOOLONG, f"component longer than {MAX_COMPONENT} bytes")
    return None


def bad_new_name(name: str) -> BadComponent | None:
    """Why ``name`` cannot be given to a new entry by this mount (None when it can): a bad
    component (:func:`bad_component`), or a name decoded from bytes that are not UTF-8."""
    bad = bad_component(name)
    if bad is None:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            return BadComponent(errno.EINVAL, "name is not valid UTF-8")
    return bad


def split_name(name: str) -> tuple[list[str], bool] | str:
    """``(components, is_marker)`` of an object name, or why it cannot be a path."""
    is_marker = name.endswith("/")
    path = name[:-1] if is_marker else name
    parts = path.split("/")
    for part in parts:
        bad = bad_component(part)
        if bad is not None:
            return bad.why
    return parts, is_marker


def join(*parts: str) -> str:
    """Join path components into a bucket-relative path ('' is the bucket's root)."""
    return "/".join(p for p in parts if p)


def parent_of(path: str) -> tuple[str, str]:
    """``(parent path, last component)`` of a non-empty bucket-relative path."""
    head, _, tail = path.rpartition("/")
    return head, tail


@dataclass(slots=True)
class Node:
    """One entry of the tree: a directory, or a file/link backed by ``info``.

    A directory's ``info`` is its marker object when it has one.
    """

    path: str
    is_dir: bool
    info: Listed | None = None

    @property
    def object_name(self) -> str | None:
        return self.info.name if self.info is not None else None


@dataclass(slots=True)
class Dir:
    """A directory's children.

    ``children`` holds every entry, keyed by its shown name, except a file shown under its
    own object name: that one is its bare :class:`Listed` record (no :class:`Node` per file
    in a big bucket) keyed by the record's own name string, the object name (which is the
    shown name in the bucket's root), so the shown name costs no string of its own. A key
    with a ``/`` is such an object name and its shown name is the part after the last
    ``/`` (:func:`shown_name`). :meth:`child` gives every entry as a node by shown name.
    """

    node: Node
    children: dict[str, Node | Listed] = field(default_factory=dict)
    subdirs: int = 0

    def key(self, name: str) -> str | None:
        """The key of the entry shown as ``name`` here, or None."""
        if name in self.children:
            return name
        if self.node.path:
            full = f"{self.node.path}/{name}"
            if full in self.children:
                return full
        return None

    def has(self, name: str) -> bool:
        """True when an entry is shown as ``name`` here."""
        return self.key(name) is not None

    def child(self, name: str) -> Node | None:
        """The entry shown as ``name`` here, or None."""
        key = self.key(name)
        if key is None:
            return None
        c = self.children[key]
        return Node(c.name, False, c) if isinstance(c, Listed) else c

    def names(self) -> list[str]:
        """The shown names of the entries, in no particular order."""
        return [shown_name(k) for k in self.children]


def shown_name(key: str) -> str:
    """The shown name of the entry kept under ``key`` in a :class:`Dir`."""
    return key.rpartition("/")[2]


class Tree:
    """A bucket's objects as directories; built whole by :func:`build_tree`."""

    def __init__(self, warned: set[str] | None = None) -> None:
        self.dirs: dict[str, Dir] = {"": Dir(Node("", True))}
        #: Shown paths of the file/link objects not shown under their own name.
        self.by_object: dict[str, str] = {}
        self.warned: set[str] = warned if warned is not None else set()

    def node(self, path: str) -> Node | None:
        """The node at bucket-relative ``path`` ('' is the root), or None."""
        d = self.dirs.get(path)
        if d is not None:
            return d.node
        parent, name = parent_of(path)
        pd = self.dirs.get(parent)
        return pd.child(name) if pd is not None else None

    def path_of(self, object_name: str) -> str | None:
        """The shown path of a file/link object (None if skipped or absent)."""
        shown = self.by_object.get(object_name)
        if shown is not None:
            return shown
        node = self.node(object_name)
        if node is None or node.is_dir or node.info is None or node.info.name != object_name:
            return None
        return object_name

    def add(self, info: Listed | ObjectInfo) -> bool:
        """Place (or replace) one live object in place.

        Returns False, leaving the tree unusable, when the change involves a skipped name or
        a name conflict; the caller then rebuilds with :func:`build_tree`, which gives the
        same result as placing incrementally whenever this returns True.
        """
        if not isinstance(info, Listed):
            info = Listed.of(info)
        split = split_name(info.name)
        if isinstance(split, str):
            _warn_once(self.warned, info.name, split)
            return True
        parts, is_marker = split
        path = "/".join(parts)
        if is_marker and path in self.dirs:
            self.dirs[path].node.info = info
            return True
        if not is_marker:
            shown = self.path_of(info.name)
            if shown is not None:
                parent, leaf = parent_of(shown)
                d = self.dirs.get(parent)
                key = d.key(leaf) if d is not None else None
                if d is None or key is None:
                    return False
                current = d.children[key]
                if isinstance(current, Listed):
                    d.children[key] = info
                else:
                    current.info = info
                return True
        if self.node(path) is not None:
            return False
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix not in self.dirs and self.node(prefix) is not None:
                return False
        for i in range(1, len(parts) + (1 if is_marker else 0)):
            self._ensure_dir("/".join(parts[:i]))
        if is_marker:
            self.dirs[path].node.info = info
        else:
            parent = "/".join(parts[:-1])
            self.dirs[parent].children[info.name] = info
        return True

    def _ensure_dir(self, path: str) -> None:
        if path not in self.dirs:
            parent, name = parent_of(path)
            d = Dir(Node(path, True))
            self.dirs[path] = d
            pd = self.dirs[parent]
            pd.children[name] = d.node
            pd.subdirs += 1

    def remove(self, name: str) -> bool:
        """Take one object out in place; False when the caller must rebuild (see :meth:`add`)."""
        split = split_name(name)
        if isinstance(split, str):
            return True
        parts, is_marker = split
        path = "/".join(parts)
        if is_marker:
            d = self.dirs.get(path)
            if d is None:
                return True
            d.node.info = None
        else:
            shown = self.path_of(name)
            self.by_object.pop(name, None)
            if shown is None:
                return True
            if shown != path:
                return False
            parent = "/".join(parts[:-1])
            del self.dirs[parent].children[name]
            path = parent
        return self._prune(path)

    def _prune(self, path: str) -> bool:
        """Drop ``path`` and its parents while they are empty implicit directories."""
        while path:
            d = self.dirs[path]
            if d.children or d.node.info is not None:
                return True
            parent, last = parent_of(path)
            pd = self.dirs[parent]
            if any(shown_name(c).startswith(last + CONFLICT_SUFFIX) for c in pd.children):
                return False
            del self.dirs[path]
            del pd.children[last]
            pd.subdirs -= 1
            path = parent
        return True


def _warn_once(seen: set[str], name: str, why: str) -> None:
    if name not in seen:
        seen.add(name)
        log.warning("object %r is not shown: %s", name, why)


def build_tree(infos: Iterable[Listed | ObjectInfo], warned: set[str] | None = None) -> Tree:
    """Build the tree of live objects (delete markers are left out); ``warned`` collects
    names already warned about."""
    tree = Tree(warned)
    seen = tree.warned
    # (parent path, shown name, record); one string per parent path
    files: list[tuple[str, str, Listed]] = []
    parents: dict[str, str] = {}
    markers: dict[str, Listed] = {}
    dir_paths: set[str] = set()
    live = (i if isinstance(i, Listed) else Listed.of(i) for i in infos if not i.deleted)
    for info in sorted(live, key=lambda i: i.name):
        split = split_name(info.name)
        if isinstance(split, str):
            _warn_once(seen, info.name, split)
            continue
        parts, is_marker = split
        for i in range(1, len(parts)):
            dir_paths.add("/".join(parts[:i]))
        if is_marker:
            path = "/".join(parts)
            dir_paths.add(path)
            markers[path] = info
        else:
            parent = "/".join(parts[:-1])
            files.append((parents.setdefault(parent, parent), parts[-1], info))
    add_dir: Callable[[str], Dir]

    def add_dir(path: str) -> Dir:
        d = tree.dirs.get(path)
        if d is None:
            parent, name = parent_of(path)
            pd = add_dir(parent)
            d = Dir(Node(path, True, markers.get(path)))
            tree.dirs[path] = d
            pd.children[name] = d.node
            pd.subdirs += 1
        return d

    for path in sorted(dir_paths):
        add_dir(path)
    for parent, leaf, info in files:
        d = tree.dirs[parent]
        shown = leaf
        if d.has(shown):
            base = shown + CONFLICT_SUFFIX
            shown, n = base, 1
            while d.has(shown) or join(parent, shown) in dir_paths:
                n += 1
                shown = f"{base}{n}"
            if len(shown.encode("utf-8", "surrogateescape")) > MAX_COMPONENT:
                _warn_once(seen, info.name, "its conflict name is longer than 255 bytes")
                continue
        if shown == leaf:
            d.children[info.name] = info
        else:
            path = join(parent, shown)
            d.children[shown] = Node(path, False, info)
            tree.by_object[info.name] = path
    return tree
