"""Benchmark the osfs NATS store against nats-py and raw JetStream on one server, in one run.

For each chunk size (128 KiB and 1 MiB by default), on file storage, with one random object
(256 MiB by default), prints MB/s (10^6 bytes/s) of:

* nats-py ``ObjectStore.put`` and ``ObjectStore.get(writeinto=file)`` (the official peer);
* a raw pipelined publish loop (a window of 16 unacknowledged chunks) and a raw Direct Get
  loop by stream sequence (4 and 16 requests in flight): what the server can give;
* osfs ``NatsStore.put``, ``get`` (whole object, digest checked) and ``read`` in sequential
  1 MiB pieces (without and with an 8 MiB read-ahead hint), each read on a fresh store so
  no chunk is cached;

and the ratio of each osfs figure to its baselines. With ``--rss`` it also measures the peak
RSS of a 1 GiB osfs put and of a 1 GiB osfs get, each in a child process (``VmHWM``),
next to the RSS of an idle child that only connected.

Usage: ``python bench/bench_store.py [--size-mib 256] [--chunk-kib 128,1024] [--server URL]
[--repeat N] [--rss]``; with ``--repeat`` every figure is the median of N interleaved rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import nats
import nats.js.api
import trio

from osfs.config import ConnectOptions
from osfs.embedded import EmbeddedServer
from osfs.store.nats.store import NatsStore
from osfs.store.types import BucketConfig, ObjectInfo, ObjectMeta

MiB = 1024 * 1024
BLOCK = MiB


@dataclass
class Results:
    rows: list[tuple[str, int, float]] = field(default_factory=list)

    def add(self, what: str, chunk: int, nbytes: int, seconds: float) -> float:
        rate = nbytes / 1e6 / seconds
        self.rows.append((what, chunk, rate))
        print(f"  {what:<44} {rate:8.1f} MB/s  ({seconds:.2f} s)", flush=True)
        return rate

    def get(self, what: str, chunk: int) -> float:
        """The median of every sample of ``what`` at ``chunk``."""
        return statistics.median(r for w, c, r in self.rows if w == what and c == chunk)


def random_data(size: int) -> bytes:
    return os.urandom(size)


async def nats_connect(url: str, token: str | None) -> nats.NATS:
    return await nats.connect(url, token=token or None, max_reconnect_attempts=0)


async def delete_stream(nc: nats.NATS, bucket: str) -> None:
    await nc.request(f"$JS.API.STREAM.DELETE.OBJ_{bucket}", b"", timeout=30)


# ----- baselines (asyncio, nats-py) -------------------------------------------------------


def settle() -> None:
    """Write back every dirty page before a timed run, so the write-back of what the run
    before stored (the server's file store) does not slow this one down."""
    os.sync()


async def nats_py_put_get(url: str, token: str | None, data: bytes, chunk: int, res: Results) -> None:
    nc = await nats_connect(url, token)
    js = nc.jetstream()
    bucket = f"bench_py_{chunk}"
    obs = await js.create_object_store(bucket, config=nats.js.api.ObjectStoreConfig(storage="file"))
    meta = nats.js.api.ObjectMeta(name="obj", options=nats.js.api.ObjectMetaOptions(max_chunk_size=chunk))
    settle()
    t = time.perf_counter()
    await obs.put("obj", data, meta=meta)
    res.add("nats-py ObjectStore.put", chunk, len(data), time.perf_counter() - t)
    with tempfile.TemporaryFile() as f:
        settle()
        t = time.perf_counter()
        await obs.get("obj", writeinto=f)
        res.add("nats-py ObjectStore.get(writeinto=file)", chunk, len(data), time.perf_counter() - t)
        if f.tell() != len(data):
            raise SystemExit(f"nats-py get returned {f.tell()} bytes, not {len(data)}")
    await delete_stream(nc, bucket)
    await nc.close()


async def raw_publish_get(url: str, token: str | None, data: bytes, chunk: int, res: Results) -> None:
    nc = await nats_connect(url, token)
    js = nc.jetstream()
    bucket = f"bench_raw_{chunk}"
    await nc.request(
        f"$JS.API.STREAM.CREATE.OBJ_{bucket}",
        json.dumps(
            {
                "name": f"OBJ_{bucket}",
                "subjects": [f"$O.{bucket}.C.>", f"$O.{bucket}.M.>"],
                "storage": "file",
                "discard": "new",
                "allow_rollup_hdrs": True,
                "allow_direct": True,
            }
        ).encode(),
        timeout=10,
    )
    subject = f"$O.{bucket}.C.rawnuid"
    window: collections.deque[asyncio.Task] = collections.deque()
    seqs: list[int] = []
    view = memoryview(data)
    settle()
    t = time.perf_counter()
    for pos in range(0, len(data), chunk):
        if len(window) >= 16:
            seqs.append((await window.popleft()).seq)
        window.append(asyncio.ensure_future(js.publish(subject, bytes(view[pos : pos + chunk]))))
    while window:
        seqs.append((await window.popleft()).seq)
    res.add("raw publish, 16 acks in flight", chunk, len(data), time.perf_counter() - t)

    for inflight in (4, 16):
        got = 0
        sem = asyncio.Semaphore(inflight)

        async def fetch(seq: int, sem: asyncio.Semaphore = sem) -> int:
            async with sem:
                msg = await nc.request(
                    f"$JS.API.DIRECT.GET.OBJ_{bucket}", json.dumps({"seq": seq}).encode(), timeout=10
                )
                return len(msg.data)

        settle()
        t = time.perf_counter()
        # bounded task creation: at most 2x in-flight tasks exist at once
        pending: collections.deque[asyncio.Task] = collections.deque()
        for seq in seqs:
            if len(pending) >= 2 * inflight:
                got += await pending.popleft()
            pending.append(asyncio.ensure_future(fetch(seq)))
        while pending:
            got += await pending.popleft()
        res.add(f"raw direct get by seq, {inflight} in flight", chunk, got, time.perf_counter() - t)
        if got != len(data):
            raise SystemExit(f"direct get returned {got} bytes, not {len(data)}")
    await delete_stream(nc, bucket)
    await nc.close()


# ----- osfs (trio) ------------------------------------------------------------------------


def connect_options(url: str, token: str | None) -> ConnectOptions:
    return ConnectOptions(servers=(url,), token=token or None)


async def blocks(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for pos in range(0, len(data), BLOCK):
        yield bytes(view[pos : pos + BLOCK])


async def osfs_bench(url: str, token: str | None, data: bytes, chunk: int, res: Results) -> None:
    opts = connect_options(url, token)
    bucket = f"bench_osfs_{chunk}"
    store = await NatsStore.connect(opts)
    try:
        await store.create_bucket(BucketConfig(bucket, storage="file"))
        settle()
        t = time.perf_counter()
        info = await store.put(bucket, ObjectMeta("obj"), blocks(data), chunk_size=chunk)
        res.add("osfs NatsStore.put", chunk, len(data), time.perf_counter() - t)
    finally:
        await store.close()

    async def fresh(fn: Callable[[NatsStore, ObjectInfo], object]) -> None:
        s = await NatsStore.connect(opts)
        try:
            settle()
            await fn(s, info)  # type: ignore[misc]
        finally:
            await s.close()

    async def whole(s: NatsStore, info: ObjectInfo) -> None:
        t = time.perf_counter()
        got = 0
        async for block in s.get(info):
            got += len(block)
        res.add("osfs NatsStore.get (digest checked)", chunk, got, time.perf_counter() - t)
        if got != len(data):
            raise SystemExit(f"osfs get returned {got} bytes, not {len(data)}")

    def sequential(readahead: int) -> Callable[[NatsStore, ObjectInfo], object]:
        async def run(s: NatsStore, info: ObjectInfo) -> None:
            t = time.perf_counter()
            got = 0
            for off in range(0, info.size, MiB):
                piece = await s.read(info, off, MiB, readahead=readahead)
                if bytes(piece) != data[off : off + MiB]:  # a memoryview compares byte by byte
                    raise SystemExit(f"osfs read at {off} returned wrong bytes")
                got += len(piece)
            label = f"osfs NatsStore.read 1 MiB seq, readahead {readahead // MiB} MiB"
            res.add(label, chunk, got, time.perf_counter() - t)

        return run

    await fresh(whole)
    await fresh(sequential(0))
    await fresh(sequential(8 * MiB))

    async def drop(s: NatsStore, info: ObjectInfo) -> None:
        await s.delete_bucket(bucket)

    await fresh(drop)


# ----- peak RSS of a 1 GiB put and get, in children ---------------------------------------


def rss_child(mode: str, url: str, token: str | None, size: int, chunk: int) -> None:
    """Run one 1 GiB operation and print the peak RSS in KiB."""
    opts = connect_options(url, token)
    bucket = "bench_rss"

    async def source() -> AsyncIterator[bytes]:
        block = os.urandom(BLOCK)
        for i in range(size // BLOCK):
            yield i.to_bytes(8, "little") + block[8:]

    async def main() -> None:
        store = await NatsStore.connect(opts)
        try:
            if mode == "idle":
                await store.bucket_names()
            elif mode == "put":
                await store.create_bucket(BucketConfig(bucket, storage="file"))
                await store.put(bucket, ObjectMeta("big"), source(), chunk_size=chunk)
            elif mode == "get":
                info = await store.info(bucket, "big")
                got = 0
                async for block in store.get(info):
                    got += len(block)
                if got != size:
                    raise SystemExit(f"get returned {got} bytes")
                await store.delete_bucket(bucket)
        finally:
            await store.close()

    trio.run(main)
    print(peak_rss_kib())


def peak_rss_kib() -> int:
    """Peak RSS of this process in KiB: ``VmHWM``, which starts afresh at exec.

    ``ru_maxrss`` is the fallback only: Linux carries it over from the forking parent, so in
    a child of a big process it reports the parent's size.
    """
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_rss(url: str, token: str | None, chunk: int) -> dict[str, int]:
    out = {}
    for mode in ("idle", "put", "get"):
        cmd = [
            sys.executable,
            __file__,
            "--rss-child",
            mode,
            "--server",
            url,
            "--chunk-kib",
            str(chunk // 1024),
        ]
        env = {**os.environ, "OSFS_BENCH_TOKEN": token or ""}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        out[mode] = int(proc.stdout.split()[-1])
    return out


# ----- main -------------------------------------------------------------------------------


def ratio_table(res: Results, chunks: list[int], repeat: int) -> None:
    pairs = [
        ("osfs NatsStore.put", "nats-py ObjectStore.put"),
        ("osfs NatsStore.put", "raw publish, 16 acks in flight"),
        ("osfs NatsStore.get (digest checked)", "nats-py ObjectStore.get(writeinto=file)"),
        ("osfs NatsStore.get (digest checked)", "raw direct get by seq, 16 in flight"),
        ("osfs NatsStore.read 1 MiB seq, readahead 0 MiB", "raw direct get by seq, 16 in flight"),
        ("osfs NatsStore.read 1 MiB seq, readahead 8 MiB", "nats-py ObjectStore.get(writeinto=file)"),
        ("osfs NatsStore.read 1 MiB seq, readahead 8 MiB", "raw direct get by seq, 16 in flight"),
    ]
    print(f"\nMB/s (10^6 bytes/s), median of {repeat} round(s)")
    header = f"{'operation':<50}" + "".join(f"{c // 1024:>9} KiB" for c in chunks)
    print(header)
    for what in dict.fromkeys(w for w, _, _ in res.rows):
        print(f"{what:<50}" + "".join(f"{res.get(what, c):>13.1f}" for c in chunks))
    print("\nratios (osfs / baseline)")
    for ours, base in pairs:
        label = f"{ours.removeprefix('osfs NatsStore.')} / {base}"
        print(f"{label:<90}" + "".join(f"{res.get(ours, c) / res.get(base, c):>7.2f}x" for c in chunks))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", help="NATS URL (default: start an embedded server)")
    p.add_argument("--size-mib", type=int, default=256)
    p.add_argument("--chunk-kib", default="128,1024", help="comma-separated chunk sizes in KiB")
    p.add_argument("--repeat", type=int, default=1, help="rounds (baselines and osfs interleaved); medians")
    p.add_argument("--rss", action="store_true", help="also measure peak RSS of a 1 GiB put and get")
    p.add_argument("--rss-child", choices=("idle", "put", "get"), help=argparse.SUPPRESS)
    args = p.parse_args()
    chunks = [int(c) * 1024 for c in args.chunk_kib.split(",")]

    if args.rss_child:
        rss_child(args.rss_child, args.server, os.environ.get("OSFS_BENCH_TOKEN"), 1024 * MiB, chunks[0])
        return

    server = None
    data_dir = None
    token: str | None = None
    url = args.server
    if url is None:
        data_dir = tempfile.mkdtemp(prefix="osfs-bench-")
        server = EmbeddedServer(data_dir).start()
        url, token = server.url, server.token
    try:
        size = args.size_mib * MiB
        data = random_data(size)
        print(f"object {args.size_mib} MiB, file storage, server {url}", flush=True)
        res = Results()
        for rnd in range(args.repeat):
            for chunk in chunks:
                print(f"round {rnd + 1}/{args.repeat}, chunk {chunk // 1024} KiB", flush=True)
                asyncio.run(nats_py_put_get(url, token, data, chunk, res))
                asyncio.run(raw_publish_get(url, token, data, chunk, res))
                trio.run(osfs_bench, url, token, data, chunk, res)
        ratio_table(res, chunks, args.repeat)
        if args.rss:
            print("\npeak RSS of one 1 GiB object (child processes, VmHWM)")
            for chunk in chunks:
                rss = measure_rss(url, token, chunk)
                print(
                    f"  chunk {chunk // 1024:>5} KiB: idle {rss['idle'] / 1024:.0f} MiB, "
                    f"put {rss['put'] / 1024:.0f} MiB, get {rss['get'] / 1024:.0f} MiB",
                    flush=True,
                )
    finally:
        if server is not None:
            server.stop()
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
