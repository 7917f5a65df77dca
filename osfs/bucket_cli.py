"""``osfs bucket ls|create|rm|status|seal``: bucket management from the shell.

Uses the connection options of ``osfs mount`` (:mod:`osfs.connargs`). With no server named,
the embedded server's data directory is used: when a mount runs its server, the command talks
to that server (at the address the mount published there); otherwise it starts the server for
the command's duration. A data directory held by a process that published no address (a
mount still starting, another bucket command) is reported as in use.

Output is a table for people or ``--json`` for scripts. Exit codes are in :data:`EXIT_HELP`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from .config import ConnectOptions
from .connargs import ENV_HELP, UsageError, add_connection_arguments, connect_options
from .connect import ConnectError, open_store
from .embedded import DataDirInUse, EmbeddedServerError, default_data_dir, embedded_for, running_server
from .options import apply_o_options
from .store import errors as se
from .store.base import ObjectStore
from .store.types import BucketConfig, BucketStatus, Placement, Republish, StreamSource, valid_bucket_name
from .units import format_duration, format_size, parse_duration, parse_size

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_CONFLICT = 0, 1, 2, 3, 4

EXIT_HELP = """\
exit codes:
  0  success
  1  error (server unreachable, refused, ...)
  2  usage error (bad option or bucket name)
  3  the bucket does not exist
  4  the bucket exists with a different configuration (create)
