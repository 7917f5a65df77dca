"""How the NATS store reaches its server: :class:`ConnectOptions` (a frozen value, no nats
import), built by the CLI and read by :mod:`osfs.store.nats.conn`; ``osfs.config``
re-exports it for the layers above.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach NATS. ``servers`` empty means: start the embedded server.

    Secrets are never held as command-line text: ``token``/``password`` are read from files
    (or the environment) by the CLI before this is built.
    """

    servers: tuple[str, ...] = ()
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    creds_file: str | None = None
    nkey_seed_file: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    connect_timeout: float = 5.0
    request_timeout: float = 10.0
    name: str = "osfs"
