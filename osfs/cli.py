"""Command line: ``osfs mount|umount|status|bucket`` and the mount(8) helper forms.

Builds the argument parsers, reads the config file's settings in as defaults (the ``-o``
options, the config file and :class:`~osfs.config.MountOptions` are built in
:mod:`osfs.options`, the connection settings in :mod:`osfs.connargs`) and hands the result to
:mod:`osfs.mount` or :mod:`osfs.bucket_cli`. No filesystem logic lives here.

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
from pathlib import Path

from . import __version__, bucket_cli
from .connargs import ENV_HELP, UsageError, add_connection_arguments
from .options import DEFAULT_CONFIG, mount_options, read_config
from .units import format_size, parse_duration

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


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


COMMANDS = ("mount", "umount", "status", "bucket")


def build_parser() -> argparse.ArgumentParser:
    """The ``osfs`` argument parser."""
    return build_parsers()[0]


def build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``osfs`` parser and the parsers that take options, by name: ``mount``,
    ``umount``, ``status``, ``bucket`` and ``bucket ACTION`` for each bucket action."""
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
    leaves = bucket_cli.add_subcommands(b)
    subs = {"mount": m, "umount": u, "status": st, "bucket": b}
    subs.update({f"bucket {name}": leaf for name, leaf in leaves.items()})
    return parser, subs


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
    parser, subs = build_parsers()
    ns = parser.parse_args(argv)
    path = _config_path(ns)
    if path is None:
        return ns
    settings = read_config(path)
    parser, subs = build_parsers()
    target = subs[ns.command]
    if ns.command == "bucket":
        target = subs[f"bucket {ns.bucket_command}"]
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
