"""Helpers for fault tests: restartable servers, a 3-node cluster, raw nats-py access.

Everything listens on loopback. Servers started here are stopped by the fixtures that own
them; a killed node can be started again on the same ports and store directory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest

from osfs.embedded import EmbeddedServer, find_nats_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "mount"))

from mountkit import Mounted, requires_fuse, start_mount

__all__ = [
    "Cluster",
    "Mounted",
    "RestartableServer",
    "cat_with_fault",
    "chunk_subjects",
    "cp_with_fault",
    "free_port",
    "kill_mount",
    "live_metas",
    "meta_subject",
    "os_error",
    "peer",
    "raw_object",
    "requires_fuse",
    "sh",
    "start_mount",
    "store_call",
    "wait_for",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(pred: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1) -> bool:
    """Poll ``pred`` until it is true (tests wait for a state, never for a time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except Exception:  # the state is not reached yet; the last try below reports
            pass
        time.sleep(interval)
    return bool(pred())


def sh(*cmd: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, **kw)


def peer(url: str | list[str], fn: Callable[..., Any]) -> Any:
    """Run ``await fn(nc, js)`` with nats-py (a client nobody here wrote) and return its result."""

    async def run() -> Any:
        servers = url if isinstance(url, list) else [url]
        nc = await nats.connect(servers=servers, connect_timeout=5, max_reconnect_attempts=5)
        try:
            return await fn(nc, nc.jetstream(timeout=10))
        finally:
            await nc.close()

    return asyncio.run(run())


def meta_subject(bucket: str, name: str) -> str:
    return f"$O.{bucket}.M.{base64.urlsafe_b64encode(name.encode()).decode()}"


async def chunk_subjects(js: Any, bucket: str) -> dict[str, int]:
    """Message count per chunk subject of ``bucket`` (``{"$O.b.C.<nuid>": n}``)."""
    nc = js._nc
    body = json.dumps({"subjects_filter": f"$O.{bucket}.C.>"}).encode()
    msg = await nc.request(f"$JS.API.STREAM.INFO.OBJ_{bucket}", body, timeout=10)
    reply = json.loads(msg.data)
    return dict(((reply.get("state") or {}).get("subjects")) or {})


async def live_metas(js: Any, bucket: str) -> dict[str, dict]:
    """Last meta (decoded JSON) per meta subject of ``bucket``, delete markers left out."""
    nc = js._nc
    body = json.dumps({"subjects_filter": f"$O.{bucket}.M.>"}).encode()
    msg = await nc.request(f"$JS.API.STREAM.INFO.OBJ_{bucket}", body, timeout=10)
    subjects = ((json.loads(msg.data).get("state") or {}).get("subjects")) or {}
    out = {}
    for subj in subjects:
        raw = await js.get_last_msg(f"OBJ_{bucket}", subj)
        try:
            doc = json.loads(raw.data)
        except ValueError:
            continue
        if isinstance(doc, dict) and not doc.get("deleted"):
            out[str(doc.get("name"))] = doc
    return out


class RestartableServer:
    """A JetStream server on a fixed loopback port and store directory; ``restart`` keeps both."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.server = EmbeddedServer(data_dir, token="", port=self.port)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> RestartableServer:
        self.server.start()
        return self

    def stop(self, kill: bool = False) -> None:
        proc = self.server.process
        if kill and proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        self.server.stop()

    @property
    def running(self) -> bool:
        return self.server.process is not None and self.server.process.poll() is None


class Cluster:
    """Three ``nats-server`` processes with cluster routes and JetStream, on loopback."""

    def __init__(self, base: Path, size: int = 3) -> None:
        self.base = base
        self.names = [f"n{i + 1}" for i in range(size)]
        self.client_ports = {n: free_port() for n in self.names}
        self.route_ports = {n: free_port() for n in self.names}
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{self.client_ports[n]}" for n in self.names]

    def url_of(self, name: str) -> str:
        return f"nats://127.0.0.1:{self.client_ports[name]}"

    def _conf(self, name: str) -> Path:
        routes = ", ".join(f'"nats-route://127.0.0.1:{self.route_ports[n]}"' for n in self.names if n != name)
        store = self.base / name / "js"
        store.mkdir(parents=True, exist_ok=True)
        conf = self.base / name / "nats.conf"
        conf.write_text(
            f"server_name: {name}\n"
            f'listen: "127.0.0.1:{self.client_ports[name]}"\n'
            "max_payload: 8MB\n"
            f"jetstream {{ store_dir: {json.dumps(str(store))} }}\n"
            f'cluster {{ name: osfs_faults, listen: "127.0.0.1:{self.route_ports[name]}", '
            f"routes: [{routes}] }}\n"
        )
        return conf

    def start_node(self, name: str) -> None:
        conf = self._conf(name)
        log = open(self.base / name / "server.log", "ab")  # noqa: SIM115 - owned by the child
        try:
            self.procs[name] = subprocess.Popen(
                [find_nats_server(), "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()

    def start(self, timeout: float = 60.0) -> Cluster:
        for n in self.names:
            self.start_node(n)
        if not wait_for(self.jetstream_ready, timeout, 0.5):
            self.stop()
            raise RuntimeError("the JetStream cluster did not elect a meta leader")
        return self

    def jetstream_ready(self) -> bool:
        async def check(nc, js) -> bool:
            try:
                await js.account_info()
                return True
            except Exception:
                return False

        try:
            return bool(peer(self.urls, check))
        except Exception:
            return False

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        for n in list(self.procs):
            proc = self.procs.pop(n)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def stream_leader(self, stream: str) -> str:
        async def get(nc, js) -> str:
            si = await js.stream_info(stream)
            return si.cluster.leader

        return peer(self.urls, get)


def kill_mount(m: Mounted) -> None:
    """SIGKILL the osfs process and detach its dead mount point."""
    if m.proc.poll() is None:
        os.kill(m.proc.pid, signal.SIGKILL)
        m.proc.wait()
    subprocess.run(["fusermount3", "-u", "-z", str(m.path)], capture_output=True)


def store_call(url: str | list[str], fn: Callable[..., Any]) -> Any:
    """Run ``await fn(store)`` on osfs's own :class:`NatsStore` (in a fresh trio run)."""
    import trio

    from osfs.config import ConnectOptions
    from osfs.store.nats.store import NatsStore

    servers = tuple(url) if isinstance(url, list) else (url,)

    async def run() -> Any:
        store = await NatsStore.connect(ConnectOptions(servers=servers))
        try:
            return await fn(store)
        finally:
            await store.close()

    return trio.run(run)


def os_error(fn: Callable[[], Any]) -> int | None:
    """The errno ``fn()`` fails with (None if it succeeds)."""
    try:
        fn()
    except OSError as exc:
        return exc.errno
    return None


async def raw_object(js: Any, bucket: str, name: str) -> bytes | None:
    """The live object ``bucket/name`` read with plain JetStream message gets (nats-py's own
    object-store ``get`` is far too slow for large objects); None if there is none. Raises
    AssertionError when the meta and its chunks disagree (a partial object)."""
    import hashlib

    stream = f"OBJ_{bucket}"
    try:
        msg = await js.get_last_msg(stream, meta_subject(bucket, name))
    except nats.js.errors.NotFoundError:
        return None
    meta = json.loads(msg.data)
    if meta.get("deleted"):
        return None
    subject = f"$O.{bucket}.C.{meta['nuid']}"
    parts = []
    seq = 0
    for _ in range(int(meta.get("chunks", 0))):
        m = await js.get_msg(stream, seq=seq + 1, next=True, subject=subject)
        seq = m.seq
        parts.append(m.data or b"")
    data = b"".join(parts)
    assert len(data) == meta.get("size", 0), (
        f"{bucket}/{name}: {len(data)} bytes, meta says {meta.get('size')}"
    )
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
    assert meta.get("digest") == f"SHA-256={digest}", f"{bucket}/{name}: digest mismatch"
    return data


def cp_with_fault(dst: Path, data: bytes, tmp: Path, pause: int, fault, recover=None) -> tuple[int, str]:
    """``cp`` from a FIFO to ``dst``: feed it ``pause`` bytes, run ``fault()``, feed the rest
    from a thread while ``recover()`` (if any) runs here. Returns cp's exit code and stderr."""
    fifo = tmp / f"fifo-{dst.name}"
    os.mkfifo(fifo)
    proc = subprocess.Popen(["cp", str(fifo), str(dst)], stderr=subprocess.PIPE)
    faulted = threading.Event()

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as w:
            w.write(data[:pause])
            w.flush()
            faulted.wait()
            w.write(data[pause:])

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        _when_drained(fifo, proc)
        fault()
        faulted.set()
        if recover is not None:
            recover()
        rc = proc.wait(180)
        feeder.join(30)
        return rc, proc.stderr.read().decode(errors="replace")
    except subprocess.TimeoutExpired:
        pytest.fail("cp hung across the fault")
    finally:
        faulted.set()
        if proc.poll() is None:
            proc.kill()


def _when_drained(fifo: Path, proc: subprocess.Popen) -> None:
    """Wait until cp has taken everything fed so far (the FIFO is empty)."""
    import fcntl
    import termios

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            time.sleep(0.02)
            continue
        try:
            buf = bytearray(4)
            fcntl.ioctl(fd, termios.FIONREAD, buf)
        finally:
            os.close(fd)
        if int.from_bytes(buf, sys.byteorder) == 0 and proc.poll() is None:
            return
        time.sleep(0.02)


def cat_with_fault(src: Path, pause: int, fault, recover=None) -> tuple[int, bytes, str]:
    """``cat src``: take ``pause`` bytes of its output, run ``fault()``, take the rest in a
    thread while ``recover()`` (if any) runs here. cat blocks on its full pipe meanwhile, so
    the fault lands in the middle of the read."""
    proc = subprocess.Popen(["cat", str(src)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    parts: list[bytes] = []
    try:
        parts.append(proc.stdout.read(pause))
        fault()
        drain = threading.Thread(target=lambda: parts.append(proc.stdout.read()), daemon=True)
        drain.start()
        if recover is not None:
            recover()
        rc = proc.wait(180)
        drain.join(30)
        return rc, b"".join(parts), proc.stderr.read().decode(errors="replace")
    except subprocess.TimeoutExpired:
        pytest.fail("cat hung across the fault")
    finally:
        if proc.poll() is None:
            proc.kill()
