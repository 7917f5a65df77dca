"""systemd: the shipped units verify, and ``Type=notify`` readiness is real."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mountkit import needs_program, osfs_cmd, requires_fuse, start_mount

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"
INSTALLED_OSFS = "/usr/local/bin/osfs"


def _osfs_binary() -> str:
    beside = Path(sys.executable).parent / "osfs"
    return str(beside) if beside.exists() else (shutil.which("osfs") or INSTALLED_OSFS)


@needs_program("systemd-analyze", "systemd")
def test_units_verify(tmp_path: Path):
    """``systemd-analyze verify`` on the template (as an instance) and the example .mount unit.

    verify insists that ExecStart's binary exists; scripts/setup.sh links it to
    /usr/local/bin/osfs, and where that link is missing the copy names this venv's osfs."""
    service = (UNITS / "osfs@.service").read_text()
    if not os.access(INSTALLED_OSFS, os.X_OK):
        service = service.replace(INSTALLED_OSFS, _osfs_binary())
    (tmp_path / "osfs@mnt-objects.service").write_text(service)
    (tmp_path / "osfs@.service").write_text(service)
    shutil.copy(UNITS / "mnt-objects.mount", tmp_path / "mnt-objects.mount")
    res = subprocess.run(
        ["systemd-analyze", "verify", "osfs@mnt-objects.service", "mnt-objects.mount"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    # systemd-analyze prints problems it does not count as failures too
    assert "osfs" not in res.stderr, res.stderr


def test_unit_contract():
    """What the deployment relies on, read from the shipped files."""
    service = (UNITS / "osfs@.service").read_text()
    lines = {
        ln.split("=", 1)[0]: ln.split("=", 1)[1] for ln in service.splitlines() if "=" in ln and ln[0] != "#"
    }
    assert lines["Type"] == "notify"
    assert lines["Restart"] == "on-failure"
    assert lines["EnvironmentFile"].startswith("-/etc/osfs/")
    assert "--foreground" in lines["ExecStart"] and "umount" in lines["ExecStop"]
    # options that would give the service its own mount namespace (the mount would vanish)
    for key in (
        "PrivateTmp",
        "PrivateDevices",
        "ProtectSystem",
        "ProtectHome",
        "ProtectKernelModules",
        "ProtectKernelTunables",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "ReadOnlyPaths",
        "ReadWritePaths",
        "InaccessiblePaths",
        "TemporaryFileSystem",
        "BindPaths",
        "PrivateMounts",
        "MountFlags",
    ):
        assert key not in lines, key
    fstab = [ln for ln in (UNITS / "mnt-objects.mount").read_text().splitlines() if "fuse.osfs" in ln]
    assert any(ln.lstrip("# ").split()[2:3] == ["fuse.osfs"] for ln in fstab)


class NotifyListener:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def receive(self, timeout: float) -> dict[str, str] | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except TimeoutError:
            return None
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def close(self) -> None:
        self.sock.close()


@requires_fuse
@pytest.mark.mount
def test_sd_notify_ready_after_mount_answers_and_stopping(tmp_path: Path, nats_url: str, bucket_name: str):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    listener = NotifyListener(tmp_path / "notify.sock")
    log = tmp_path / "osfs.log"
    proc = subprocess.Popen(
        osfs_cmd("mount", str(mnt), "--foreground", "--server", nats_url, "--log-file", str(log)),
        env={**os.environ, "NOTIFY_SOCKET": str(listener.path)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        msg = listener.receive(60)
        assert msg is not None, f"no notification; log:\n{log.read_text() if log.exists() else ''}"
        # the first thing osfs tells systemd is READY=1, and by then the mount answers
        assert msg.get("READY") == "1", msg
        assert os.path.ismount(mnt)
        assert os.listdir(mnt) is not None
        assert str(mnt) in msg.get("STATUS", "")
        assert proc.poll() is None
        os.mkdir(mnt / bucket_name)
        (mnt / bucket_name / "f.txt").write_text("flushed before stop")
        # what ExecStop runs: returns once the process has finished
        res = subprocess.run(osfs_cmd("umount", str(mnt)), capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert proc.poll() == 0
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = listener.receive(max(0.1, deadline - time.monotonic()))
            if msg is None:
                break
            seen.append(msg)
            if msg.get("STOPPING") == "1":
                break
        assert any(m.get("STOPPING") == "1" for m in seen), seen
        assert proc.wait(60) == 0, proc.stderr.read().decode() if proc.stderr else ""
        res = subprocess.run(
            osfs_cmd("bucket", "status", bucket_name, "--server", nats_url, "--json"),
            capture_output=True,
            text=True,
        )
        assert json.loads(res.stdout)["objects"] == 1, res.stderr
    finally:
        if proc.poll() is None:
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
            proc.kill()
            proc.wait()
        listener.close()


@requires_fuse
@pytest.mark.mount
def test_sigterm_unmounts_cleanly(tmp_path: Path, nats_url: str):
    """What systemd does when ExecStop could not unmount (or without ExecStop): SIGTERM."""
    mnt = tmp_path / "mnt"
    m = start_mount(mnt, tmp_path / "osfs.log", "--server", nats_url)
    m.proc.send_signal(signal.SIGTERM)
    assert m.proc.wait(60) == 0, m.log
    assert not os.path.ismount(mnt)
    assert "SIGTERM: unmounting" in m.log


@requires_fuse
@pytest.mark.mount
def test_sd_notify_reports_failure_and_never_ready(tmp_path: Path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    listener = NotifyListener(tmp_path / "notify.sock")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        res = subprocess.run(
            osfs_cmd("mount", str(mnt), "--foreground", "--server", f"nats://127.0.0.1:{port}"),
            env={**os.environ, "NOTIFY_SOCKET": str(listener.path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 1
        messages = []
        while (msg := listener.receive(0.5)) is not None:
            messages.append(msg)
        assert not any("READY" in m for m in messages), messages
        assert any(m.get("STATUS", "").startswith("failed: cannot connect") for m in messages), messages
    finally:
        listener.close()
