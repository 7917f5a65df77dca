"""Benchmark the mount against nats-py's own ObjectStore on the same server, in one run.

Prints MB/s (10^6 bytes/s) and ratios:

* time to mount (embedded server, and an external server);
* ``cp`` of a file into the mount vs nats-py ``ObjectStore.put`` of the same file;
* ``cat`` of the object out of the mount (cold: fresh mount, so no cached chunk) vs nats-py
  ``ObjectStore.get(writeinto=file)``.

Needs root and /dev/fuse. Usage: ``python bench/bench_mount.py [--size-mib 256] [--server URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats

from osfs.embedded import EmbeddedServer


def osfs(*args: str, env: dict | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "osfs", *args],
        check=True,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def drop_page_cache(path: Path) -> None:
    """Evict ``path`` from the page cache so the next read goes to disk (local files only)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


async def nats_py_put_get(url: str, bucket: str, src: Path, dst: Path) -> tuple[float, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    obs = await js.create_object_store(bucket)
    t = time.perf_counter()
    with open(src, "rb") as f:
        await obs.put("peer.bin", f)
    put_s = time.perf_counter() - t
    t = time.perf_counter()
    with open(dst, "wb") as f:
        await obs.get("peer.bin", writeinto=f)
    get_s = time.perf_counter() - t
    await js.delete_object_store(bucket)
    await nc.close()
    return put_s, get_s


def mount_time(mnt: Path, *args: str, env: dict | None = None) -> float:
    t = timed(lambda: osfs("mount", str(mnt), *args, env=env))
    osfs("umount", str(mnt), env=env)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--server", help="use this server instead of starting one")
    ap.add_argument("--rounds", type=int, default=3, help="repetitions; the median is printed")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="osfs-bench-"))
    server = None
    try:
        if args.server:
            url = args.server
        else:
            server = EmbeddedServer(work / "nats", token="").start()
            url = server.url
        src = work / "src.bin"
        with open(src, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        nbytes = args.size_mib << 20
        mnt = work / "mnt"
        mnt.mkdir()
        xdg = {"XDG_DATA_HOME": str(work / "xdg"), "NATS_URL": ""}
        rows: dict[str, list[float]] = {
            k: [] for k in ("mount_embedded", "mount_external", "cp_in", "cat_out", "py_put", "py_get")
        }
        for r in range(args.rounds):
            rows["mount_embedded"].append(mount_time(mnt, env=xdg))
            rows["mount_external"].append(mount_time(mnt, "--server", url))
            bucket = f"bench{r}"
            py_put, py_get = asyncio.run(nats_py_put_get(url, f"py{r}", src, work / "py.out"))
            rows["py_put"].append(nbytes / py_put / 1e6)
            rows["py_get"].append(nbytes / py_get / 1e6)
            osfs("mount", str(mnt), "--server", url)
            try:
                (mnt / bucket).mkdir()
                drop_page_cache(src)
                target = mnt / bucket / "f.bin"
                rows["cp_in"].append(nbytes / timed(lambda t=target: shutil.copyfile(src, t)) / 1e6)
            finally:
                osfs("umount", str(mnt))
            osfs("mount", str(mnt), "--server", url)  # fresh mount: cold chunk cache
            try:
                out = work / "out.bin"
                cmd = ["cp", str(mnt / bucket / "f.bin"), str(out)]
                rows["cat_out"].append(nbytes / timed(lambda c=cmd: subprocess.run(c, check=True)) / 1e6)
                subprocess.run(["cmp", str(src), str(out)], check=True)
                shutil.rmtree(mnt / bucket)  # removes the objects, then the bucket
            finally:
                osfs("umount", str(mnt))

        def med(k: str) -> float:
            v = sorted(rows[k])
            return v[len(v) // 2]

        print(
            f"osfs mount benchmark: {args.size_mib} MiB object, {args.rounds} rounds (medians), server {url}"
        )
        print(f"  time to mount, embedded server : {med('mount_embedded'):.2f} s")
        print(f"  time to mount, external server : {med('mount_external'):.2f} s")
        print(
            f"  cp into the mount      {med('cp_in'):8.1f} MB/s   nats-py put {med('py_put'):8.1f} MB/s"
            f"   ratio {med('cp_in') / med('py_put'):.2f}x"
        )
        print(
            f"  cat out of the mount   {med('cat_out'):8.1f} MB/s   nats-py get {med('py_get'):8.1f} MB/s"
            f"   ratio {med('cat_out') / med('py_get'):.2f}x"
        )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
