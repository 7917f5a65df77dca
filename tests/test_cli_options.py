"""Pure parsing: sizes, durations, -o options, environment and mount(8) specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from osfs import cli
from osfs.connargs import UsageError
from osfs.options import mount_options
from osfs.units import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "value"),
    [("4096", 4096), ("128K", 131072), ("1M", 1 << 20), ("1MiB", 1 << 20), ("2g", 2 << 30), ("-1", -1)],
)
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize(
    ("text", "value"), [("90", 90.0), ("30s", 30.0), ("1h30m", 5400.0), ("30d", 2592000.0)]
)
def test_parse_duration(text, value):
    assert parse_duration(text) == value


@pytest.mark.parametrize("bad", ["", "abc", "1x", "1h 30m", "h1"])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def options(*argv: str, env: dict | None = None):
    ns = cli.build_parser().parse_args(["mount", "/mnt/x", *argv])
    return mount_options(ns, env or {})


def test_o_options_fold_into_config():
    o = options("-o", "ro,allow_other,_netdev,noauto,bucket=photos,uid=1000,chunk_size=1M,umask=077")
    assert o.fs.read_only and o.allow_other
    assert o.fs.bucket == "photos"
    assert o.fs.uid == 1000
    assert o.fs.chunk_size == 1 << 20
    assert o.fs.umask == 0o077
    assert o.mountpoint == Path("/mnt/x")


def test_environment_supplies_servers_and_secrets(tmp_path):
    o = options(env={"NATS_URL": "nats://a:4222, nats://b:4222", "NATS_USER": "u", "NATS_PASSWORD": "p"})
    assert o.connect.servers == ("nats://a:4222", "nats://b:4222")
    assert o.connect.user == "u" and o.connect.password == "p"
    assert "password=" not in repr(o.connect)
    tok = tmp_path / "tok"
    tok.write_text("s3cret\n")
    o = options("--token-file", str(tok))
    assert o.connect.token == "s3cret"
    assert o.connect.servers == ()


def test_bad_inputs_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown mount option"):
        options("-o", "nonsense")
    with pytest.raises(UsageError, match="no such file"):
        options("--creds", str(tmp_path / "missing.creds"))
    with pytest.raises(UsageError, match="chunk-size"):
        options("--chunk-size", "100")
    with pytest.raises(UsageError, match="go together"):
        (tmp_path / "c").write_text("x")
        options("--tls-cert", str(tmp_path / "c"))


def test_mount_helper_translates_spec(monkeypatch):
    seen = []
    monkeypatch.setattr(cli, "main", lambda argv: seen.append(argv) or 0)
    assert cli.mount_helper_main(["photos@nats://h:4222", "/mnt/p", "-o", "ro,_netdev"]) == 0
    assert seen[-1] == [
        "mount",
        "/mnt/p",
        "--server",
        "nats://h:4222",
        "--bucket",
        "photos",
        "-o",
        "ro,_netdev",
    ]
    assert cli.mount_helper_main(["embedded", "/mnt/e", "-n"]) == 0
    assert seen[-1] == ["mount", "/mnt/e"]


def test_request_timeout_is_settable():
    assert options().connect.request_timeout == 10.0
    assert options("--timeout", "2s").connect.request_timeout == 2.0
    assert options("-o", "timeout=500ms").connect.request_timeout == 0.5
    with pytest.raises(UsageError, match="--timeout"):
        options("--timeout", "0")


def test_orphan_grace_is_settable():
    assert options().orphan_grace == 3600.0
    assert options("--orphan-grace", "0s").orphan_grace == 0.0
    assert options("-o", "orphan_grace=2d").orphan_grace == 2 * 86400.0
    assert options("-o", "orphan_grace=off").orphan_grace is None
    with pytest.raises(UsageError, match="not a duration"):
        options("--orphan-grace", "soon")


def test_disk_cache_options(tmp_path):
    assert options().fs.disk_cache is None
    fs = options("--disk-cache", str(tmp_path / "dc"), "--disk-cache-size", "2G").fs
    assert fs.disk_cache == tmp_path / "dc" and fs.disk_cache_size == 2 << 30
    fs = options("-o", f"disk_cache={tmp_path}/x,disk_cache_size=512M").fs
    assert fs.disk_cache == tmp_path / "x" and fs.disk_cache_size == 512 << 20
    with pytest.raises(UsageError, match="--disk-cache-size"):
        options("--disk-cache", str(tmp_path), "--disk-cache-size", "0")
