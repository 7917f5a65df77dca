"""Benchmark the mount against nats-py's own ObjectStore on the same server, in one run.

Prints MB/s (10^6 bytes/s), rates and ratios, medians over ``--rounds``:

* time to mount (embedded server, and an external server);
* ``cp`` of a file into the mount (1 MiB writes) vs nats-py ``ObjectStore.put`` of the
  same file and vs a raw pipelined publish loop of its 128 KiB chunks (16 acks in flight);
  and ``shutil.copyfile`` into it (``sendfile``: the kernel writes 64 KiB at a time). The
  source is in the page cache for all of them (the baselines read it from there too), so
  the ratios compare upload paths, not the local disk, and every timed run starts with no
  dirty pages left (``os.sync``), so none pays for the write-back of the one before;
* ``cp`` of the object out of a fresh mount (cold chunk cache) vs nats-py
  ``ObjectStore.get(writeinto=file)`` and vs a raw Direct Get loop (16 in flight);
* cold random 4 KiB reads per second at queue depth 1 and 16 (fresh mount; every offset
  read once; ``POSIX_FADV_RANDOM`` so the kernel reads nothing ahead);
* ``ls -l`` and ``stat`` of every file in a bucket of ``--objects`` objects (fresh mount);
* ``cp -r`` of 1,000 files of 4 KiB into the mount in files/s, against nats-py's sequential
  ``ObjectStore.put`` of the same files (and, as information, all of them put at once), and
  ``rm -r`` of them against nats-py's sequential ``ObjectStore.delete`` (medians over
  ``--rounds``; every round copies into a new directory);
* peak RSS of the osfs process after copying ``--rss-mib`` MiB in and out;
* delay from a put by another client (nats-py) to its visibility in the mount.

Needs root and /dev/fuse. Usage: ``python bench/bench_mount.py [--size-mib 256] [--quick]
[--only stream,rand,...]``; ``--only`` picks groups of figures (see ``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nats
from bench_store import Results, raw_publish_get, settle

from osfs.embedded import EmbeddedServer
from osfs.mount import pid_file

MB = 1e6
#: Chunk size of the raw baselines: osfs's default.
RAW_CHUNK = 128 * 1024
#: Groups of figures ``--only`` can pick.
GROUPS = ("mount", "stream", "rand", "ls", "small", "vis", "rss")


def osfs(*args: str, env: dict | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "osfs", *args],
        check=True,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@contextlib.contextmanager
def mounted(mnt: Path, url: str, *args: str) -> Iterator[Path]:
    osfs("mount", str(mnt), "--server", url, *args)
    try:
        yield mnt
    finally:
        osfs("umount", str(mnt))


def warm_page_cache(path: Path) -> None:
    """Read a local file through once so the next read comes from the page cache, as the
    baselines' reads of it do."""
    with open(path, "rb") as f:
        while f.read(8 * 1024 * 1024):
            pass


async def _peer(url: str, fn):
    nc = await nats.connect(url)
    try:
        return await fn(nc.jetstream())
    finally:
        await nc.close()


def peer(url: str, fn):
    return asyncio.run(_peer(url, fn))


def nats_py_put_get(url: str, bucket: str, src: Path, dst: Path) -> tuple[float, float]:
    async def run(js):
        obs = await js.create_object_store(bucket)
        settle()
        t = time.perf_counter()
        with open(src, "rb") as f:
            await obs.put("peer.bin", f)
        put_s = time.perf_counter() - t
        settle()
        t = time.perf_counter()
        with open(dst, "wb") as f:
            await obs.get("peer.bin", writeinto=f)
        get_s = time.perf_counter() - t
        await js.delete_object_store(bucket)
        return put_s, get_s

    return peer(url, run)


def raw_loops(url: str, src: Path) -> tuple[float, float]:
    """MB/s of a raw pipelined publish loop and a raw Direct Get loop (16 in flight) of ``src``."""
    res = Results()
    data = src.read_bytes()
    asyncio.run(raw_publish_get(url, None, data, RAW_CHUNK, res))
    return res.get("raw publish, 16 acks in flight", RAW_CHUNK), res.get(
        "raw direct get by seq, 16 in flight", RAW_CHUNK
    )


#: Small files copied by the ``small`` figures.
SMALL_FILES = 1000


