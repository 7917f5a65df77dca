"""A 3-node JetStream cluster with R3 buckets: the stream leader is killed (SIGKILL) in the
middle of a write and of a read. The copy completes or fails loudly (EIO), never silently
wrong; the mount uses whichever servers of its URL list are alive."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultkit import (
    Cluster,
    cat_with_fault,
    cp_with_fault,
    live_metas,
    peer,
    raw_object,
    requires_fuse,
    store_call,
    wait_for,
)

from osfs.store.types import BucketConfig

pytestmark = [pytest.mark.mount, requires_fuse]

MIB = 1024 * 1024


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path / "cluster").start()
    yield c
    c.stop()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _r3_bucket(cluster: Cluster, bucket: str) -> None:
    """Create an R3 bucket, once all three nodes have joined (placement needs them)."""

    def create() -> bool:
        store_call(cluster.urls, lambda s: s.create_bucket(BucketConfig(bucket=bucket, replicas=3)))
        return True

    assert wait_for(create, 60, 0.5)


def _kill_leader(cluster: Cluster, bucket: str) -> str:
    leader = cluster.stream_leader(f"OBJ_{bucket}")
    cluster.kill(leader)
    return leader


def _alive(cluster: Cluster) -> list[str]:
    return [cluster.url_of(n) for n in cluster.names if n in cluster.procs]


def test_leader_killed_during_cp(cluster, mounts, bucket_name, tmp_path):
    _r3_bucket(cluster, bucket_name)
    m = mounts(servers=cluster.urls)
    b = m.path / bucket_name
    before = os.urandom(3 * MIB)
    (b / "before.bin").write_bytes(before)
    data = os.urandom(64 * MIB)
    killed: list[str] = []
    rc, err = cp_with_fault(
        b / "big.bin", data, tmp_path, 16 * MIB, lambda: killed.append(_kill_leader(cluster, bucket_name))
    )
    print(f"killed {killed}; cp exit {rc}: {err.strip()[-200:]}")
    alive = _alive(cluster)
    stored = peer(alive, lambda nc, js: raw_object(js, bucket_name, "big.bin"))
    if rc == 0:
        assert stored is not None and _sha(stored) == _sha(data)
        assert _sha((b / "big.bin").read_bytes()) == _sha(data)
    else:
        assert "Input/output error" in err, err
        assert stored is None or _sha(stored) == _sha(data)
    assert _sha(peer(alive, lambda nc, js: raw_object(js, bucket_name, "before.bin")) or b"") == _sha(before)
    assert _sha((b / "before.bin").read_bytes()) == _sha(before)
    assert m.proc.poll() is None
    (b / "after.txt").write_bytes(b"written with one node down")
    assert "after.txt" in peer(alive, lambda nc, js: live_metas(js, bucket_name))


def test_leader_killed_during_cat(cluster, mounts, bucket_name):
    _r3_bucket(cluster, bucket_name)
    w = mounts(servers=cluster.urls)
    data = os.urandom(64 * MIB)
    (w.path / bucket_name / "big.bin").write_bytes(data)
    r = mounts("--cache-size", "8M", servers=cluster.urls)
    killed: list[str] = []
    rc, got, err = cat_with_fault(
        r.path / bucket_name / "big.bin", 16 * MIB, lambda: killed.append(_kill_leader(cluster, bucket_name))
    )
    print(f"killed {killed}; cat exit {rc}, {len(got)} bytes: {err.strip()[-200:]}")
    if rc == 0:
        assert _sha(got) == _sha(data), f"read {len(got)} bytes with wrong content and no error"
    else:
        assert "Input/output error" in err, err
        assert got == data[: len(got)]
    assert r.proc.poll() is None and w.proc.poll() is None
    assert _sha((r.path / bucket_name / "big.bin").read_bytes()) == _sha(data)


def test_mount_uses_the_servers_that_are_alive(cluster, mounts, bucket_name):
    _r3_bucket(cluster, bucket_name)
    cluster.kill(cluster.names[0])  # the first URL of the list is dead
    assert wait_for(cluster.jetstream_ready, 60, 0.5)
    m = mounts(servers=cluster.urls)
    b = m.path / bucket_name
    (b / "f.txt").write_bytes(b"two of three")
    assert (b / "f.txt").read_bytes() == b"two of three"
    assert peer(_alive(cluster), lambda nc, js: raw_object(js, bucket_name, "f.txt")) == b"two of three"
    # the node comes back and another one dies: the mount follows
    cluster.start_node(cluster.names[0])
    assert wait_for(cluster.jetstream_ready, 60, 0.5)
    assert wait_for(
        lambda: (
            peer(cluster.url_of(cluster.names[0]), lambda nc, js: raw_object(js, bucket_name, "f.txt"))
            == b"two of three"
        ),
        60,
        0.5,
    )
    cluster.kill(cluster.names[1])
    assert wait_for(lambda: (b / "g.txt").write_bytes(b"after") is not None, 60, 0.5), m.log[-3000:]
    assert peer(_alive(cluster), lambda nc, js: raw_object(js, bucket_name, "g.txt")) == b"after"
    assert (b / "f.txt").read_bytes() == b"two of three"
