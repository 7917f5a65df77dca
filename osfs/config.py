"""Frozen configuration of a mount, with documented defaults.

``cli.py`` builds these from arguments, ``-o`` options and the config file
(:mod:`osfs.options`) and the environment (:mod:`osfs.connargs`); everything below it only
reads them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .store.nats.options import ConnectOptions
from .store.types import DEFAULT_CHUNK_SIZE


@dataclass(frozen=True)
class BucketDefaults:
    """Options of buckets created by ``mkdir`` at the mount's root."""

    storage: str = "file"
    replicas: int = 1
    compression: str = "none"
    ttl: float = 0.0
    max_object_size: int = -1
    max_bytes: int = -1
    description: str = ""


@dataclass(frozen=True)
class FsOptions:
    """What the filesystem core needs to know.

    * ``bucket``: mount only this bucket as the root (None: buckets are top-level dirs).
    * ``uid``/``gid``/``umask``: owner and permission mask of everything without its own
      mode in the object metadata (defaults: the mounting user, 022).
    * ``chunk_size``: chunk size of new objects (128 KiB, like every official client).
    * ``cache_size``: bytes of chunk data kept in memory.
    * ``disk_cache``/``disk_cache_size``: a directory for a second chunk cache on disk,
      bounded in bytes (None: no disk cache).
    * ``spool_dir``: where writers that seek spool their data (removed after upload).
    * ``attr_timeout``/``entry_timeout``: how long the kernel may cache what we told it.
    """

    bucket: str | None = None
    read_only: bool = False
    uid: int = field(default_factory=os.getuid)
    gid: int = field(default_factory=os.getgid)
    umask: int = 0o022
    chunk_size: int = DEFAULT_CHUNK_SIZE
    cache_size: int = 256 * 1024 * 1024
    disk_cache: Path | None = None
    disk_cache_size: int = 1024 * 1024 * 1024
    spool_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    attr_timeout: float = 1.0
    entry_timeout: float = 1.0
    bucket_defaults: BucketDefaults = field(default_factory=BucketDefaults)


@dataclass(frozen=True)
class MountOptions:
    """Everything ``osfs mount`` was asked for."""

    mountpoint: Path
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    fs: FsOptions = field(default_factory=FsOptions)
    foreground: bool = False
    allow_other: bool = False
    #: None: on with ``allow_other`` (the kernel checks modes when others can reach the
    #: mount), off otherwise; True/False: as the user asked.
    default_permissions: bool | None = None
    log_level: str = "INFO"
    log_file: str | None = None
    data_dir: Path | None = None  # embedded server's data (default: $XDG_DATA_HOME/osfs)
    fsname: str = "osfs"
    metrics_port: int | None = None  # serve Prometheus text on 127.0.0.1:PORT/metrics
    orphan_grace: float | None = 3600.0  # at start, purge chunks no meta names older than this (None: never)
    embedded: bool = False  # set by the mount itself when it runs the embedded server
