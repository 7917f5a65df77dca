"""Credentials and TLS against real nats-servers on loopback: user/password, token, nkey,
creds (operator JWTs made here), TLS with client certificates, nats contexts, NATS_* variables.

Each secret is given the ways osfs accepts it and refused when wrong: one line, exit code ≠ 0,
the secret in no output. ``osfs bucket ls`` takes the same connection path as a mount; one
test mounts for real over TLS with a user and password.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import nkeys
import pytest
from mountkit import needs_program, osfs_cmd, requires_fuse, start_mount

from osfs.embedded import EmbeddedServer

SECRET = "pw-Zq8v3-secret"


def osfs(*args: str, env: dict | None = None, home: Path | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    if home is not None:
        base["HOME"] = str(home)
        base.pop("XDG_CONFIG_HOME", None)
    return subprocess.run(
        osfs_cmd(*args),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**base, **(env or {})},
    )


def assert_ok(res: subprocess.CompletedProcess) -> None:
    assert res.returncode == 0, res.stderr
    assert isinstance(json.loads(res.stdout), list)


def assert_refused(res: subprocess.CompletedProcess, *secrets: str) -> None:
    """A refused secret: exit code 1 (as the README says), one line on stderr, no secret shown."""
    assert res.returncode == 1, res.stdout + res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stderr.startswith("osfs: ")
    for s in secrets:
        assert s not in res.stderr + res.stdout


def write(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def server(tmp_path: Path) -> Iterator:
    """``server(extra_config)`` starts a nats-server with JetStream and that config."""
    started: list[EmbeddedServer] = []

    def start(extra: str) -> EmbeddedServer:
        s = EmbeddedServer(tmp_path / f"srv{len(started)}", token="", extra_config=extra).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def test_user_password_file_env_and_context(server, tmp_path: Path):
    s = server('authorization { users = [ { user: alice, password: "' + SECRET + '" } ] }')
    good = write(tmp_path / "pw", SECRET + "\n")
    bad = write(tmp_path / "bad", "wrong-" + SECRET)
    assert_ok(osfs("bucket", "ls", "--json", "--server", s.url, "--user", "alice", "--password-file", good))
    assert_refused(
        osfs("bucket", "ls", "--json", "--server", s.url, "--user", "alice", "--password-file", bad), SECRET
    )
    assert_refused(osfs("bucket", "ls", "--json", "--server", s.url), SECRET)
    env = {"NATS_URL": s.url, "NATS_USER": "alice", "NATS_PASSWORD": SECRET}
    assert_ok(osfs("bucket", "ls", "--json", env=env))
    # a nats CLI context
    ctx = tmp_path / "home" / ".config" / "nats" / "context"
    ctx.mkdir(parents=True)
    write(ctx / "prod.json", json.dumps({"url": s.url, "user": "alice", "password": SECRET, "token": ""}))
    write(ctx / "stale.json", json.dumps({"url": s.url, "user": "alice", "password": "old"}))
    assert_ok(osfs("bucket", "ls", "--json", "--context", "prod", home=tmp_path / "home"))
    assert_ok(osfs("bucket", "ls", "--json", env={"NATS_CONTEXT": "prod"}, home=tmp_path / "home"))
    assert_refused(
        osfs("bucket", "ls", "--json", "--context", "stale", home=tmp_path / "home"), SECRET, "old"
    )
    res = osfs("bucket", "ls", "--context", "missing", home=tmp_path / "home")
    assert res.returncode == 2 and "no nats context 'missing'" in res.stderr
    # secrets on the command line are not accepted at all
    res = osfs("bucket", "ls", "--server", s.url, "--user", "alice", "--password", SECRET)
    assert res.returncode == 2


def test_token_file_env_and_context(server, tmp_path: Path):
    s = server(f'authorization {{ token: "{SECRET}" }}')
    assert_ok(
        osfs("bucket", "ls", "--json", "--server", s.url, "--token-file", write(tmp_path / "t", SECRET))
    )
    assert_ok(osfs("bucket", "ls", "--json", env={"NATS_URL": s.url, "NATS_TOKEN": SECRET}))
    assert_refused(
        osfs("bucket", "ls", "--json", "--server", s.url, "--token-file", write(tmp_path / "b", "nope")),
        SECRET,
    )
    ctx = tmp_path / "xdg" / "nats" / "context"
    ctx.mkdir(parents=True)
    write(ctx / "t.json", json.dumps({"url": s.url, "token": SECRET}))
    assert_ok(
        osfs("bucket", "ls", "--json", "--context", "t", env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    )


def new_keypair(prefix: int) -> tuple[nkeys.KeyPair, str]:
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    return nkeys.from_seed(seed), seed.decode()


def test_nkey_seed_file_and_env(server, tmp_path: Path):
    kp, seed = new_keypair(nkeys.PREFIX_BYTE_USER)
    _, other = new_keypair(nkeys.PREFIX_BYTE_USER)
    s = server(f"authorization {{ users = [ {{ nkey: {kp.public_key.decode()} }} ] }}")
    good = write(tmp_path / "user.nk", seed + "\n")
    assert_ok(osfs("bucket", "ls", "--json", "--server", s.url, "--nkey", good))
    assert_ok(osfs("bucket", "ls", "--json", env={"NATS_URL": s.url, "NATS_NKEY": good}))
    assert_refused(
        osfs("bucket", "ls", "--json", "--server", s.url, "--nkey", write(tmp_path / "o.nk", other)),
        seed,
        other,
    )


# ----- operator mode: JWTs signed here with nkeys ---------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict, subject: str, issuer: nkeys.KeyPair, name: str) -> str:
    body = {
        "iat": int(time.time()),
        "iss": issuer.public_key.decode(),
        "name": name,
        "sub": subject,
        **claims,
    }
    body["jti"] = base64.b32encode(hashlib.sha256(json.dumps(body).encode()).digest()).decode().rstrip("=")
    signing_input = _b64(b'{"typ":"JWT","alg":"ed25519-nkey"}') + "." + _b64(json.dumps(body).encode())
    return signing_input + "." + _b64(issuer.sign(signing_input.encode()))


def make_creds(user_jwt: str, seed: str) -> str:
    return (
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )


def operator_setup() -> tuple[str, nkeys.KeyPair]:
    """Server config for an operator with one JetStream-enabled account, and the account key."""
    op, _ = new_keypair(nkeys.PREFIX_BYTE_OPERATOR)
    acct, _ = new_keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    op_pub, acct_pub = op.public_key.decode(), acct.public_key.decode()
    op_jwt = make_jwt({"nats": {"type": "operator", "version": 2}}, op_pub, op, "op")
    limits = {
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True,
        "conn": -1, "leaf": -1, "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    }  # fmt: skip
    acct_jwt = make_jwt(
        {
            "nats": {
                "limits": limits,
                "default_permissions": {"pub": {}, "sub": {}},
                "type": "account",
                "version": 2,
            }
        },
        acct_pub,
        op,
        "app",
    )
    sys_acct, _ = new_keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    sys_pub = sys_acct.public_key.decode()
    sys_jwt = make_jwt({"nats": {"type": "account", "version": 2}}, sys_pub, op, "SYS")
    config = (
        f"operator: {op_jwt}\nsystem_account: {sys_pub}\nresolver: MEMORY\n"
        f"resolver_preload: {{ {acct_pub}: {acct_jwt}, {sys_pub}: {sys_jwt} }}\n"
    )
    return config, acct


def user_creds(acct: nkeys.KeyPair) -> tuple[str, str]:
    user, seed = new_keypair(nkeys.PREFIX_BYTE_USER)
    claims = {
        "nats": {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2}
    }
    return make_creds(make_jwt(claims, user.public_key.decode(), acct, "u"), seed), seed


def test_creds_file_env_and_context(server, tmp_path: Path):
    config, acct = operator_setup()
    s = server(config)
    creds, seed = user_creds(acct)
    good = write(tmp_path / "app.creds", creds)
    res = osfs("bucket", "create", "credsb", "--server", s.url, "--creds", good)
    assert res.returncode == 0, res.stderr
    assert_ok(osfs("bucket", "ls", "--json", env={"NATS_URL": s.url, "NATS_CREDS": good}))
    ctx = tmp_path / "home" / ".config" / "nats" / "context"
    ctx.mkdir(parents=True)
    write(ctx / "c.json", json.dumps({"url": s.url, "creds": good}))
    assert_ok(osfs("bucket", "ls", "--json", "--context", "c", home=tmp_path / "home"))
    # a user of an account this server does not know
    _, stranger = operator_setup()
    bad_creds, bad_seed = user_creds(stranger)
    bad = write(tmp_path / "bad.creds", bad_creds)
    assert_refused(osfs("bucket", "ls", "--json", "--server", s.url, "--creds", bad), bad_seed, seed)


# ----- TLS ------------------------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path, name: str) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name} CA",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}", "-keyout", f"{who}.key",
                "-out", f"{who}.csr", cwd=d)  # fmt: skip
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", "san.ext", "-out", f"{who}.pem", cwd=d)  # fmt: skip
    names = {"ca": "ca.pem", "cert": "client.pem", "key": "client.key"}
    names |= {"server_cert": "server.pem", "server_key": "server.key"}
    return {k: str(d / f) for k, f in names.items()}


needs_openssl = needs_program("openssl")


def tls_config(pki: dict[str, str], verify: bool) -> str:
    return (
        f'tls {{ cert_file: "{pki["server_cert"]}", key_file: "{pki["server_key"]}", '
        f'ca_file: "{pki["ca"]}", verify: {"true" if verify else "false"}, timeout: 5 }}\n'
    )


@needs_openssl
def test_tls_ca_client_certificates_env_and_context(server, tmp_path: Path):
    pki = make_pki(tmp_path / "pki", "osfs-test")
    other = make_pki(tmp_path / "other", "stranger")
    s = server(tls_config(pki, verify=True))
    url = s.url.replace("nats://", "tls://")
    tls = ["--tls-ca", pki["ca"], "--tls-cert", pki["cert"], "--tls-key", pki["key"]]
    assert_ok(osfs("bucket", "ls", "--json", "--server", url, *tls))
    env = {"NATS_URL": url, "NATS_CA": pki["ca"], "NATS_CERT": pki["cert"], "NATS_KEY": pki["key"]}
    assert_ok(osfs("bucket", "ls", "--json", env=env))
    ctx = tmp_path / "home" / ".config" / "nats" / "context"
    ctx.mkdir(parents=True)
    write(ctx / "tls.json", json.dumps({"url": url, "ca": pki["ca"], "cert": pki["cert"], "key": pki["key"]}))
    assert_ok(osfs("bucket", "ls", "--json", "--context", "tls", home=tmp_path / "home"))
    # a server certificate from a CA we do not trust
    assert_refused(osfs("bucket", "ls", "--json", "--server", url, "--tls-ca", other["ca"],
                        "--tls-cert", pki["cert"], "--tls-key", pki["key"]))  # fmt: skip
    # no client certificate, or one the server's CA did not sign
    assert_refused(osfs("bucket", "ls", "--json", "--server", url, "--tls-ca", pki["ca"]))
    assert_refused(osfs("bucket", "ls", "--json", "--server", url, "--tls-ca", pki["ca"],
                        "--tls-cert", other["cert"], "--tls-key", other["key"]))  # fmt: skip
    res = osfs("bucket", "ls", "--server", url, "--tls-cert", pki["cert"])
    assert res.returncode == 2 and "go together" in res.stderr


@needs_openssl
@requires_fuse
@pytest.mark.mount
def test_mount_over_tls_with_user_and_password(server, tmp_path: Path, bucket_name: str):
    pki = make_pki(tmp_path / "pki", "osfs-test")
    s = server(
        tls_config(pki, verify=False)
        + 'authorization { users = [ { user: bob, password: "'
        + SECRET
        + '" } ] }'
    )
    url = s.url.replace("nats://", "tls://")
    pw = write(tmp_path / "pw", SECRET)
    log = tmp_path / "osfs.log"
    m = start_mount(tmp_path / "mnt", log, "--server", url, "--tls-ca", pki["ca"], "--user", "bob",
                    "--password-file", pw, "--log-level", "DEBUG")  # fmt: skip
    try:
        os.mkdir(m.path / bucket_name)
        (m.path / bucket_name / "f").write_text("over tls")
        assert (m.path / bucket_name / "f").read_text() == "over tls"
        big = os.urandom(5 * 1024 * 1024 + 7)  # MiB batches through the TLS receive path
        (m.path / bucket_name / "big").write_bytes(big)
        assert (m.path / bucket_name / "big").read_bytes() == big
    finally:
        m.unmount()
    assert SECRET not in log.read_text()
    # the wrong password: a one-line error, no mount
    bad = write(tmp_path / "bad", "wrong")
    (tmp_path / "mnt2").mkdir()
    res = osfs("mount", str(tmp_path / "mnt2"), "--server", url, "--tls-ca", pki["ca"], "--user", "bob",
               "--password-file", bad)  # fmt: skip
    assert_refused(res, SECRET, "wrong")
    assert "cannot connect" in res.stderr
    assert not os.path.ismount(tmp_path / "mnt2")