def nats_py_small(url: str, bucket: str, files: list[Path]) -> tuple[float, float, float]:
    """Files/s of nats-py putting ``files`` one after the other, then all at once (other
    names), and deleting the first ones one after the other."""

    async def run(js):
        obs = await js.create_object_store(bucket)
        blobs = [(f.name, f.read_bytes()) for f in files]
        settle()
        t = time.perf_counter()
        for name, data in blobs:
            await obs.put(name, data)
        seq_put = len(blobs) / (time.perf_counter() - t)
        settle()
        t = time.perf_counter()
        await asyncio.gather(*(obs.put("all/" + name, data) for name, data in blobs))
        all_put = len(blobs) / (time.perf_counter() - t)
        settle()
        t = time.perf_counter()
        for name, _ in blobs:
            await obs.delete(name)
        seq_delete = len(blobs) / (time.perf_counter() - t)
        await js.delete_object_store(bucket)
        return seq_put, all_put, seq_delete

    return peer(url, run)


def delete_buckets(url: str, buckets: list[str]) -> None:
    """Delete ``buckets`` (those that exist) from the server."""

    async def run(js):
        for b in buckets:
            with contextlib.suppress(Exception):
                await js.delete_object_store(b)

    peer(url, run)


def random_reads(path: Path, size: int, depth: int, seconds: float) -> float:
    """Reads per second of distinct random 4 KiB blocks, ``depth`` threads at once."""
    blocks = list(range(size // 4096))
    random.shuffle(blocks)
    lock = threading.Lock()
    count = 0
    stop = time.monotonic() + seconds

    def worker() -> None:
        nonlocal count
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        try:
            while time.monotonic() < stop:
                with lock:
                    if not blocks:
                        return
                    b = blocks.pop()
                os.pread(fd, 4096, b * 4096)
                with lock:
                    count += 1
        finally:
            os.close(fd)

    t = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(depth)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return count / (time.perf_counter() - t)


def make_small_objects(url: str, bucket: str, n: int) -> None:
    """``n`` objects of 100 bytes in ``bucket``, through the osfs store (pipelined)."""
    import trio

    from osfs.config import ConnectOptions
    from osfs.store.nats.store import NatsStore
    from osfs.store.types import BucketConfig, ObjectMeta

    async def run() -> None:
        store = await NatsStore.connect(ConnectOptions(servers=(url,)))
        try:
            await store.create_bucket(BucketConfig(bucket))
            limiter = trio.CapacityLimiter(32)

            async def one(i: int) -> None:
                async with limiter:
                    await store.put(bucket, ObjectMeta(f"d{i % 10}/obj{i:05d}"), b"x" * 100)

            async with trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(one, i)
        finally:
            await store.close()

    trio.run(run)


def visibility_delays(url: str, mnt: Path, bucket: str, trials: int) -> list[float]:
    """Seconds from a nats-py put returning to the object being visible in the mount."""

    async def run(js):
        obs = await js.object_store(bucket)
        delays = []
        for i in range(trials):
            name = f"vis{i}"
            await obs.put(name, b"v")
            t = time.perf_counter()
            path = mnt / bucket / name
            while not await asyncio.to_thread(os.path.exists, path):
                if time.perf_counter() - t > 10:
                    break
                await asyncio.sleep(0.005)
            delays.append(time.perf_counter() - t)
        return delays

    return peer(url, run)


def peak_rss_mib(mnt: Path) -> float:
    pid = int(pid_file(mnt).read_text())
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256, help="size of the streamed file (256)")
    ap.add_argument("--rss-mib", type=int, default=1024, help="size copied for the RSS figure (1024)")
    ap.add_argument("--objects", type=int, default=10_000, help="objects for ls -l / stat (10000)")
    ap.add_argument("--rounds", type=int, default=3, help="repetitions of the streaming figures (3)")
    ap.add_argument("--quick", action="store_true", help="small sizes, one round (a smoke run)")
    ap.add_argument("--server", help="use this server instead of starting one")
    ap.add_argument(
        "--only",
        default=",".join(GROUPS),
        help="comma-separated groups: mount (time to mount), stream (cp in/out and their baselines), "
        "rand (random reads), ls (ls -lR and find), small (cp -r of small files), "
        "vis (visibility of remote puts), rss (peak RSS); default all",
    )
    args = ap.parse_args()
    only = set(args.only.split(","))
    if only - set(GROUPS):
        ap.error(f"unknown groups {sorted(only - set(GROUPS))}; choose from {', '.join(GROUPS)}")
    if args.quick:
        args.size_mib, args.rss_mib, args.objects, args.rounds = 32, 64, 500, 1
    work = Path(tempfile.mkdtemp(prefix="osfs-bench-"))
    server = None
    url = ""
    made: list[str] = []  # buckets to delete at the end
    res: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        res.setdefault(key, []).append(value)

    def med(key: str) -> float:
        return statistics.median(res[key])

    try:
        if args.server:
            url = args.server
        else:
            server = EmbeddedServer(work / "nats", token="").start()
            url = server.url
        nbytes = args.size_mib << 20
        src = work / "src.bin"
        with open(src, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        mnt = work / "mnt"
        mnt.mkdir()
        # bucket names of this run (a shared --server may hold those of earlier runs)
        tag = f"{os.getpid()}"
        many, smallb, rssb = f"many{tag}", f"smallb{tag}", f"rss{tag}"
        made.extend([many, smallb, rssb])
        xdg = {"XDG_DATA_HOME": str(work / "xdg"), "NATS_URL": ""}

        for r in range(args.rounds):
            if "mount" in only:
                t = timed(lambda: osfs("mount", str(mnt), env=xdg))
                osfs("umount", str(mnt), env=xdg)
                add("mount_embedded", t)
                t = timed(lambda: osfs("mount", str(mnt), "--server", url))
                osfs("umount", str(mnt))
                add("mount_external", t)
            if not only & {"stream", "rand"}:
                continue
            bucket = f"bench{tag}r{r}"
            made.append(bucket)
            if "stream" in only:
                py_put, py_get = nats_py_put_get(url, f"py{r}", src, work / "py.out")
                add("py_put", nbytes / py_put / MB)
                add("py_get", nbytes / py_get / MB)
                raw_put, raw_get = raw_loops(url, src)
                add("raw_put", raw_put)
                add("raw_get", raw_get)
            with mounted(mnt, url):
                (mnt / bucket).mkdir()
                warm_page_cache(src)
                settle()
                cmd = ["cp", str(src), str(mnt / bucket / "f.bin")]
                add("cp_in", nbytes / timed(lambda c=cmd: subprocess.run(c, check=True)) / MB)
                if "stream" in only:  # sendfile: the kernel splits it into 64 KiB writes
                    warm_page_cache(src)
                    settle()
                    target = mnt / bucket / "g.bin"
                    add("copyfile_in", nbytes / timed(lambda t=target: shutil.copyfile(src, t)) / MB)
            if "stream" in only:
                with mounted(mnt, url):
                    out = work / "out.bin"
                    settle()
                    cmd = ["cp", str(mnt / bucket / "f.bin"), str(out)]
                    add("cat_out", nbytes / timed(lambda c=cmd: subprocess.run(c, check=True)) / MB)
                    subprocess.run(["cmp", str(src), str(out)], check=True)
                    out.unlink()
            if "rand" in only:
                for depth in (1, 16):
                    with mounted(mnt, url):
                        add(f"rand_qd{depth}", random_reads(mnt / bucket / "f.bin", nbytes, depth, 5.0))
            with mounted(mnt, url):
                shutil.rmtree(mnt / bucket)

        if "ls" in only:
            make_small_objects(url, many, args.objects)
            with mounted(mnt, url):
                add(
                    "ls_l",
                    timed(
                        lambda: subprocess.run(
                            ["ls", "-lR", str(mnt / many)], check=True, stdout=subprocess.DEVNULL
                        )
                    ),
                )
            with mounted(mnt, url):
                add(
                    "find_stat",
                    timed(
                        lambda: subprocess.run(
                            ["find", str(mnt / many), "-type", "f", "-printf", "%s %T@\n"],
                            check=True,
                            stdout=subprocess.DEVNULL,
                        )
                    ),
                )
        if only & {"small", "vis"}:
            small = work / "small"
            small.mkdir()
            for i in range(SMALL_FILES):
                (small / f"s{i:04d}").write_bytes(os.urandom(4096))
            with mounted(mnt, url):
                (mnt / smallb).mkdir()
            for r in range(args.rounds if "small" in only else 1):
                if "small" in only:
                    seq_put, all_put, seq_delete = nats_py_small(
                        url, f"pysmall{tag}r{r}", sorted(small.iterdir())
                    )
                    add("py_small_put", seq_put)
                    add("py_small_put_all", all_put)
                    add("py_small_delete", seq_delete)
                with mounted(mnt, url):
                    target = mnt / smallb / f"r{r}"
                    settle()
                    cmd = ["cp", "-r", str(small), str(target)]
                    add("cp_r_small", SMALL_FILES / timed(lambda c=cmd: subprocess.run(c, check=True)))
                    if "small" in only:
                        settle()
                        cmd = ["rm", "-r", str(target)]
                        add("rm_r_small", SMALL_FILES / timed(lambda c=cmd: subprocess.run(c, check=True)))
        if "vis" in only:
            with mounted(mnt, url):
                res["visibility"] = visibility_delays(url, mnt, smallb, 50)
        if "rss" in only:
            big = work / "big.bin"
            with open(big, "wb") as f:
                for _ in range(args.rss_mib):
                    f.write(os.urandom(1 << 20))
            with mounted(mnt, url):
                (mnt / rssb).mkdir()
                shutil.copyfile(big, mnt / rssb / "big.bin")
                subprocess.run(["cp", str(mnt / rssb / "big.bin"), str(work / "big.out")], check=True)
                add("rss", peak_rss_mib(mnt))
        report(args, url, res)
    finally:
        if server is not None:
            server.stop()
        elif url:
            delete_buckets(url, made)
        shutil.rmtree(work, ignore_errors=True)


def report(args: argparse.Namespace, url: str, res: dict[str, list[float]]) -> None:
    """Print the medians of the figures measured (groups not run are left out)."""

    def med(key: str) -> float:
        return statistics.median(res[key])

    def ratio(a: str, b: str) -> str:
        return f"{med(a) / med(b):6.2f}x"

    print(f"osfs mount benchmark — server {url}, {args.size_mib} MiB file, {args.rounds} round(s), medians")
    if "mount_embedded" in res:
        print(f"  mount, embedded server      {med('mount_embedded'):8.2f} s")
        print(f"  mount, external server      {med('mount_external'):8.2f} s")
    if "py_put" in res:
        print(
            f"  cp into the mount           {med('cp_in'):8.1f} MB/s"
            f"   nats-py put {med('py_put'):7.1f} MB/s {ratio('cp_in', 'py_put')}"
            f"   raw publish loop {med('raw_put'):7.1f} MB/s {ratio('cp_in', 'raw_put')}"
        )
        print(
            f"  shutil.copyfile into it     {med('copyfile_in'):8.1f} MB/s"
            f"   (sendfile: 64 KiB writes)  {ratio('copyfile_in', 'raw_put')} of the raw publish loop"
        )
        print(
            f"  cp out of the mount (cold)  {med('cat_out'):8.1f} MB/s"
            f"   nats-py get {med('py_get'):7.1f} MB/s {ratio('cat_out', 'py_get')}"
            f"   raw direct get loop {med('raw_get'):7.1f} MB/s {ratio('cat_out', 'raw_get')}"
        )
    if "rand_qd1" in res:
        print(f"  random 4 KiB reads, QD1     {med('rand_qd1'):8.0f} /s")
        print(f"  random 4 KiB reads, QD16    {med('rand_qd16'):8.0f} /s")
    if "ls_l" in res:
        print(f"  ls -lR of {args.objects} objects    {med('ls_l'):8.2f} s")
        print(f"  find -printf (stat) of them {med('find_stat'):8.2f} s")
    if "py_small_put" in res:
        print(
            f"  cp -r of {SMALL_FILES} x 4 KiB       {med('cp_r_small'):8.0f} files/s"
            f"   nats-py sequential put {med('py_small_put'):6.0f} files/s"
            f" {ratio('cp_r_small', 'py_small_put')}"
            f"   all puts at once {med('py_small_put_all'):6.0f} files/s"
            f" {ratio('cp_r_small', 'py_small_put_all')}"
        )
        print(
            f"  rm -r of them               {med('rm_r_small'):8.0f} files/s"
            f"   nats-py sequential delete {med('py_small_delete'):6.0f} files/s"
            f" {ratio('rm_r_small', 'py_small_delete')}"
        )
    elif "cp_r_small" in res:
        print(f"  cp -r of {SMALL_FILES} x 4 KiB       {med('cp_r_small'):8.0f} files/s")
    if "visibility" in res:
        vis = res["visibility"]
        print(
            f"  visibility of a remote put  median {statistics.median(vis) * 1000:.0f} ms, "
            f"max {max(vis) * 1000:.0f} ms over {len(vis)}"
        )
    if "rss" in res:
        print(f"  peak RSS after {args.rss_mib} MiB in+out {med('rss'):6.0f} MiB")


if __name__ == "__main__":
    main()
