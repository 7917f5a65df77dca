"""Command line: ``osfs mount|umount`` and the ``mount.osfs`` helper for mount(8) and fstab.

Parses arguments, ``-o`` options and the environment into :mod:`osfs.config` values and hands
them to :mod:`osfs.mount`. No filesystem logic lives here.

Secrets are never taken from the command line (they would show in ``ps``): passwords and
tokens come from files (``--password-file``, ``--token-file``) or from the environment
(``NATS_PASSWORD``, ``NATS_TOKEN``).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from . import __version__
from .config import BucketDefaults, ConnectOptions, FsOptions, MountOptions
from .units import parse_duration, parse_size

ENV_HELP = """\
environment:
  NATS_URL             server URL(s), comma-separated (same as --server)
  NATS_CREDS           credentials file (same as --creds)
  NATS_NKEY            nkey seed file (same as --nkey)
  NATS_USER            user name (same as --user)
  NATS_PASSWORD        password for NATS_USER/--user
  NATS_TOKEN           authentication token
  NATS_CA, NATS_CERT, NATS_KEY   TLS CA, client certificate and key files
"""


class UsageError(Exception):
    """Bad command-line input; reported as one line with exit code 2."""


def _read_secret(path: str, what: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read {what} file {path}: {exc.strerror}") from exc


def _add_mount_arguments(p: argparse.ArgumentParser) -> None:
    conn = p.add_argument_group("connection (no server named: start a private nats-server)")
    conn.add_argument("--server", "-s", metavar="URL[,URL…]", help="NATS server URL(s); env NATS_URL")
    conn.add_argument("--creds", metavar="FILE", help="NATS credentials (JWT + nkey) file")
    conn.add_argument("--nkey", metavar="FILE", help="nkey seed file")
    conn.add_argument("--user", metavar="NAME", help="user name (password from --password-file)")
    conn.add_argument("--password-file", metavar="FILE", help="file holding the password")
    conn.add_argument("--token-file", metavar="FILE", help="file holding the authentication token")
    conn.add_argument("--tls-ca", metavar="FILE", help="CA certificate(s) to verify the server")
    conn.add_argument("--tls-cert", metavar="FILE", help="client certificate")
    conn.add_argument("--tls-key", metavar="FILE", help="client certificate's key")
    conn.add_argument("--data-dir", metavar="DIR", help="embedded server data (default $XDG_DATA_HOME/osfs)")

    fs = p.add_argument_group("filesystem")
    fs.add_argument("--bucket", "-b", metavar="NAME", help="mount only this bucket as the root")
    fs.add_argument("--read-only", "-r", action="store_true", help="refuse every change (EROFS)")
    fs.add_argument("--chunk-size", default="128K", metavar="SIZE", help="chunk size of new objects (128K)")
    fs.add_argument("--cache-size", default="256M", metavar="SIZE", help="memory for cached chunks (256M)")
    fs.add_argument("--spool-dir", metavar="DIR", help="where files written out of order are spooled")
    fs.add_argument("--uid", type=int, help="owner of files without one of their own (you)")
    fs.add_argument("--gid", type=int, help="group of files without one of their own (yours)")
    fs.add_argument("--umask", default="022", help="permission mask, octal (022)")
    fs.add_argument("--allow-other", action="store_true", help="let other users use the mount")
    fs.add_argument("--default-permissions", action="store_true", help="let the kernel check modes")
    fs.add_argument("--attr-timeout", default="1s", metavar="DURATION", help="kernel attribute cache (1s)")
    fs.add_argument("--bucket-storage", default="file", choices=["file", "memory"], help="mkdir'd buckets")
    fs.add_argument("--bucket-replicas", type=int, default=1, help="replicas of mkdir'd buckets (1)")
    fs.add_argument("--bucket-compression", default="none", choices=["none", "s2"], help="of mkdir'd buckets")
    fs.add_argument("--bucket-ttl", default="0", metavar="DURATION", help="object TTL of mkdir'd buckets")
    fs.add_argument("--bucket-max-object-size", default="-1", metavar="SIZE", help="for mkdir'd buckets")

    run = p.add_argument_group("process")
    run.add_argument("--foreground", "-f", action="store_true", help="stay attached (systemd, debugging)")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument("--log-file", metavar="FILE", help="log here (default: stderr in the foreground)")
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
_O_VALUES = {
    "server",
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
    "spool_dir",
    "uid",
    "gid",
    "umask",
    "attr_timeout",
    "log_level",
    "log_file",
    "bucket_storage",
    "bucket_replicas",
    "bucket_compression",
    "bucket_ttl",
    "bucket_max_object_size",
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
    "x-systemd.automount",
}


def apply_o_options(ns: argparse.Namespace, options: list[str]) -> None:
    """Fold ``-o a,b=c`` options into the parsed namespace; ``UsageError`` on unknown ones."""
    for group in options:
        for item in filter(None, group.split(",")):
            key, sep, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if key in _O_FLAGS and not sep:
                setattr(ns, _O_FLAGS[key], True)
            elif key in _O_VALUES and sep:
                setattr(ns, key, int(value) if key in ("uid", "gid", "bucket_replicas") else value)
            elif key in _O_IGNORED or key.startswith(("x-systemd.", "x-", "comment=")):
                continue
            else:
                raise UsageError(f"unknown mount option: {item}")


def connect_options(ns: argparse.Namespace, env: dict[str, str]) -> ConnectOptions:
    """Connection settings from arguments, falling back to the NATS_* environment."""
    servers_text = ns.server or env.get("NATS_URL", "")
    servers = tuple(s.strip() for s in servers_text.split(",") if s.strip())
    password = token = None
    if ns.password_file:
        password = _read_secret(ns.password_file, "password")
    elif env.get("NATS_PASSWORD"):
        password = env["NATS_PASSWORD"]
    if ns.token_file:
        token = _read_secret(ns.token_file, "token")
    elif env.get("NATS_TOKEN"):
        token = env["NATS_TOKEN"]
    user = ns.user or env.get("NATS_USER")
    if password and not user:
        raise UsageError("a password was given without a user (--user or NATS_USER)")
    for flag, path in (
        ("--creds", ns.creds or env.get("NATS_CREDS")),
        ("--nkey", ns.nkey or env.get("NATS_NKEY")),
        ("--tls-ca", ns.tls_ca),
        ("--tls-cert", ns.tls_cert),
        ("--tls-key", ns.tls_key),
    ):
        if path and not os.path.isfile(path):
            raise UsageError(f"{flag}: no such file: {path}")
    if bool(ns.tls_cert) != bool(ns.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    return ConnectOptions(
        servers=servers,
        user=user,
        password=password,
        token=token,
        creds_file=ns.creds or env.get("NATS_CREDS"),
        nkey_seed_file=ns.nkey or env.get("NATS_NKEY"),
        tls_ca=ns.tls_ca or env.get("NATS_CA"),
        tls_cert=ns.tls_cert or env.get("NATS_CERT"),
        tls_key=ns.tls_key or env.get("NATS_KEY"),
    )


def mount_options(ns: argparse.Namespace, env: dict[str, str]) -> MountOptions:
    """Build the frozen mount configuration; ``UsageError`` on bad values."""
    apply_o_options(ns, ns.options)
    try:
        chunk_size = parse_size(str(ns.chunk_size))
        cache_size = parse_size(str(ns.cache_size))
        umask = int(str(ns.umask), 8)
        attr_timeout = parse_duration(str(ns.attr_timeout))
        defaults = BucketDefaults(
            storage=ns.bucket_storage,
            replicas=int(ns.bucket_replicas),
            compression=ns.bucket_compression,
            ttl=parse_duration(str(ns.bucket_ttl)),
            max_object_size=parse_size(str(ns.bucket_max_object_size)),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if not 1024 <= chunk_size <= 8 * 1024 * 1024:
        raise UsageError(f"--chunk-size must be between 1K and 8M, not {ns.chunk_size}")
    if cache_size < 0:
        raise UsageError("--cache-size must be a size, not unlimited")
    if not 0 <= umask <= 0o777:
        raise UsageError(f"--umask must be octal 000-777, not {ns.umask}")
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
    return MountOptions(
        mountpoint=Path(ns.mountpoint).absolute(),
        connect=connect_options(ns, env),
        fs=fs,
        foreground=bool(ns.foreground),
        allow_other=bool(ns.allow_other),
        default_permissions=bool(ns.default_permissions),
        log_level=ns.log_level.upper(),
        log_file=ns.log_file,
        data_dir=Path(ns.data_dir) if ns.data_dir else None,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="osfs",
        description="Mount the NATS JetStream Object Store as a filesystem: buckets are directories, "
        "objects are files, object links are symlinks.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"osfs {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    m = sub.add_parser(
        "mount",
        help="mount object stores at a directory",
        description="Mount the object stores of a NATS server at MOUNTPOINT and return once the mount "
        "answers. With no server named (no --server, no NATS_URL), a private nats-server is started "
        "on loopback with its data under $XDG_DATA_HOME/osfs and stopped at unmount.",
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``osfs``."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    from . import mount as mount_mod

    try:
        if ns.command == "mount":
            return mount_mod.mount(mount_options(ns, dict(os.environ)))
        if ns.command == "umount":
            return mount_mod.umount(
                Path(ns.mountpoint).absolute(), lazy=ns.lazy, timeout=parse_duration(ns.timeout)
            )
    except UsageError as exc:
        print(f"osfs: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"osfs: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {ns.command}")
    return 2


def mount_helper_main(argv: list[str] | None = None) -> int:
    """Entry point of ``mount.osfs SPEC MOUNTPOINT [-o OPTS]`` as mount(8) calls it.

    SPEC is ``[BUCKET@]URL[,URL…]`` or ``[BUCKET@]embedded`` (a private server). ``-n``
    (no mtab), ``-s`` (sloppy), ``-f`` (fake) and ``-v`` are accepted as mount(8) passes them.
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
            pass
        elif a == "-f":
            fake = True
        elif a.startswith("-"):
            print(f"mount.osfs: unknown argument {a}", file=sys.stderr)
            return 2
        else:
            positional.append(a)
        i += 1
    if len(positional) != 2:
        print(
            "usage: mount.osfs [BUCKET@]URL[,URL…]|[BUCKET@]embedded MOUNTPOINT [-o OPTIONS]", file=sys.stderr
        )
        return 2
    spec, mountpoint = positional
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
        return 0
    return main(argv2)
