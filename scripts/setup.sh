#!/usr/bin/env bash
# Install what osfs needs on a Debian/Ubuntu machine, bare or not: Python 3.11+ with its
# headers and a C compiler (pyfuse3 ships no wheel: pip builds it against libfuse3), FUSE 3,
# the file-system stress tools the tests run; then a virtualenv in .venv with osfs (editable)
# and its test tools, at the versions pyproject.toml bounds. Safe to run again.
#
# Runs as root (apt-get directly) or as a user with sudo. Under sudo, the virtualenv and
# osfs.egg-info are made as the user who called sudo ($SUDO_USER), so that the checkout
# stays theirs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh: run as root, or install sudo" >&2; exit 1; }
    SUDO="sudo"
fi

python_ok() {
    "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}
python_too_old() {
    echo "setup.sh: osfs needs Python 3.11 or newer; $PY is $("$PY" -c 'import platform; print(platform.python_version())')" >&2
    exit 1
}
# Say so at once when the Python we would use is too old (before installing anything).
if command -v "$PY" >/dev/null && ! python_ok; then
    python_too_old
fi

need=()
for pkg in python3 python3-venv python3-dev gcc libc6-dev pkg-config fuse3 libfuse3-dev \
    attr rsync openssl fio stress-ng dbench; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
# systemd-analyze checks the units in systemd/ (the tests skip that check without it).
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ "${#need[@]}" -gt 0 ]; then
    echo "setup.sh: installing ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v "$PY" >/dev/null || { echo "setup.sh: $PY not found" >&2; exit 1; }
python_ok || python_too_old

# Under sudo, the checkout's files are made by its owner, not by root.
as_owner=()
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    as_owner=(runuser -u "$SUDO_USER" -- env HOME="$home" PYTHONDONTWRITEBYTECODE=1)
    # what an earlier run as root left here becomes the user's again
    for made in .venv osfs.egg-info; do
        [ ! -e "$made" ] || chown -R "$SUDO_USER:" "$made"
    done
fi
run() { "${as_owner[@]}" "$@"; }

[ -x .venv/bin/python ] || run "$PY" -m venv .venv
run .venv/bin/python -m pip install -q --upgrade pip >/dev/null
# setuptools notes (as a warning) that editable installs import from the checkout: they do,
# on purpose.
PYTHONWARNINGS="ignore:Editable installation" run .venv/bin/python -m pip install -q -e '.[test]'
# mount(8) runs /sbin/mount.fuse.osfs for `-t fuse.osfs` (fstab, .mount units); the
# systemd unit runs /usr/local/bin/osfs. OSFS_NO_SYSTEM_LINKS=1 leaves both alone.
if [ "${OSFS_NO_SYSTEM_LINKS:-0}" != 1 ]; then
    $SUDO ln -sfn "$(pwd)/.venv/bin/mount.fuse.osfs" /sbin/mount.fuse.osfs
    $SUDO ln -sfn "$(pwd)/.venv/bin/osfs" /usr/local/bin/osfs
fi
echo "osfs installed: $(pwd)/.venv/bin/osfs"
