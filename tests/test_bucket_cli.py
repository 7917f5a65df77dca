"""``osfs bucket``: every option of the seed, table and JSON output, exit codes (real server)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import nats

from osfs import bucket_cli
from osfs.embedded import DataDirLock


def osfs(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "osfs", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "NATS_URL": "", **(env or {})},
    )


def stream_config(nats_url: str, bucket: str) -> dict:
    async def get() -> dict:
        nc = await nats.connect(nats_url)
        try:
            si = await nc.jetstream().stream_info(f"OBJ_{bucket}")
            return si.config.as_dict()
        finally:
            await nc.close()

    return asyncio.run(get())


def test_create_with_every_option_status_and_ls(nats_url: str, bucket_name: str):
    res = osfs(
        "bucket", "create", bucket_name, "--server", nats_url,
        "--description", "team photos", "--max-object-size", "1G", "--max-bytes", "10G",
        "--storage", "memory", "--replicas", "1", "--ttl", "30d", "--compression", "s2",
        "--republish-dest", f"repub.{bucket_name}.>", "--republish-src", f"$O.{bucket_name}.M.>",
        "--republish-headers-only", "--metadata", "team=a", "--metadata", "cost=7",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"created {bucket_name}"
    cfg = stream_config(nats_url, bucket_name)
    assert cfg["description"] == "team photos"
    assert cfg["max_bytes"] == 10 << 30
    assert cfg["storage"] == "memory"
    assert cfg["max_age"] == 30 * 86400 * 10**9
    assert cfg["compression"] == "s2"
    assert cfg["republish"]["dest"] == f"repub.{bucket_name}.>"
    assert cfg["republish"]["headers_only"] is True
    assert cfg["metadata"]["team"] == "a" and cfg["metadata"]["cost"] == "7"

    res = osfs("bucket", "status", bucket_name, "--server", nats_url, "--json")
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert st["bucket"] == bucket_name
    assert st["max_object_size"] == 1 << 30
    assert st["ttl_s"] == 30 * 86400
    assert st["storage"] == "memory" and st["compression"] == "s2"
    assert st["sealed"] is False and st["mirror"] is False
    assert st["republish"]["dest"] == f"repub.{bucket_name}.>"

    res = osfs("bucket", "status", bucket_name, "--server", nats_url)
    assert "ttl:             30d" in res.stdout
    assert "team=a" in res.stdout

    res = osfs("bucket", "ls", "--server", nats_url)
    assert res.returncode == 0
    head, *rows = res.stdout.splitlines()
    assert head.split()[:3] == ["NAME", "OBJECTS", "SIZE"]
    row = next(r for r in rows if r.split()[0] == bucket_name)
    assert "memory" in row and "30d" in row and row.endswith("team photos")
    listed = json.loads(osfs("bucket", "ls", "--server", nats_url, "--json").stdout)
    assert bucket_name in [b["bucket"] for b in listed]

    # same options again: no change; different ones: conflict (exit 4)
    res = osfs("bucket", "create", bucket_name, "--server", nats_url, "--storage", "file")
    assert res.returncode == 4, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_exit_codes_seal_mirror_sources_and_rm(nats_url: str, bucket_name: str):
    src, mir, agg, other = (bucket_name + sfx for sfx in ("", "-mir", "-agg", "-o"))
    assert osfs("bucket", "create", src, "--server", nats_url).returncode == 0
    assert osfs("bucket", "create", other, "--server", nats_url).returncode == 0
    res = osfs("bucket", "create", mir, "--server", nats_url, "--mirror", src, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["mirror"] is True
    res = osfs("bucket", "create", agg, "--server", nats_url, "--source", src, "--source", other)
    assert res.returncode == 0, res.stderr
    assert [s["name"] for s in stream_config(nats_url, agg)["sources"]] == [f"OBJ_{src}", f"OBJ_{other}"]

    res = osfs("bucket", "seal", src, "--server", nats_url)
    assert res.returncode == 0, res.stderr
    st = json.loads(osfs("bucket", "status", src, "--server", nats_url, "--json").stdout)
    assert st["sealed"] is True
    table = osfs("bucket", "ls", "--server", nats_url).stdout
    assert any(r.split()[0] == src and "sealed" in r for r in table.splitlines())
    assert any(r.split()[0] == mir and "mirror" in r for r in table.splitlines())

    missing = bucket_name + "-none"
    for action in ("status", "seal", "rm"):
        res = osfs("bucket", action, missing, "--server", nats_url)
        assert res.returncode == bucket_cli.EXIT_NOT_FOUND, (action, res.stderr)
        assert res.stderr.strip() == f"osfs: no such bucket: {missing}"
    assert osfs("bucket", "create", "bad.name", "--server", nats_url).returncode == 2
    assert (
        osfs("bucket", "create", src, "--server", nats_url, "--mirror", mir, "--source", mir).returncode == 2
    )
    assert osfs("bucket", "create", src, "--server", nats_url, "--ttl", "soon").returncode == 2
    assert osfs("bucket", "frob", "--server", nats_url).returncode == 2

    res = osfs("bucket", "rm", agg, mir, src, other, "--server", nats_url)
    assert res.returncode == 0, res.stderr
    names = [b["bucket"] for b in json.loads(osfs("bucket", "ls", "--server", nats_url, "--json").stdout)]
    assert not {src, mir, agg, other} & set(names)


def test_placement_is_sent(nats_url: str, bucket_name: str):
    res = osfs(
        "bucket", "create", bucket_name, "--server", nats_url, "--placement-cluster", "east",
        "--placement-tag", "ssd", "--placement-tag", "eu",
    )  # fmt: skip
    if res.returncode == 0:
        assert stream_config(nats_url, bucket_name)["placement"] == {"cluster": "east", "tags": ["ssd", "eu"]}
    else:  # a server that cannot place it says so, in one line
        assert res.returncode == 1
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("osfs: ")


def test_help_documents_exit_codes():
    res = osfs("bucket", "create", "--help")
    assert res.returncode == 0
    assert "3  the bucket does not exist" in res.stdout
    assert "--max-object-size" in res.stdout and "--republish-dest" in res.stdout


def test_embedded_server_for_the_command_and_in_use(tmp_path: Path):
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    res = osfs("bucket", "create", "local", "--ttl", "1h", env=env)
    assert res.returncode == 0, res.stderr
    res = osfs("bucket", "ls", "--json", env=env)
    assert [b["bucket"] for b in json.loads(res.stdout)] == ["local"]
    assert (tmp_path / "xdg" / "osfs" / "jetstream").is_dir()
    lock = DataDirLock(tmp_path / "xdg" / "osfs")  # what a mount of that data holds
    try:
        res = osfs("bucket", "ls", env=env)
        assert res.returncode == 1
        assert "in use" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    finally:
        lock.release()
    assert osfs("bucket", "rm", "local", "--data-dir", str(tmp_path / "xdg" / "osfs")).returncode == 0
