"""Command line: ``osfs mount|umount|status|bucket`` and the mount(8) helper forms.

Parses arguments, ``-o`` options, the config file (``--config`` or ``/etc/osfs/osfs.conf``)
and the environment into :mod:`osfs.config` values and hands them to :mod:`osfs.mount` or
:mod:`osfs.bucket_cli`. No filesystem logic lives here.

mount(8) with ``-t fuse.osfs`` runs ``mount.fuse.osfs SPEC MNT -o OPTS`` when that helper is
installed in ``/sbin``, else ``mount.fuse3``, which runs ``osfs SPEC MNT -o OPTS``; both forms
end in :func:`mount_helper_main`.

Secrets are never taken from the command line (they would show in ``ps``): passwords and
tokens come from files (``--password-file``, ``--token-file``), the environment
(``NATS_PASSWORD``, ``NATS_TOKEN``) or a ``nats`` context (see :mod:`osfs.connargs`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from . import __version__, bucket_cli, connargs
from .config import BucketDefaults, ConnectOptions, FsOptions, MountOptions
from .connargs import ENV_HELP, UsageError, add_connection_arguments
from .units import format_size, parse_duration, parse_size

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

#: Read when it exists and no --config is given.
DEFAULT_CONFIG = "/etc/osfs/osfs.conf"


def _add_mount_arguments(p: argparse.ArgumentParser) -> None:
    add_connection_arguments(p)
    fs = p.add_argument_group("filesystem")
    fs.add_argument("--bucket", "-b", metavar="NAME", help="mount only this bucket as the root")
    fs.add_argument("--read-only", "-r", action="store_true", help="refuse every change (EROFS)")
    fs.add_argument("--chunk-size", default="128K", metavar="SIZE", help="chunk size of new objects (128K)")
    fs.add_argument("--cache-size", default="256M", metavar="SIZE", help="memory for cached chunks (256M)")
    fs.add_argument(
        "--disk-cache",
        metavar="DIR",
        help="also cache chunks on disk in DIR, kept across mounts (one mount per DIR; none)",
    )
    fs.add_argument("--disk-cache-size", default="1G", metavar="SIZE", help="bound of the disk cache (1G)")
    fs.add_argument("--spool-dir", metavar="DIR", help="where files written out of order are spooled")
    fs.add_argument("--uid", type=int, help="owner of files without one of their own (you)")
    fs.add_argument("--gid", type=int, help="group of files without one of their own (yours)")
    fs.add_argument("--umask", default="022", help="permission mask, octal (022)")
    fs.add_argument("--allow-other", action="store_true", help="let other users use the mount")
    fs.add_argument(
        "--default-permissions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let the kernel check modes (on with --allow-other unless --no-default-permissions)",
    )
    fs.add_argument("--attr-timeout", default="1s", metavar="DURATION", help="kernel attribute cache (1s)")
    fs.add_argument(
        "--timeout",
        default="10s",
        metavar="DURATION",
        help="how long one request to the server may take before the operation fails with EIO (10s)",
    )
    fs.add_argument(
        "--orphan-grace",
        default="1h",
        metavar="DURATION",
        help="at start, purge chunks that no object names (left by uploads that never finished) once "
        "older than this; off: never (1h)",
    )
    bd = p.add_argument_group("buckets created with mkdir at the root")
    bd.add_argument("--bucket-storage", default="file", choices=["file", "memory"], help="(file)")
    bd.add_argument("--bucket-replicas", type=int, default=1, help="(1)")
    bd.add_argument("--bucket-compression", default="none", choices=["none", "s2"], help="(none)")
    bd.add_argument("--bucket-ttl", default="0", metavar="DURATION", help="object TTL, e.g. 30d (none)")
    bd.add_argument("--bucket-max-object-size", default="-1", metavar="SIZE", help="(unlimited)")
    bd.add_argument("--bucket-max-bytes", default="-1", metavar="SIZE", help="whole bucket (unlimited)")
    bd.add_argument("--bucket-description", default="", metavar="TEXT", help="description")

    run = p.add_argument_group("process")
    run.add_argument("--foreground", "-f", action="store_true", help="stay attached (systemd, debugging)")
    run.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    run.add_argument("--log-file", metavar="FILE", help="log here (default: stderr in the foreground)")
    run.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve Prometheus text on 127.0.0.1:PORT"
    )
    run.add_argument("--config", metavar="FILE", help=f"key = value settings (default {DEFAULT_CONFIG})")
    run.add_argument(
        "-o",
        dest="options",
        action="append",
        default=[],
        metavar="OPT[,OPT…]",
        help="mount(8)-style options, e.g. -o ro,allow_other,bucket=photos",
    )


# -o key=value → argparse destination. Flags take no value.
_O_FLAGS = {
    "ro": "read_only",
    "read_only": "read_only",
    "allow_other": "allow_other",
    "default_permissions": "default_permissions",
    "foreground": "foreground",
}
_O_INTS = {"uid", "gid", "bucket_replicas", "metrics_port"}
_O_VALUES = {
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
# Understood by mount(8)/fstab and meaningless to us.
_O_IGNORED = {
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
_O_SECRETS = {"password": "password_file", "token": "token_file"}


def _o_value(key: str, value: str):  # -> str | int
    if key in _O_INTS:
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
            if key in _O_FLAGS and not sep:
                setattr(ns, _O_FLAGS[key], True)
            elif key in _O_VALUES and sep:
                setattr(ns, key, _o_value(key, value))
            elif key in _O_SECRETS:
                raise UsageError(f"secrets are not accepted as options: use {_O_SECRETS[key]}=FILE")
            elif key in _O_IGNORED or key.startswith("x-"):
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
        if key in _O_SECRETS:
            raise UsageError(f"{path}:{n}: secrets go in files: use {_O_SECRETS[key]} = FILE")
        if key in _O_FLAGS:
            if value.lower() not in ("yes", "true", "1", "no", "false", "0"):
                raise UsageError(f"{path}:{n}: {key} is yes or no, not {value!r}")
            out[_O_FLAGS[key]] = value.lower() in ("yes", "true", "1")
        elif key in _O_VALUES and key != "config":
            out[key] = _o_value(key, value)
        else:
            raise UsageError(f"{path}:{n}: unknown setting {key}")
    return out


def connect_options(ns: argparse.Namespace, env: dict[str, str]) -> ConnectOptions:
    """Connection settings from arguments, the environment and a ``nats`` context."""
    return connargs.connect_options(ns, env)


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


COMMANDS = ("mount", "umount", "status", "bucket")


def build_parser() -> argparse.ArgumentParser:
    """The ``osfs`` argument parser."""
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``osfs`` parser and its subcommand parsers by name."""
    parser = argparse.ArgumentParser(
        prog="osfs",
        description="Mount the NATS JetStream Object Store as a filesystem: buckets are directories, "
        "objects are files, object links are symlinks.",
        epilog=ENV_HELP
        + "\nmount(8) form: osfs [BUCKET@]URL[,URL…]|[BUCKET@]embedded MOUNTPOINT [-o OPTIONS]\n"
        "exit codes: 0 ok, 1 error, 2 usage, 3 bucket not found, 4 conflict\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"osfs {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    m = sub.add_parser(
        "mount",
        help="mount object stores at a directory",
        description="Mount the object stores of a NATS server at MOUNTPOINT and return once the mount "
        "answers. With no server named (no --server, no NATS_URL, no context), a private nats-server "
        "is started on loopback with its data under $XDG_DATA_HOME/osfs and stopped at unmount. "
        "Every option is also a -o key=value (dashes as underscores), and a line of the config file.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("mountpoint", help="an existing, empty directory")
    _add_mount_arguments(m)

    u = sub.add_parser(
        "umount",
        help="flush and unmount",
        description="Unmount an osfs mount after "
        "every file written through it has been uploaded; wait for the daemon to exit.",
    )
    u.add_argument("mountpoint")
    u.add_argument("--lazy", "-z", action="store_true", help="detach now even if busy")
    u.add_argument("--timeout", default="60s", help="how long to wait for the daemon to exit (60s)")

    st = sub.add_parser(
        "status",
        help="numbers of a running mount",
        description="Print a mount's cache hit rate, bytes read and written, uploads in flight and "
        "errors (read from the mount's root attribute user.osfs.stats). Exit 1 if MOUNTPOINT is "
        "not an osfs mount.",
    )
    st.add_argument("mountpoint")
    st.add_argument("--json", action="store_true", help="print the raw JSON")

    b = sub.add_parser(
        "bucket",
        help="list, create, remove, inspect and seal buckets",
        description="Manage object-store buckets.\n\n" + bucket_cli.EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bucket_cli.add_subcommands(b)
    return parser, {"mount": m, "umount": u, "status": st, "bucket": b}


def _config_path(ns: argparse.Namespace) -> str | None:
    for group in getattr(ns, "options", []) or []:
        for item in group.split(","):
            key, sep, value = item.partition("=")
            if key.strip() == "config" and sep:
                return value
    if getattr(ns, "config", None):
        return ns.config
    if ns.command in ("mount", "bucket") and os.path.isfile(DEFAULT_CONFIG):
        return DEFAULT_CONFIG
    return None


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; settings of the config file become defaults that arguments override."""
    parser, subs = _build()
    ns = parser.parse_args(argv)
    path = _config_path(ns)
    if path is None:
        return ns
    settings = read_config(path)
    parser, subs = _build()
    target = subs[ns.command]
    if ns.command == "bucket":
        target = subs["bucket"]._osfs_leaf[ns.bucket_command]  # type: ignore[attr-defined]
    known = {
        k: v for k, v in settings.items() if hasattr(ns, k) and not (ns.command == "bucket" and k == "bucket")
    }
    target.set_defaults(**known)
    return parser.parse_args(argv)


def status_main(mountpoint: str, as_json: bool) -> int:
    """``osfs status``: the mount's numbers, as a table or JSON."""
    from .stats import STATS_XATTR

    try:
        raw = os.getxattr(mountpoint, STATS_XATTR)
    except OSError as exc:
        print(f"osfs: {mountpoint} is not an osfs mount ({exc.strerror})", file=sys.stderr)
        return EXIT_ERROR
    stats = json.loads(raw)
    if as_json:
        print(json.dumps(stats, indent=2, sort_keys=True))
        return EXIT_OK
    rate = stats.get("cache_hit_rate")
    rows = [
        ("uptime", f"{stats['uptime_s']:.0f}s"),
        ("cache hit rate", "-" if rate is None else f"{rate * 100:.1f}%"),
        ("cache", f"{format_size(stats['cache_bytes'])} of {format_size(stats['cache_limit'])}"),
        ("bytes read", format_size(stats["bytes_read"])),
        ("bytes written", format_size(stats["bytes_written"])),
        ("uploads", str(stats["uploads"])),
        ("uploads in flight", str(stats["uploads_in_flight"])),
        ("errors", str(stats["errors"]) + (f" (last: {stats['last_error']})" if stats["last_error"] else "")),
    ]
    for k, v in rows:
        print(f"{k + ':':<19}{v}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``osfs`` (also ``osfs SPEC MOUNTPOINT -o OPTS`` as mount.fuse3 runs it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-") and args[0] not in COMMANDS:
        return mount_helper_main(args)
    from . import mount as mount_mod

    try:
        ns = parse_args(args)
        if ns.command == "mount":
            return mount_mod.mount(mount_options(ns, dict(os.environ)))
        if ns.command == "umount":
            return mount_mod.umount(
                Path(ns.mountpoint).absolute(), lazy=ns.lazy, timeout=parse_duration(ns.timeout)
            )
        if ns.command == "status":
            return status_main(ns.mountpoint, ns.json)
        if ns.command == "bucket":
            return bucket_cli.run(ns, dict(os.environ))
    except UsageError as exc:
        print(f"osfs: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"osfs: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"osfs: unknown command {ns.command}", file=sys.stderr)
    return EXIT_USAGE


def mount_helper_main(argv: list[str] | None = None) -> int:
    """Entry point of ``mount.fuse.osfs SPEC MOUNTPOINT [-o OPTS]`` as mount(8) calls it.

    SPEC is ``[BUCKET@]URL[,URL…]`` or ``[BUCKET@]embedded`` (a private server; also
    ``osfs`` or ``none``). ``-n`` (no mtab), ``-s`` (sloppy), ``-f`` (fake) and ``-v`` are
    accepted as mount(8) passes them.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    options: list[str] = []
    positional: list[str] = []
    fake = False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-o" and i + 1 < len(args):
            options.append(args[i + 1])
            i += 2
            continue
        if a.startswith("-o") and len(a) > 2:
            options.append(a[2:])
        elif a in ("-n", "-s", "-v"):
            i += 1
            continue
        elif a == "-f":
            fake = True
        elif a.startswith("-"):
            print(f"mount.osfs: unknown argument {a}", file=sys.stderr)
            return EXIT_USAGE
        else:
            positional.append(a)
        i += 1
    if len(positional) != 2:
        print(
            "usage: mount.osfs [BUCKET@]URL[,URL…]|[BUCKET@]embedded MOUNTPOINT [-o OPTIONS]", file=sys.stderr
        )
        return EXIT_USAGE
    spec, mountpoint = positional
    spec = spec.removeprefix("osfs#")
    bucket, _, servers = (
        spec.rpartition("@") if "@" in spec and "://" not in spec.split("@")[0] else ("", "", spec)
    )
    argv2 = ["mount", mountpoint]
    if servers and servers not in ("embedded", "osfs", "none"):
        argv2 += ["--server", servers]
    if bucket:
        argv2 += ["--bucket", bucket]
    for o in options:
        argv2 += ["-o", o]
    if fake:
        return EXIT_OK
    return main(argv2)
