#!/usr/bin/env bash
# Install what osfs needs on a Debian/Ubuntu machine: FUSE 3 from the distribution (and the
# file-system stress tools the tests run), then a
# virtualenv in .venv with osfs (editable) and its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
for pkg in fuse3 libfuse3-dev pkg-config attr rsync python3-venv openssl fio stress-ng dbench; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
# systemd-analyze checks the units in systemd/ (the tests skip that check without it).
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ "${#need[@]}" -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# mount(8) runs /sbin/mount.fuse.osfs for `-t fuse.osfs` (fstab, .mount units); the
# systemd unit runs /usr/local/bin/osfs. OSFS_NO_SYSTEM_LINKS=1 leaves both alone.
if [ "${OSFS_NO_SYSTEM_LINKS:-0}" != 1 ]; then
    $SUDO ln -sfn "$(pwd)/.venv/bin/mount.fuse.osfs" /sbin/mount.fuse.osfs
    $SUDO ln -sfn "$(pwd)/.venv/bin/osfs" /usr/local/bin/osfs
fi
echo "osfs installed: $(pwd)/.venv/bin/osfs"
