"""Mount settings from ``-o`` options and the config file, and the frozen mount configuration.

``osfs mount`` and ``osfs bucket`` both fold ``-o key=value`` options (as mount(8) and fstab
pass them) and ``key = value`` lines of a config file (``--config`` or
:data:`DEFAULT_CONFIG`) into their parsed arguments; :func:`mount_options` turns the arguments
of ``osfs mount`` into :class:`~osfs.config.MountOptions`. The connection settings come from
:mod:`osfs.connargs`; the argument parsers are in :mod:`osfs.cli` and :mod:`osfs.bucket_cli`.

Secrets are refused here, in options and config files alike: they come from files, the
environment or a ``nats`` context.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from .config import BucketDefaults, FsOptions, MountOptions
from .connargs import UsageError, connect_options
from .units import parse_duration, parse_size

#: Read when it exists and no --config is given.
DEFAULT_CONFIG = "/etc/osfs/osfs.conf"

#: ``-o`` flags (no value) → argparse destination.
O_FLAGS = {
    "ro": "read_only",
    "read_only": "read_only",
    "allow_other": "allow_other",
    "default_permissions": "default_permissions",
    "foreground": "foreground",
}
#: ``-o`` flags that turn an option off (``default_permissions`` is on with ``allow_other``).
O_OFF_FLAGS = {"no_default_permissions": "default_permissions"}
#: ``-o`` keys whose value is a number.
O_INTS = {"uid", "gid", "bucket_replicas", "metrics_port"}
#: ``-o`` keys that take a value (also the keys of a config file, but ``config``).
O_VALUES = {
    "server",
    "context",
    "bucket",
    "creds",
    "nkey",
    "user",
    "password_file",
    "token_file",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "data_dir",
    "chunk_size",
    "cache_size",
    "disk_cache",
    "disk_cache_size",
    "spool_dir",
    "uid",
    "gid",
    "umask",
    "attr_timeout",
    "timeout",
    "orphan_grace",
    "log_level",
    "log_file",
    "metrics_port",
    "config",
    "bucket_storage",
    "bucket_replicas",
    "bucket_compression",
    "bucket_ttl",
    "bucket_max_object_size",
    "bucket_max_bytes",
    "bucket_description",
}
#: Understood by mount(8)/fstab and meaningless to us.
O_IGNORED = {
    "rw",
    "_netdev",
    "noauto",
    "auto",
    "user",
    "nouser",
    "users",
    "owner",
    "group",
    "nofail",
    "defaults",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "atime",
    "noatime",
    "relatime",
    "strictatime",
    "nodiratime",
    "sync",
    "async",
    "loud",
    "silent",
    "nosymfollow",
    "comment",
}
#: Secrets must come from files; these keys are refused with a pointer to the file option.
O_SECRETS = {"password": "password_file", "token": "token_file"}


def _o_value(key: str, value: str) -> str | int:
    if key in O_INTS:
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"option {key} needs a number, not {value!r}") from None
    if key == "log_level":
        return value.upper()
    return value


def apply_o_options(ns: argparse.Namespace, options: list[str]) -> None:
    """Fold ``-o a,b=c`` options into the parsed namespace; ``UsageError`` on unknown ones."""
    for group in options:
        for item in filter(None, group.split(",")):
            key, sep, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if key in O_FLAGS and not sep:
                setattr(ns, O_FLAGS[key], True)
            elif key in O_OFF_FLAGS and not sep:
                setattr(ns, O_OFF_FLAGS[key], False)
            elif key in O_VALUES and sep:
                setattr(ns, key, _o_value(key, value))
            elif key in O_SECRETS:
                raise UsageError(f"secrets are not accepted as options: use {O_SECRETS[key]}=FILE")
            elif key in O_IGNORED or key.startswith("x-"):
                continue
            else:
                raise UsageError(f"unknown mount option: {item}")


def read_config(path: str) -> dict[str, str | bool]:
    """``key = value`` lines of a config file (``#`` comments, blank lines; keys as in ``-o``,
    flags as ``key = yes``). ``UsageError`` names the file and line of anything wrong."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from exc
    out: dict[str, str | bool] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().replace("-", "_")
        value = value.strip().strip('"')
        if not sep:
            raise UsageError(f"{path}:{n}: expected key = value")
        if key in O_SECRETS:
            raise UsageError(f"{path}:{n}: secrets go in files: use {O_SECRETS[key]} = FILE")
        if key in O_FLAGS:
            if value.lower() not in ("yes", "true", "1", "no", "false", "0"):
                raise UsageError(f"{path}:{n}: {key} is yes or no, not {value!r}")
            out[O_FLAGS[key]] = value.lower() in ("yes", "true", "1")
        elif key in O_VALUES and key != "config":
            out[key] = _o_value(key, value)
        else:
            raise UsageError(f"{path}:{n}: unknown setting {key}")
    return out


