"""Lifecycle of a mount, in one place: checks → (daemon) → server → store → filesystem →
pyfuse3 → signals → readiness (then, in the background, one sweep of orphaned chunks) →
unmount → flush → shutdown.

``mount()`` returns the process exit code. Without ``foreground`` the process forks; the
parent returns only when the child reports the mount answers (exit 0) or why it failed
(one line on stderr, exit 1). Under systemd (``Type=notify``) the foreground process sends
``READY=1`` once the mount answers and ``STOPPING=1`` when it unmounts.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pyfuse3
import trio

from .config import ConnectOptions, FsOptions, MountOptions
from .embedded import DataDirInUse, EmbeddedServerError, default_data_dir, embedded_for, published

log = logging.getLogger("osfs")

READ_AHEAD_KB = 1024


class MountError(Exception):
    """A reason the mount cannot be made, reported as one line."""


# ----- small helpers ---------------------------------------------------------------------


def sd_notify(message: str) -> None:
    """Send ``message`` to systemd if we run under ``Type=notify`` (no-op otherwise)."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        s.sendall(message.encode())


def runtime_dir() -> Path:
    """Where mount daemons leave their pid files."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if os.getuid() == 0:
        base = "/run"
    path = Path(base) / "osfs" if base else Path(f"/tmp/osfs-{os.getuid()}")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def pid_file(mountpoint: Path) -> Path:
    key = hashlib.sha256(str(mountpoint).encode()).hexdigest()[:16]
    return runtime_dir() / f"mount-{key}.pid"


def check_mountpoint(mountpoint: Path) -> None:
    """``MountError`` unless ``mountpoint`` is an existing, empty directory we may use."""
    if not mountpoint.exists():
        raise MountError(f"mountpoint {mountpoint} does not exist")
    if not mountpoint.is_dir():
        raise MountError(f"mountpoint {mountpoint} is not a directory")
    if os.path.ismount(mountpoint):
        raise MountError(f"{mountpoint} is already a mount point")
    try:
        if any(mountpoint.iterdir()):
            raise MountError(f"mountpoint {mountpoint} is not empty")
    except PermissionError as exc:
        raise MountError(f"cannot read mountpoint {mountpoint}: permission denied") from exc
    if not os.path.exists("/dev/fuse"):
        raise MountError("no FUSE device (/dev/fuse): load the fuse module or install fuse3")
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        raise MountError("no permission to use /dev/fuse")


def set_read_ahead(dev: int, kb: int = READ_AHEAD_KB) -> None:
    """Let the kernel send 1 MiB read requests to device ``dev`` (best effort; needs root)."""
    path = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
    try:
        path.write_text(str(kb))
    except OSError as exc:
        log.debug("could not set %s: %s", path, exc)


_SYSLOG_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


def stderr_is_journal() -> bool:
    """True when stderr is the journal stream systemd connected (``JOURNAL_STREAM`` names
    its device and inode; a child whose stderr was redirected must not trust the variable)."""
    dev, _, ino = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        st = os.fstat(2)
        return bool(dev and ino) and (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (OSError, ValueError):
        return False


class JournalFormatter(logging.Formatter):
    """``<N>LEVEL logger: message``: the ``<N>`` prefix is the syslog priority that journald
    reads from a service's stderr, so ``journalctl -p warning`` works."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prio = _SYSLOG_PRIORITY.get(record.levelno, 6)
        return "\n".join(f"<{prio}>{line}" for line in super().format(record).splitlines() or [""])


