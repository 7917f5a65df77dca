#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite: lint, import contracts, unit tests,
# the store against a real nats-server, and real FUSE mounts (they need /dev/fuse and root).
# Arguments go to pytest. Run as root, or as a user with sudo: the script then runs itself
# under sudo (as `sudo scripts/test.sh` does), and setup.sh makes the virtualenv as that user.
#
# Nothing is written into the checkout while testing (no __pycache__, no ruff, pytest,
# import-linter or hypothesis caches): run as root under sudo, that would leave files the
# checkout's owner cannot remove.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then
    exec sudo --preserve-env=CI,PYTHON,OSFS_NO_SYSTEM_LINKS "$(pwd)/scripts/test.sh" "$@"
fi
scripts/setup.sh
export PYTHONDONTWRITEBYTECODE=1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export HYPOTHESIS_STORAGE_DIRECTORY="$scratch/hypothesis"
.venv/bin/ruff check --no-cache osfs tests bench
# The architecture contracts: pyproject.toml's [tool.importlinter] section.
.venv/bin/lint-imports --no-cache
.venv/bin/python -m pytest -p no:cacheprovider -q -ra "$@"