"""


def add_subcommands(b: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Add the ``bucket`` subcommands to ``b``; returns their parsers by name."""
    sub = b.add_subparsers(dest="bucket_command", metavar="ACTION")
    sub.required = True
    leaves: dict[str, argparse.ArgumentParser] = {}

    def leaf(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_,
            description=help_ + ".",
            epilog=EXIT_HELP + "\n" + ENV_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_connection_arguments(p)
        p.add_argument("--config", metavar="FILE", help="key = value settings (default /etc/osfs/osfs.conf)")
        p.add_argument("-o", dest="options", action="append", default=[], help=argparse.SUPPRESS)
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        leaves[name] = p
        return p

    leaf("ls", "list buckets with their size and options")
    p = leaf("status", "show everything about one bucket")
    p.add_argument("bucket")
    p = leaf("seal", "seal a bucket: no more writes or deletes, ever")
    p.add_argument("bucket")
    p = leaf("rm", "destroy buckets and everything in them")
    p.add_argument("bucket", nargs="+")
    p = leaf("create", "create a bucket (no change if it exists with the same options)")
    p.add_argument("bucket")
    p.add_argument("--description", default="", metavar="TEXT")
    p.add_argument("--max-object-size", default="-1", metavar="SIZE", help="per object, e.g. 1G (unlimited)")
    p.add_argument("--max-bytes", default="-1", metavar="SIZE", help="whole bucket, e.g. 10G (unlimited)")
    p.add_argument("--storage", default="file", choices=["file", "memory"], help="(file)")
    p.add_argument("--replicas", type=int, default=1, metavar="N", help="1-5 (1)")
    p.add_argument("--ttl", default="0", metavar="DURATION", help="objects expire after this, e.g. 30d")
    p.add_argument("--compression", default="none", choices=["none", "s2"], help="(none)")
    p.add_argument("--placement-cluster", metavar="NAME", help="place the bucket in this cluster")
    p.add_argument(
        "--placement-tag", action="append", default=[], metavar="TAG", help="placement tag (repeat)"
    )
    p.add_argument("--republish-dest", metavar="SUBJECT", help="republish stored messages to this subject")
    p.add_argument("--republish-src", metavar="SUBJECT", help="only messages on this subject (>)")
    p.add_argument("--republish-headers-only", action="store_true", help="republish headers only")
    p.add_argument("--mirror", metavar="BUCKET[@API]", help="mirror a bucket (read-only copy)")
    p.add_argument("--source", action="append", default=[], metavar="BUCKET[@API]", help="source (repeat)")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE", help="bucket metadata")
    return leaves


def _source(text: str) -> StreamSource:
    name, _, api = text.partition("@")
    if not name:
        raise UsageError(f"not a bucket to mirror or source: {text!r}")
    return StreamSource(name=name, external_api=api or None)


def bucket_config(ns: argparse.Namespace) -> BucketConfig:
    """The config ``osfs bucket create`` asks for; ``UsageError`` on bad values."""
    if not valid_bucket_name(ns.bucket):
        raise UsageError(f"invalid bucket name {ns.bucket!r} (letters, digits, - and _)")
    metadata: dict[str, str] = {}
    for item in ns.metadata:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--metadata needs KEY=VALUE, not {item!r}")
        metadata[key] = value
    if ns.republish_src and not ns.republish_dest:
        raise UsageError("--republish-src needs --republish-dest")
    if ns.mirror and ns.source:
        raise UsageError("a bucket cannot both --mirror and --source")
    if not 1 <= ns.replicas <= 5:
        raise UsageError(f"--replicas must be 1-5, not {ns.replicas}")
    try:
        ttl = parse_duration(ns.ttl)
        max_object_size = parse_size(ns.max_object_size)
        max_bytes = parse_size(ns.max_bytes)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    placement = None
    if ns.placement_cluster or ns.placement_tag:
        placement = Placement(cluster=ns.placement_cluster, tags=tuple(ns.placement_tag))
    republish = None
    if ns.republish_dest:
        republish = Republish(
            dest=ns.republish_dest, src=ns.republish_src, headers_only=ns.republish_headers_only
        )
    return BucketConfig(
        bucket=ns.bucket,
        description=ns.description,
        max_object_size=max_object_size,
        max_bytes=max_bytes,
        storage=ns.storage,
        replicas=ns.replicas,
        ttl=ttl,
        compression=ns.compression,
        placement=placement,
        republish=republish,
        mirror=_source(ns.mirror) if ns.mirror else None,
        sources=tuple(_source(s) for s in ns.source),
        metadata=metadata,
    )


def status_dict(st: BucketStatus, *, full: bool = False) -> dict[str, Any]:
    """A bucket's status as JSON-able data (``full`` adds the raw stream info)."""
    out: dict[str, Any] = {
        "bucket": st.bucket,
        "description": st.description,
        "objects": st.size if st.size >= 0 else None,
        "bytes": st.bytes,
        "storage": st.storage,
        "replicas": st.replicas,
        "ttl_s": st.ttl,
        "compression": st.compression,
        "sealed": st.sealed,
        "mirror": st.mirror,
        "max_object_size": st.max_object_size,
        "max_bytes": st.max_bytes,
        "metadata": dict(st.metadata),
        "backing_store": st.backing_store,
    }
    if full:
        cfg = dict(st.stream_info.get("config") or {})
        out["placement"] = cfg.get("placement")
        out["republish"] = cfg.get("republish")
        out["sources"] = cfg.get("sources") or []
        out["mirror_of"] = cfg.get("mirror")
        out["stream_info"] = dict(st.stream_info)
    return out


def _flags(st: BucketStatus) -> str:
    return ",".join(f for f, on in (("sealed", st.sealed), ("mirror", st.mirror)) if on) or "-"


def print_table(statuses: list[BucketStatus]) -> None:
    head = ("NAME", "OBJECTS", "SIZE", "STORAGE", "REPL", "TTL", "FLAGS", "DESCRIPTION")
    rows = [head] + [
        (
            s.bucket,
            str(s.size) if s.size >= 0 else "?",
            format_size(s.bytes),
            s.storage,
            str(s.replicas),
            format_duration(s.ttl),
            _flags(s),
            s.description,
        )
        for s in statuses
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])


def print_status(st: BucketStatus) -> None:
    d = status_dict(st, full=True)
    rows = [
        ("bucket", st.bucket),
        ("description", st.description or "-"),
        ("objects", "?" if st.size < 0 else str(st.size)),
        ("size", format_size(st.bytes)),
        ("storage", st.storage),
        ("replicas", str(st.replicas)),
        ("ttl", format_duration(st.ttl)),
        ("compression", st.compression),
        ("max object size", format_size(st.max_object_size)),
        ("max bytes", format_size(st.max_bytes)),
        ("sealed", "yes" if st.sealed else "no"),
        ("mirror", json.dumps(d["mirror_of"]) if d["mirror_of"] else "no"),
        ("sources", json.dumps(d["sources"]) if d["sources"] else "-"),
        ("placement", json.dumps(d["placement"]) if d["placement"] else "-"),
        ("republish", json.dumps(d["republish"]) if d["republish"] else "-"),
        ("metadata", ", ".join(f"{k}={v}" for k, v in sorted(_user_metadata(st).items())) or "-"),
    ]
    for k, v in rows:
        print(f"{k + ':':<17}{v}")