def setup_logging(opts: MountOptions, daemon: bool) -> None:
    """Log through :mod:`logging`: to ``--log-file``; else, under systemd (stderr connected
    to the journal), to stderr with syslog priorities; else to stderr in the foreground and to
    ``DATA_DIR/osfs.log`` as a daemon."""
    root = logging.getLogger()
    root.handlers.clear()
    journal = not opts.log_file and not daemon and stderr_is_journal()
    if opts.log_file:
        handler: logging.Handler = logging.FileHandler(opts.log_file)
    elif daemon:
        log_dir = opts.data_dir or default_data_dir()
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_dir / "osfs.log")
    else:
        handler = logging.StreamHandler(sys.stderr)
    if journal:
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(opts.log_level)
    for noisy in ("nats", "asyncio", "trio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


# ----- the trio side ---------------------------------------------------------------------


async def _connect(connect: ConnectOptions, fs: FsOptions):  # -> ObjectStore
    from .connect import ConnectError, open_store
    from .store.disk_cache import DiskCache, DiskCacheError

    disk = None
    if fs.disk_cache is not None:
        try:
            disk = await trio.to_thread.run_sync(DiskCache, fs.disk_cache, fs.disk_cache_size)
        except DiskCacheError as exc:
            raise MountError(str(exc)) from exc
    try:
        return await open_store(connect, cache_size=fs.cache_size, disk_cache=disk)
    except ConnectError as exc:
        raise MountError(str(exc)) from exc


def fuse_options(opts: MountOptions) -> set[str]:
    """The FUSE mount options: ``default_permissions`` (the kernel checks modes) follows
    ``allow_other`` unless the user chose explicitly (``MountOptions.default_permissions``)."""
    options = set(pyfuse3.default_options)
    options.discard("default_permissions")
    options |= {f"fsname={opts.fsname}", "subtype=osfs", "noatime"}
    checked = opts.allow_other if opts.default_permissions is None else opts.default_permissions
    if checked:
        options.add("default_permissions")
    if opts.allow_other:
        options.add("allow_other")
    if opts.fs.read_only:
        options.add("ro")
    return options


async def _wait_until_answering(mountpoint: Path) -> int:
    """Stat the mountpoint from a worker thread (the request is served by this process's own
    trio loop, so it must never be made from the trio thread); return its device number."""
    st = await trio.to_thread.run_sync(os.stat, mountpoint)
    return st.st_dev


async def _serve(opts: MountOptions, on_ready) -> None:
    from .fs import Filesystem
    from .fuse_ops import FuseOps
    from .stats import serve_prometheus

    listeners = []
    if opts.metrics_port is not None:
        try:
            listeners = await trio.open_tcp_listeners(opts.metrics_port, host="127.0.0.1")
        except OSError as exc:
            raise MountError(
                f"cannot serve metrics on 127.0.0.1:{opts.metrics_port}: {exc.strerror}"
            ) from exc
    store = await _connect(opts.connect, opts.fs)
    try:
        fs = Filesystem(store, opts.fs)
        fs.mountpoint = str(opts.mountpoint)
        ops = FuseOps(fs)
        started = trio.current_time()  # no upload of this mount starts before this
        try:
            pyfuse3.init(ops, str(opts.mountpoint), fuse_options(opts))
        except RuntimeError as exc:
            raise MountError(f"cannot mount {opts.mountpoint}: {exc}") from exc
        mounted = True
        try:
            async with trio.open_nursery() as nursery:
                await fs.start(nursery)
                nursery.start_soon(_signals)
                main_done = trio.Event()

                async def run_main() -> None:
                    try:
                        await pyfuse3.main()
                    finally:
                        main_done.set()
                        nursery.cancel_scope.cancel()

                nursery.start_soon(run_main)
                if listeners:
                    nursery.start_soon(serve_prometheus, ops.stats, str(opts.mountpoint), listeners)
                set_read_ahead(await _wait_until_answering(opts.mountpoint))
                log.info("mounted %s at %s", _where(opts), opts.mountpoint)
                on_ready()
                nursery.start_soon(_status_updates, ops)
                if opts.orphan_grace is not None and not opts.fs.read_only:
                    nursery.start_soon(sweep_orphans, store, opts.orphan_grace, started, opts.fs.bucket)
                await main_done.wait()
        finally:
            sd_notify("STOPPING=1")
            with trio.CancelScope(shield=True):
                try:
                    await fs.flush_all()
                except Exception:
                    log.exception("flushing files at unmount failed")
                pyfuse3.close(unmount=mounted)
                await fs.close()
    finally:
        with trio.CancelScope(shield=True):
            await store.close()
        log.info("unmounted %s", opts.mountpoint)


def _where(opts: MountOptions) -> str:
    return "the embedded server" if opts.embedded else ",".join(opts.connect.servers)


async def sweep_orphans(store, grace: float, started: float, only: str | None = None) -> None:
    """Purge, once, the chunks no meta names in every bucket (or just ``only``): those whose
    newest message was stored at least ``grace`` seconds before ``started`` (a
    ``trio.current_time()``), so no upload of this mount is ever touched. Logs an INFO line
    for each bucket where it purged something and one when done; never raises a store error
    (sealed buckets and mirrors are skipped, failures are warnings)."""
    from .store.errors import BucketNotFound, Sealed, StoreError

    try:
        buckets = [only] if only else await store.bucket_names()
    except StoreError as exc:
        log.warning("orphaned chunks not swept: cannot list buckets: %s", exc)
        return
    total = 0
    for bucket in buckets:
        try:
            purged = await store.sweep_orphans(bucket, grace + trio.current_time() - started)
        except (Sealed, BucketNotFound):
            continue
        except StoreError as exc:
            log.warning("orphaned chunks of bucket %s not swept: %s", bucket, exc)
            continue
        total += purged
        log.log(
            logging.INFO if purged else logging.DEBUG,
            "bucket %s: purged the orphaned chunks of %d unfinished upload(s)",
            bucket,
            purged,
        )
    log.info("orphan sweep done: %d bucket(s), %d unfinished upload(s) purged", len(buckets), total)


async def _status_updates(ops, interval: float = 10.0) -> None:
    """Keep systemd's status line current (no-op outside systemd)."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return
    while True:
        await trio.sleep(interval)
        s = ops.stats()
        sd_notify(
            f"STATUS=read {s['bytes_read']} B, wrote {s['bytes_written']} B, "
            f"{s['uploads_in_flight']} uploads in flight, {s['errors']} errors"
        )


async def _signals() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            if signum == signal.SIGHUP:
                continue
            log.info("%s: unmounting", signal.Signals(signum).name)
            pyfuse3.terminate()


def _run(opts: MountOptions, on_ready) -> None:
    """Start the embedded server if needed (its address published in its data directory for
    ``osfs bucket`` while it runs), then serve until unmounted."""
    if opts.connect.servers:
        trio.run(_serve, opts, on_ready)
        return
    try:
        with embedded_for(opts.data_dir or default_data_dir()) as server, published(server):
            connect = replace(opts.connect, servers=(server.url,), token=server.token)
            trio.run(_serve, replace(opts, connect=connect, embedded=True), on_ready)
    except DataDirInUse as exc:
        raise MountError(str(exc)) from exc
    except EmbeddedServerError as exc:
        raise MountError(f"cannot start the embedded nats-server: {exc}") from exc


def mount(opts: MountOptions) -> int:
    """Mount as ``opts`` says; the exit code of ``osfs mount``."""
    try:
        check_mountpoint(opts.mountpoint)
    except MountError as exc:
        print(f"osfs: {exc}", file=sys.stderr)
        return 1
    if opts.foreground:
        setup_logging(opts, daemon=False)
        return _run_reporting(opts, lambda: sd_notify(f"READY=1\nSTATUS=mounted at {opts.mountpoint}"))
    return _daemonize(opts)


def _run_reporting(opts: MountOptions, on_ready) -> int:
    pidf = pid_file(opts.mountpoint)
    pidf.write_text(str(os.getpid()))
    try:
        _run(opts, on_ready)
        return 0
    except MountError as exc:
        log.error("%s", exc)
        sd_notify(f"STATUS=failed: {exc}")
        if opts.log_file or not stderr_is_journal():
            print(f"osfs: {exc}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(OSError):
            pidf.unlink()


def _daemonize(opts: MountOptions) -> int:
    """Fork; the parent waits for the child's one-line verdict on a pipe."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(wfd)
        with os.fdopen(rfd, "rb") as r:
            verdict = r.read().decode(errors="replace").strip()
        if verdict == "ready":
            return 0
        if not verdict:
            _, status = os.waitpid(pid, os.WNOHANG)
            verdict = "the mount process exited before the mount was ready; see its log"
        print(f"osfs: {verdict}", file=sys.stderr)
        return 1
    # child
    os.close(rfd)
    os.setsid()
    status = 1
    try:
        setup_logging(opts, daemon=True)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(devnull, fd)
        reported = False

        def on_ready() -> None:
            nonlocal reported
            os.write(wfd, b"ready")
            os.close(wfd)
            reported = True
            os.dup2(devnull, 2)

        pidf = pid_file(opts.mountpoint)
        pidf.write_text(str(os.getpid()))
        try:
            _run(opts, on_ready)
            status = 0
        except MountError as exc:
            log.error("%s", exc)
            if not reported:
                os.write(wfd, str(exc).encode())
        except BaseException as exc:
            log.exception("mount failed")
            if not reported:
                os.write(wfd, f"mount failed: {exc}".encode())
        finally:
            with contextlib.suppress(OSError):
                pidf.unlink()
    finally:
        os._exit(status)


def process_running(pid: int) -> bool:
    """True while ``pid`` exists and has not exited (a zombie waiting for its parent has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def umount(mountpoint: Path, *, lazy: bool = False, timeout: float = 60.0) -> int:
    """Unmount ``mountpoint`` (files are uploaded when closed, so nothing dirty remains
    once the kernel lets go), then wait for the mount process to finish its shutdown."""
    pidf = pid_file(mountpoint)
    pid = None
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidf.read_text())
    cmd = ["fusermount3", "-u"] + (["-z"] if lazy else []) + [str(mountpoint)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        msg = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "fusermount3 failed"
        print(f"osfs: cannot unmount {mountpoint}: {msg}", file=sys.stderr)
        return 1
    if pid is not None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process_running(pid):
                break
            time.sleep(0.05)
        else:
            print(f"osfs: the mount process {pid} is still shutting down", file=sys.stderr)
            return 1
    return 0
