"""A big bucket through a real mount: 200k objects listed whole by ``find``, without the
server cutting the connection, while another bucket of the same mount keeps serving
reads and writes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest
from mountkit import requires_fuse

from osfs.embedded import EmbeddedServer
from osfs.store.nats.bulkfill import fill_bucket, object_name

pytestmark = [pytest.mark.mount, requires_fuse]

BIG = 200_000
PER_DIR = 1000


def test_big_bucket_lists_whole_while_another_bucket_serves(
    mount_factory, nats_server: EmbeddedServer, bucket_name: str, tmp_path: Path
) -> None:
    big, other = bucket_name + "_big", bucket_name + "_other"
    asyncio.run(fill_bucket(nats_server.url, big, BIG, per_dir=PER_DIR))
    server_log = Path(nats_server.data_dir) / "nats-server.log"
    offset = server_log.stat().st_size
    mnt = mount_factory()
    there = mnt.path / other
    os.mkdir(there)
    (there / "before").write_bytes(b"before")

    listed = tmp_path / "find.out"
    with open(listed, "wb") as out:  # a file, not a pipe: nobody reads while find runs
        find = subprocess.Popen(["find", str(mnt.path / big)], stdout=out, stderr=subprocess.PIPE)
    served_during = 0
    rounds = 0
    while find.poll() is None or rounds == 0:
        rounds += 1
        data = f"round {rounds}".encode() * 1000
        (there / f"f{rounds}").write_bytes(data)
        assert (there / f"f{rounds}").read_bytes() == data
        assert (there / "before").read_bytes() == b"before"
        if find.poll() is None:
            served_during += 1
        time.sleep(0.05)
    _, err = find.communicate()
    assert find.returncode == 0, err

    names = listed.read_text().splitlines()
    root = str(mnt.path / big)
    files = {n[len(root) + 1 :] for n in names if n.count("/") > root.count("/") + 1}
    assert files == {object_name(i, PER_DIR) for i in range(BIG)}
    assert len(names) == 1 + BIG // PER_DIR + BIG
    assert served_during >= 1
    assert sorted(os.listdir(there)) == sorted(["before", *(f"f{i}" for i in range(1, rounds + 1))])
    assert "disconnected" not in mnt.log
    assert "Slow Consumer" not in server_log.read_bytes()[offset:].decode(errors="replace")
