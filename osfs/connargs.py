"""Connection settings from the command line, a ``nats`` CLI context and the environment.

Shared by ``osfs mount`` and ``osfs bucket``. Precedence, highest first: command-line
options (and ``-o`` options), ``NATS_*`` variables, the context named by ``--context`` or
``NATS_CONTEXT`` (``~/.config/nats/context/NAME.json``, keys ``url``, ``user``, ``password``,
``creds``, ``nkey``, ``token``, ``cert``, ``key``, ``ca``).

Secrets are never taken from the command line (they would show in ``ps``): passwords and
tokens come from files (``--password-file``, ``--token-file``), the environment
(``NATS_PASSWORD``, ``NATS_TOKEN``) or a context file.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.parse
from pathlib import Path

from .config import ConnectOptions

ENV_HELP = """\
environment:
  NATS_URL             server URL(s), comma-separated (same as --server)
  NATS_CONTEXT         nats CLI context to read (same as --context)
  NATS_CREDS           credentials file (same as --creds)
  NATS_NKEY            nkey seed file (same as --nkey)
  NATS_USER            user name (same as --user)
  NATS_PASSWORD        password for NATS_USER/--user
  NATS_TOKEN           authentication token
  NATS_CA, NATS_CERT, NATS_KEY   TLS CA, client certificate and key files
"""


class UsageError(Exception):
    """Bad command-line input; reported as one line with exit code 2."""


def read_secret(path: str, what: str) -> str:
    """The stripped content of a secret file; ``UsageError`` (naming the file, never the
    content) when it cannot be read."""
    try:
        return Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read {what} file {path}: {exc.strerror}") from exc


def add_connection_arguments(p: argparse.ArgumentParser) -> None:
    """The connection options of every command that talks to NATS."""
    conn = p.add_argument_group("connection (no server named: start a private nats-server)")
    conn.add_argument("--server", "-s", metavar="URL[,URL…]", help="NATS server URL(s); env NATS_URL")
    conn.add_argument("--context", metavar="NAME", help="read ~/.config/nats/context/NAME.json")
    conn.add_argument("--creds", metavar="FILE", help="NATS credentials (JWT + nkey) file")
    conn.add_argument("--nkey", metavar="FILE", help="nkey seed file")
    conn.add_argument("--user", metavar="NAME", help="user name (password from --password-file)")
    conn.add_argument("--password-file", metavar="FILE", help="file holding the password")
    conn.add_argument("--token-file", metavar="FILE", help="file holding the authentication token")
    conn.add_argument("--tls-ca", metavar="FILE", help="CA certificate(s) to verify the server")
    conn.add_argument("--tls-cert", metavar="FILE", help="client certificate")
    conn.add_argument("--tls-key", metavar="FILE", help="client certificate's key")
    conn.add_argument("--data-dir", metavar="DIR", help="embedded server data (default $XDG_DATA_HOME/osfs)")


def context_path(name: str, env: dict[str, str]) -> Path:
    """Where the ``nats`` CLI keeps context ``name``."""
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return Path(base) / "nats" / "context" / f"{name}.json"


def load_context(name: str, env: dict[str, str]) -> dict[str, str]:
    """The non-empty string settings of a ``nats`` CLI context; ``UsageError`` if unreadable."""
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"bad context name: {name!r}")
    path = context_path(name, env)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no nats context {name!r} ({path})") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read nats context {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"cannot read nats context {path}: not a JSON object")
    return {k: str(v) for k, v in data.items() if isinstance(v, str | int) and str(v) != ""}


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``(url without user info, user, password)``; ``nats://TOKEN@host`` gives the token as
    the user and no password (as the NATS clients read it)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    hostpart, slash, path = rest.partition("/")
    info, at, host = hostpart.rpartition("@")
    if not at:
        return url, None, None
    user, colon, password = info.partition(":")
    clean = (f"{scheme}://" if sep else "") + host + slash + path
    return clean, urllib.parse.unquote(user) or None, urllib.parse.unquote(password) if colon else None


def connect_options(ns: argparse.Namespace, env: dict[str, str]) -> ConnectOptions:
    """Connection settings from arguments, then the environment, then a context file.

    User info in a server URL (``nats://user:pass@host``, ``nats://token@host``) is refused on
    the command line; from the environment or a context it is moved out of the URL into the
    user/password/token settings, so the URLs osfs logs and shows hold no secrets.
    """
    ctx_name = getattr(ns, "context", None) or env.get("NATS_CONTEXT")
    ctx = load_context(ctx_name, env) if ctx_name else {}

    def pick(arg: str | None, var: str, key: str) -> str | None:
        return arg or env.get(var) or ctx.get(key) or None

    servers_text = pick(ns.server, "NATS_URL", "url") or ""
    servers_list, url_user, url_password = [], None, None
    for text in (s.strip() for s in servers_text.split(",")):
        if not text:
            continue
        clean, u, p = split_userinfo(text)
        if u is not None and ns.server:
            raise UsageError(
                f"no credentials in server URLs on the command line ({clean}): "
                "use --user with --password-file, or --token-file"
            )
        url_user, url_password = url_user or u, url_password or p
        servers_list.append(clean)
    servers = tuple(servers_list)
    if ns.password_file:
        password = read_secret(ns.password_file, "password")
    else:
        password = env.get("NATS_PASSWORD") or ctx.get("password")
    if ns.token_file:
        token = read_secret(ns.token_file, "token")
    else:
        token = env.get("NATS_TOKEN") or ctx.get("token")
    user = pick(ns.user, "NATS_USER", "user")
    if url_user is not None and url_password is None:
        token = token or url_user
    elif url_user is not None:
        user, password = user or url_user, password or url_password
    if password and not user:
        raise UsageError("a password was given without a user (--user or NATS_USER)")
    creds = pick(ns.creds, "NATS_CREDS", "creds")
    nkey = pick(ns.nkey, "NATS_NKEY", "nkey")
    ca = pick(ns.tls_ca, "NATS_CA", "ca")
    cert = pick(ns.tls_cert, "NATS_CERT", "cert")
    key = pick(ns.tls_key, "NATS_KEY", "key")
    files = {"--creds": creds, "--nkey": nkey, "--tls-ca": ca, "--tls-cert": cert, "--tls-key": key}
    for flag, path in files.items():
        if path and not os.path.isfile(os.path.expanduser(path)):
            raise UsageError(f"{flag}: no such file: {path}")
    if bool(cert) != bool(key):
        raise UsageError("--tls-cert and --tls-key go together")
    if creds and nkey:
        raise UsageError("--creds and --nkey exclude each other")

    def expand(path: str | None) -> str | None:
        return os.path.expanduser(path) if path else None

    return ConnectOptions(
        servers=servers,
        user=user,
        password=password,
        token=token,
        creds_file=expand(creds),
        nkey_seed_file=expand(nkey),
        tls_ca=expand(ca),
        tls_cert=expand(cert),
        tls_key=expand(key),
    )
