"""Benchmark listing a big bucket through the mount against nats-py reading its metas raw.

Fills a bucket with ``--objects`` one-chunk objects in ``--objects / 1000`` directories,
straight on the stream (pipelined publishes, not through the mount: see
``osfs.store.nats.bulkfill``), then prints, medians over ``--rounds`` (each on a fresh
mount, so each first listing reads the whole bucket):

* time to the first ``ls -l`` of a directory (the mount reads every meta of the bucket);
* ``ls -l`` of a second directory (the bucket is known by then);
* ``find`` of the whole bucket;
* RSS of the osfs process per object: after ``find`` minus before the first ``ls -l``,
  divided by the number of objects;
* nats-py's own ordered consumer reading the same metas raw (last per subject, no
  decoding), in the same round, and the first ``ls -l`` as a ratio of it;
* with ``--flat N`` (default 100000; 0 leaves it out), a second bucket of N objects in one
  directory: its first ``ls -l``, then ``ls -l`` of it again on the same mount (warm), and
  the CPU seconds the osfs process spent on that warm ``ls -l`` (user + system, from
  ``/proc/<pid>/stat``: a figure that other load on the machine does not change).

Needs root and /dev/fuse. Usage: ``python bench/bench_scale.py [--objects 100000]
[--flat 100000] [--rounds 3] [--server URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import nats
import nats.js.api
from bench_mount import delete_buckets, mounted, timed

from osfs.embedded import EmbeddedServer
from osfs.mount import pid_file
from osfs.store.nats import wire
from osfs.store.nats.bulkfill import fill_bucket, object_name

#: Bytes of each object (its one chunk).
OBJECT_BYTES = 100


def cpu_seconds(mnt: Path) -> float:
    """User + system CPU seconds spent so far by the osfs process serving ``mnt``."""
    pid = int(pid_file(mnt).read_text())
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(mnt: Path) -> int:
    """Resident set size of the osfs process serving ``mnt``."""
    pid = int(pid_file(mnt).read_text())
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def raw_read(url: str, bucket: str, n: int) -> float:
    """Seconds nats-py's ordered consumer takes to deliver the last meta of every name."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        done = asyncio.Event()
        count = 0

        async def cb(msg: nats.aio.msg.Msg) -> None:
            nonlocal count
            count += 1
            if msg.metadata.num_pending == 0:
                done.set()

        t = time.perf_counter()
        sub = await js.subscribe(
            wire.meta_wildcard(bucket),
            ordered_consumer=True,
            cb=cb,
            deliver_policy=nats.js.api.DeliverPolicy.LAST_PER_SUBJECT,
        )
        await asyncio.wait_for(done.wait(), 3600)
        took = time.perf_counter() - t
        await sub.unsubscribe()
        if count != n:
            raise RuntimeError(f"raw read delivered {count} metas, not {n}")
        return took
    finally:
        await nc.close()


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True)


def timed_lines(cmd: list[str]) -> tuple[float, int]:
    """Seconds ``cmd`` takes, and the lines it prints."""
    t = time.perf_counter()
    lines = len(run(cmd).stdout.splitlines())
    return time.perf_counter() - t, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=100_000, help="objects in the bucket (100000)")
    ap.add_argument(
        "--flat", type=int, default=100_000, help="objects in the flat directory measured (100000; 0: none)"
    )
    ap.add_argument("--rounds", type=int, default=3, help="fresh mounts measured (3)")
    ap.add_argument("--server", help="use this server instead of starting one")
    args = ap.parse_args()
    per_dir = 1000
    work = Path(tempfile.mkdtemp(prefix="osfs-bench-scale-"))
    server = None
    url = ""
    bucket = f"scale{os.getpid()}"
    flat_bucket = f"flat{os.getpid()}"
    res: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        res.setdefault(key, []).append(value)

    try:
        if args.server:
            url = args.server
        else:
            server = EmbeddedServer(work / "nats", token="").start()
            url = server.url
        t = time.perf_counter()
        asyncio.run(fill_bucket(url, bucket, args.objects, per_dir=per_dir, data=b"x" * OBJECT_BYTES))
        fill_s = time.perf_counter() - t
        if args.flat:
            asyncio.run(fill_bucket(url, flat_bucket, args.flat, per_dir=args.flat, data=b"x" * OBJECT_BYTES))
        flat_dir = object_name(0, args.flat).split("/")[0] if args.flat else ""
        mnt = work / "mnt"
        mnt.mkdir()
        first_dir, second_dir = (
            object_name(0, per_dir).split("/")[0],
            object_name(per_dir, per_dir).split("/")[0],
        )
        for _ in range(args.rounds):
            add("raw", asyncio.run(raw_read(url, bucket, args.objects)))
            with mounted(mnt, url):
                before = rss_bytes(mnt)
                add("ls_first", timed(lambda: run(["ls", "-l", str(mnt / bucket / first_dir)])))
                add("ls_second", timed(lambda: run(["ls", "-l", str(mnt / bucket / second_dir)])))
                took, found = timed_lines(["find", str(mnt / bucket)])
                add("find", took)
                add("rss_per_object", (rss_bytes(mnt) - before) / args.objects)
                expected = 1 + -(-args.objects // per_dir) + args.objects
                if found != expected:
                    raise RuntimeError(f"find saw {found} entries, not {expected}")
            if args.flat:
                with mounted(mnt, url):
                    flat = ["ls", "-l", str(mnt / flat_bucket / flat_dir)]
                    took, listed = timed_lines(flat)
                    add("flat_first", took)
                    cpu = cpu_seconds(mnt)
                    took, listed = timed_lines(flat)
                    add("flat_warm", took)
                    add("flat_warm_cpu", cpu_seconds(mnt) - cpu)
                    if listed != args.flat + 1:  # and the "total" line
                        raise RuntimeError(f"ls -l listed {listed - 1} entries, not {args.flat}")
        report(args, url, fill_s, res)
    finally:
        if server is not None:
            server.stop()
        elif url:
            delete_buckets(url, [bucket, flat_bucket] if args.flat else [bucket])
        shutil.rmtree(work, ignore_errors=True)


def report(args: argparse.Namespace, url: str, fill_s: float, res: dict[str, list[float]]) -> None:
    """Print the medians of the figures measured."""

    def med(key: str) -> float:
        return statistics.median(res[key])

    n = args.objects
    print(f"osfs big-bucket benchmark — server {url}, {n} objects, {args.rounds} round(s), medians")
    print(f"  fill (straight on the stream)      {fill_s:8.2f} s   ({n / fill_s:,.0f} objects/s)")
    print(
        f"  first ls -l of a directory          {med('ls_first'):8.2f} s   "
        f"{med('ls_first') / med('raw'):5.2f}x nats-py's raw read ({med('raw'):.2f} s)"
    )
    print(f"  ls -l of a second directory         {med('ls_second'):8.3f} s")
    print(f"  find of the whole bucket            {med('find'):8.2f} s")
    print(f"  RSS per object (after find - before) {med('rss_per_object'):7.0f} B")
    if args.flat:
        print(f"  first ls -l of a flat {args.flat}-entry directory {med('flat_first'):8.2f} s")
        print(
            f"  ls -l of it again (warm)            {med('flat_warm'):8.2f} s   "
            f"({med('flat_warm_cpu'):.2f} CPU s of the osfs process)"
        )


if __name__ == "__main__":
    main()