async def _named(name: str, call: Awaitable[Any]) -> Any:
    """Await ``call``; a missing bucket is reported by its name."""
    try:
        return await call
    except se.BucketNotFound:
        raise se.BucketNotFound(name) from None


def _user_metadata(st: BucketStatus) -> dict[str, str]:
    return {k: v for k, v in st.metadata.items() if not k.startswith("_nats.")}


async def _act(ns: argparse.Namespace, store: ObjectStore) -> int:
    cmd = ns.bucket_command
    if cmd == "ls":
        statuses = []
        for name in await store.bucket_names():
            try:
                statuses.append(await store.bucket_status(name))
            except se.BucketNotFound:
                continue
        if ns.json:
            print(json.dumps([status_dict(s) for s in statuses], indent=2))
        else:
            print_table(statuses)
        return EXIT_OK
    if cmd == "create":
        st = await store.create_bucket(ns.config_obj)
    elif cmd == "status":
        st = await _named(ns.bucket, store.bucket_status(ns.bucket))
    elif cmd == "seal":
        st = await _named(ns.bucket, store.seal_bucket(ns.bucket))
    else:  # rm
        for name in ns.bucket:
            await _named(name, store.delete_bucket(name))
            if not ns.json:
                print(f"removed {name}")
        if ns.json:
            print(json.dumps({"removed": ns.bucket}))
        return EXIT_OK
    if ns.json:
        print(json.dumps(status_dict(st, full=cmd == "status"), indent=2))
    elif cmd == "status":
        print_status(st)
    else:
        print(f"{'created' if cmd == 'create' else 'sealed'} {st.bucket}")
    return EXIT_OK


async def _with_store(connect: ConnectOptions, fn: Callable[[ObjectStore], Awaitable[int]]) -> int:
    try:
        store = await open_store(connect, cache_size=1024 * 1024)
    except ConnectError as exc:
        _error(str(exc))
        return EXIT_ERROR
    try:
        return await fn(store)
    finally:
        await store.close()


def _error(msg: str) -> None:
    print(f"osfs: {msg}", file=sys.stderr)


def run(ns: argparse.Namespace, env: dict[str, str]) -> int:
    """Run one ``osfs bucket`` action; the exit code (see :data:`EXIT_HELP`)."""
    logging.basicConfig(level=logging.WARNING, format="osfs: %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    apply_o_options(ns, ns.options)
    connect = connect_options(ns, env)
    if ns.bucket_command == "create":
        ns.config_obj = bucket_config(ns)
    names = ns.bucket if isinstance(getattr(ns, "bucket", None), list) else [getattr(ns, "bucket", None)]
    for name in names:
        if name is not None and not valid_bucket_name(name):
            raise UsageError(f"invalid bucket name {name!r} (letters, digits, - and _)")

    def act(store: ObjectStore) -> Awaitable[int]:
        return _act(ns, store)

    try:
        if connect.servers:
            return trio.run(_with_store, connect, act)
        data_dir = Path(ns.data_dir) if ns.data_dir else default_data_dir()
        try:
            with embedded_for(data_dir) as server:
                local = ConnectOptions(servers=(server.url,), token=server.token)
                return trio.run(_with_store, local, act)
        except DataDirInUse as exc:
            running = running_server(data_dir)
            if running is None:
                _error(str(exc))
                return EXIT_ERROR
            local = ConnectOptions(servers=(running.url,), token=running.token or None)
            return trio.run(_with_store, local, act)
        except EmbeddedServerError as exc:
            _error(f"cannot start the embedded nats-server: {exc}")
            return EXIT_ERROR
    except se.BucketNotFound as exc:
        _error(f"no such bucket: {exc}")
        return EXIT_NOT_FOUND
    except se.Conflict as exc:
        _error(str(exc))
        return EXIT_CONFLICT
    except se.BadName as exc:
        _error(str(exc))
        return EXIT_USAGE
    except se.StoreError as exc:
        where = ",".join(connect.servers) or "the embedded server"
        text = " ".join(str(exc).split())
        _error(f"bucket {ns.bucket_command} failed on {where}: {text}")
        return EXIT_ERROR
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