def mount_options(ns: argparse.Namespace, env: dict[str, str]) -> MountOptions:
    """Build the frozen mount configuration; ``UsageError`` on bad values."""
    apply_o_options(ns, ns.options)
    try:
        chunk_size = parse_size(str(ns.chunk_size))
        cache_size = parse_size(str(ns.cache_size))
        disk_cache_size = parse_size(str(ns.disk_cache_size))
        umask = int(str(ns.umask), 8)
        attr_timeout = parse_duration(str(ns.attr_timeout))
        request_timeout = parse_duration(str(ns.timeout))
        grace = str(ns.orphan_grace).strip()
        orphan_grace = None if grace.lower() == "off" else parse_duration(grace)
        defaults = BucketDefaults(
            storage=ns.bucket_storage,
            replicas=int(ns.bucket_replicas),
            compression=ns.bucket_compression,
            ttl=parse_duration(str(ns.bucket_ttl)),
            max_object_size=parse_size(str(ns.bucket_max_object_size)),
            max_bytes=parse_size(str(ns.bucket_max_bytes)),
            description=str(ns.bucket_description),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if not 1024 <= chunk_size <= 8 * 1024 * 1024:
        raise UsageError(f"--chunk-size must be between 1K and 8M, not {ns.chunk_size}")
    if cache_size < 0:
        raise UsageError("--cache-size must be a size, not unlimited")
    if disk_cache_size <= 0:
        raise UsageError(f"--disk-cache-size must be a positive size, not {ns.disk_cache_size}")
    if not 0 < request_timeout <= 3600:
        raise UsageError(f"--timeout must be more than 0 and at most 1h, not {ns.timeout}")
    if not 0 <= umask <= 0o777:
        raise UsageError(f"--umask must be octal 000-777, not {ns.umask}")
    if defaults.storage not in ("file", "memory"):
        raise UsageError(f"bucket_storage is file or memory, not {defaults.storage}")
    if defaults.compression not in ("none", "s2"):
        raise UsageError(f"bucket_compression is none or s2, not {defaults.compression}")
    if ns.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise UsageError(f"log level is DEBUG, INFO, WARNING or ERROR, not {ns.log_level}")
    if ns.metrics_port is not None and not 0 < int(ns.metrics_port) < 65536:
        raise UsageError(f"--metrics-port must be 1-65535, not {ns.metrics_port}")
    fs = FsOptions(
        bucket=ns.bucket,
        read_only=bool(ns.read_only),
        umask=umask,
        chunk_size=chunk_size,
        cache_size=cache_size,
        attr_timeout=attr_timeout,
        entry_timeout=attr_timeout,
        bucket_defaults=defaults,
    )
    if ns.uid is not None:
        fs = replace(fs, uid=int(ns.uid))
    if ns.gid is not None:
        fs = replace(fs, gid=int(ns.gid))
    if ns.spool_dir:
        fs = replace(fs, spool_dir=Path(ns.spool_dir))
    if ns.disk_cache:
        fs = replace(fs, disk_cache=Path(ns.disk_cache).absolute(), disk_cache_size=disk_cache_size)
    connect = replace(connect_options(ns, env), request_timeout=request_timeout)
    fsname = "osfs"
    if connect.servers and len(connect.servers) == 1 and "," not in connect.servers[0]:
        fsname = (f"{ns.bucket}@" if ns.bucket else "") + connect.servers[0]
    return MountOptions(
        mountpoint=Path(ns.mountpoint).absolute(),
        connect=connect,
        fs=fs,
        foreground=bool(ns.foreground),
        allow_other=bool(ns.allow_other),
        default_permissions=None if ns.default_permissions is None else bool(ns.default_permissions),
        log_level=ns.log_level.upper(),
        log_file=ns.log_file,
        data_dir=Path(ns.data_dir) if ns.data_dir else None,
        fsname=fsname,
        metrics_port=int(ns.metrics_port) if ns.metrics_port is not None else None,
        orphan_grace=orphan_grace,
    )
