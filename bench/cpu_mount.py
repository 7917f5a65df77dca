"""CPU cost of the mount per unit of work, per thread: figures that other load on the machine
does not change much, unlike MB/s.

For ``cp`` of a file into a fresh mount and out of another (cold cache), and for ``cp -r``
and ``rm -r`` of 1,000 files of 4 KiB, prints the CPU seconds (user + system, from
``/proc/<pid>/stat``) of the osfs process and of the nats-server per GiB (streams) or per
1,000 files, and for each thread of osfs that ran: its user and system seconds on the same
scale and its context switches per MiB (or per file). ``--py-spy`` also records a py-spy
profile of each step (raw, one line per stack, threads apart) next to the source file.

Needs root, /dev/fuse and nats-server. Usage: ``python bench/cpu_mount.py [--size-mib 256]
[--only in,out,small] [--py-spy]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from osfs.embedded import EmbeddedServer
from osfs.mount import pid_file

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(stat_path: Path) -> tuple[float, float]:
    """(user, system) seconds from a ``/proc/.../stat`` file."""
    fields = stat_path.read_text().rpartition(")")[2].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def threads(pid: int) -> dict[str, tuple[float, float, int]]:
    """Each thread of ``pid`` (``comm:tid``, ``main:tid`` for the main thread, where trio
    runs): user s, system s, context switches."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        task = Path(f"/proc/{pid}/task/{tid}")
        try:
            user, system = cpu_seconds(task / "stat")
            name = "main" if int(tid) == pid else (task / "comm").read_text().strip()
            status = (task / "status").read_text()
        except OSError:
            continue
        switches = sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line)
        out[f"{name}:{tid}"] = (user, system, switches)
    return out


def osfs(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "osfs", *args], check=True, stdin=subprocess.DEVNULL)


def step(
    label: str, cmd: list[str], mnt: Path, server: EmbeddedServer, units: float, items: int, spy: Path | None
) -> dict:
    """Run ``cmd`` against the mounted ``mnt``; CPU seconds divided by ``units``, context
    switches by ``items`` (MiB or files)."""
    pid = int(pid_file(mnt).read_text())
    server_stat = Path(f"/proc/{server.process.pid}/stat")
    os.sync()
    recorder = None
    if spy is not None:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        record = ["record", "-p", str(pid), "-t", "-r", "200", "-f", "raw", "--nonblocking"]
        recorder = subprocess.Popen(
            [py_spy, *record, "-o", str(spy)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
    t0, p0, s0 = threads(pid), cpu_seconds(Path(f"/proc/{pid}/stat")), cpu_seconds(server_stat)
    wall = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - wall
    t1, p1, s1 = threads(pid), cpu_seconds(Path(f"/proc/{pid}/stat")), cpu_seconds(server_stat)
    if recorder is not None:
        recorder.send_signal(2)
        recorder.wait()
    per_thread = {}
    for name, (user, system, switches) in t1.items():
        u0, sy0, sw0 = t0.get(name, (0.0, 0.0, 0))
        if switches - sw0 > 3 or user + system - u0 - sy0 > 0.01:
            per_thread[name] = [
                round((user - u0) / units, 2),
                round((system - sy0) / units, 2),
                round((switches - sw0) / items, 1),
            ]
    return {
        "step": label,
        "wall_s (indicative only)": round(wall, 2),
        "osfs_cpu_s": round((sum(p1) - sum(p0)) / units, 2),
        "server_cpu_s": round((sum(s1) - sum(s0)) / units, 2),
        "threads: user s, system s, switches per MiB or file": per_thread,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256, help="size of the streamed file (256)")
    ap.add_argument("--only", default="in,out,small", help="steps: in, out, small (default all)")
    ap.add_argument("--py-spy", action="store_true", help="record a py-spy profile of each step")
    args = ap.parse_args()
    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="osfs-cpu-"))
    server = EmbeddedServer(work / "nats", token="").start()
    mnt = work / "mnt"
    mnt.mkdir()
    src = work / "src.bin"
    with open(src, "wb") as f:
        for _ in range(args.size_mib):
            f.write(os.urandom(1 << 20))
    gib = args.size_mib / 1024
    results = []

    def mounted_step(label: str, cmd: list[str], units: float, items: int, prepare=None) -> None:  # type: ignore[no-untyped-def]
        osfs("mount", str(mnt), "--server", server.url)
        try:
            if prepare is not None:
                prepare()
            slug = re.sub(r"[^a-z]+", "-", label.split(",")[0]).strip("-")
            spy = work / f"py-spy-{slug}.txt" if args.py_spy else None
            results.append(step(label, cmd, mnt, server, units, items, spy))
        finally:
            osfs("umount", str(mnt))

    try:
        if only & {"in", "out"}:
            with open(src, "rb") as f:  # the source comes from the page cache
                while f.read(1 << 23):
                    pass
            mib = args.size_mib
            cmd = ["cp", str(src), str(mnt / "b" / "f.bin")]
            mounted_step("cp in, per GiB", cmd, gib, mib, lambda: (mnt / "b").mkdir())
            if "out" in only:
                out = work / "out.bin"
                mounted_step("cp out (cold), per GiB", ["cp", str(mnt / "b" / "f.bin"), str(out)], gib, mib)
                subprocess.run(["cmp", str(src), str(out)], check=True)
                out.unlink()
        if "small" in only:
            tree = work / "tree"
            tree.mkdir()
            for i in range(1000):
                (tree / f"f{i}").write_bytes(os.urandom(4096))
            mounted_step(
                "cp -r, per 1000 files",
                ["cp", "-r", str(tree), str(mnt / "s" / "t")],
                1.0,
                1000,
                lambda: (mnt / "s").mkdir(),
            )
            mounted_step("rm -r, per 1000 files", ["rm", "-r", str(mnt / "s" / "t")], 1.0, 1000)
        for r in results:
            print(json.dumps(r))
        if args.py_spy:
            print(f"profiles in {work}")
    finally:
        server.stop()
        if not args.py_spy:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
