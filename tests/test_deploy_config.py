"""Pure parsing of deployment settings: config file, -o options, nats contexts, precedence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osfs import cli, options
from osfs.connargs import UsageError, split_userinfo
from osfs.stats import prometheus_text
from osfs.units import format_duration, format_size


def mount_opts(*argv: str, env: dict | None = None):
    return options.mount_options(cli.parse_args(["mount", "/mnt/x", *argv]), env or {})


def test_every_mount_option_is_an_o_option():
    """Each --long option of ``osfs mount`` (but -o and --config's own file) is also -o key=value."""
    _parser, subs = cli.build_parsers()
    longs = {
        a.dest
        for a in subs["mount"]._actions
        if a.option_strings and a.dest not in ("help", "options", "mountpoint")
    }
    flags = set(options.O_FLAGS.values())
    missing = {d for d in longs if d not in options.O_VALUES and d not in flags}
    assert not missing, missing


def test_o_options_cover_bucket_defaults_and_log_level(tmp_path: Path):
    o = mount_opts(
        "-o",
        "bucket_storage=memory,bucket_replicas=3,bucket_compression=s2,bucket_ttl=30d,"
        "bucket_max_object_size=1G,bucket_max_bytes=10G,bucket_description=made by mkdir,"
        "log_level=debug,metrics_port=9477,attr_timeout=5s,cache_size=1G",
    )
    d = o.fs.bucket_defaults
    assert (d.storage, d.replicas, d.compression, d.ttl) == ("memory", 3, "s2", 30 * 86400)
    assert (d.max_object_size, d.max_bytes, d.description) == (1 << 30, 10 << 30, "made by mkdir")
    assert o.log_level == "DEBUG" and o.metrics_port == 9477
    assert o.fs.attr_timeout == 5.0 and o.fs.cache_size == 1 << 30
    with pytest.raises(UsageError, match="bucket_storage"):
        mount_opts("-o", "bucket_storage=tape")
    with pytest.raises(UsageError, match="needs a number"):
        mount_opts("-o", "uid=root")


def test_secrets_are_refused_as_options(tmp_path: Path):
    for opt in ("password=x", "token=x"):
        with pytest.raises(UsageError, match="_file") as e:
            mount_opts("-o", opt)
        assert "=x" not in str(e.value)
    conf = tmp_path / "osfs.conf"
    conf.write_text("password = hunter2\n")
    with pytest.raises(UsageError, match="password_file") as e:
        mount_opts("--config", str(conf))
    assert "hunter2" not in str(e.value)


def test_config_file_is_overridden_by_arguments(tmp_path: Path):
    conf = tmp_path / "osfs.conf"
    conf.write_text(
        "# osfs settings\n"
        "server = nats://conf:4222\n"
        "allow-other = yes\n"
        "chunk_size = 256K\n"
        "bucket_ttl = 7d\n"
        'bucket_description = "from the config"\n'
        "\n"
    )
    o = mount_opts("--config", str(conf))
    assert o.connect.servers == ("nats://conf:4222",)
    assert o.allow_other and o.fs.chunk_size == 256 * 1024
    assert o.fs.bucket_defaults.ttl == 7 * 86400
    assert o.fs.bucket_defaults.description == "from the config"
    o = mount_opts("--config", str(conf), "--server", "nats://cli:4222", "-o", "chunk_size=64K")
    assert o.connect.servers == ("nats://cli:4222",) and o.fs.chunk_size == 64 * 1024
    o = mount_opts("-o", f"config={conf}")
    assert o.connect.servers == ("nats://conf:4222",)
    conf.write_text("frobnicate = 1\n")
    with pytest.raises(UsageError, match=r"osfs.conf:1: unknown setting frobnicate"):
        mount_opts("--config", str(conf))
    conf.write_text("allow_other = maybe\n")
    with pytest.raises(UsageError, match="yes or no"):
        mount_opts("--config", str(conf))


def test_context_then_environment_then_arguments(tmp_path: Path):
    ctx_dir = tmp_path / "nats" / "context"
    ctx_dir.mkdir(parents=True)
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    (ctx_dir / "prod.json").write_text(
        json.dumps({"url": "nats://ctx:4222", "user": "u", "password": "p", "ca": str(ca), "token": ""})
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    o = mount_opts("--context", "prod", env=env)
    assert o.connect.servers == ("nats://ctx:4222",)
    assert (o.connect.user, o.connect.password, o.connect.token) == ("u", "p", None)
    assert o.connect.tls_ca == str(ca)
    o = mount_opts(env={**env, "NATS_CONTEXT": "prod", "NATS_URL": "nats://env:4222"})
    assert o.connect.servers == ("nats://env:4222",) and o.connect.user == "u"
    o = mount_opts(
        "--context", "prod", "--server", "nats://arg:4222", env={**env, "NATS_URL": "nats://env:4222"}
    )
    assert o.connect.servers == ("nats://arg:4222",)
    with pytest.raises(UsageError, match="no nats context 'nope'"):
        mount_opts("--context", "nope", env=env)
    with pytest.raises(UsageError, match="bad context name"):
        mount_opts("--context", "../etc", env=env)
    (ctx_dir / "broken.json").write_text("{")
    with pytest.raises(UsageError, match="cannot read nats context"):
        mount_opts("--context", "broken", env=env)


def test_creds_and_nkey_exclude_each_other(tmp_path: Path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(UsageError, match="exclude"):
        mount_opts("--creds", str(f), "--nkey", str(f))


def test_argv_form_of_mount_fuse3(monkeypatch):
    seen = []
    monkeypatch.setattr(cli, "mount_helper_main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["photos@nats://h:4222", "/mnt/p", "-o", "ro"]) == 0
    assert seen == [["photos@nats://h:4222", "/mnt/p", "-o", "ro"]]


def test_spec_forms(monkeypatch):
    seen = []
    monkeypatch.setattr(cli, "main", lambda argv: seen.append(argv) or 0)
    cli.mount_helper_main(["osfs#nats://a:1,nats://b:2", "/m"])
    assert seen[-1] == ["mount", "/m", "--server", "nats://a:1,nats://b:2"]
    cli.mount_helper_main(["photos@embedded", "/m", "-oallow_other"])
    assert seen[-1] == ["mount", "/m", "--bucket", "photos", "-o", "allow_other"]
    assert cli.mount_helper_main(["embedded", "/m", "-f"]) == 0
    assert cli.mount_helper_main(["only-one"]) == 2


def test_formatting_helpers():
    assert format_size(-1) == "unlimited" and format_size(512) == "512 B" and format_size(1536) == "1.5 KiB"
    assert (
        format_duration(0) == "-"
        and format_duration(30 * 86400) == "30d"
        and format_duration(5400) == "1h30m"
    )
    text = prometheus_text({"bytes_read": 5, "uploads_in_flight": 1, "cache_hit_rate": None}, '/mnt/"x"')
    assert 'osfs_bytes_read_total{mountpoint="/mnt/\\"x\\""} 5' in text
    assert "# TYPE osfs_uploads_in_flight gauge" in text


def test_credentials_in_urls():
    assert split_userinfo("nats://alice:s%40cret@h:4222") == ("nats://h:4222", "alice", "s@cret")
    assert split_userinfo("tls://tok@h:4222/x") == ("tls://h:4222/x", "tok", None)
    assert split_userinfo("h:4222") == ("h:4222", None, None)
    with pytest.raises(UsageError, match="no credentials in server URLs") as e:
        mount_opts("--server", "nats://alice:hunter2@h:4222")
    assert "hunter2" not in str(e.value)
    o = mount_opts(env={"NATS_URL": "nats://alice:hunter2@h:4222,nats://g:4222"})
    assert o.connect.servers == ("nats://h:4222", "nats://g:4222")
    assert (o.connect.user, o.connect.password) == ("alice", "hunter2")
    assert "hunter2" not in o.fsname
    o = mount_opts(env={"NATS_URL": "nats://tok3n@h:4222"})
    assert o.connect.token == "tok3n" and o.connect.user is None


def test_bucket_commands_read_the_connection_settings_of_the_config(tmp_path: Path):
    conf = tmp_path / "osfs.conf"
    conf.write_text("server = nats://conf:4222\nbucket = photos\nchunk_size = 1M\nallow_other = yes\n")
    ns = cli.parse_args(["bucket", "status", "docs", "--config", str(conf)])
    assert ns.server == "nats://conf:4222" and ns.bucket == "docs"
    ns = cli.parse_args(["bucket", "ls", "--config", str(conf), "--server", "nats://arg:4222"])
    assert ns.server == "nats://arg:4222"
