#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite: lint, import contracts, unit tests,
# the store against a real nats-server, and real FUSE mounts (they need /dev/fuse and root:
# run as root, or `sudo scripts/test.sh`). Arguments go to pytest.
#
# Nothing is written into the checkout while testing (no __pycache__, no ruff, pytest,
# import-linter or hypothesis caches): run as root under sudo, that would leave files the
# checkout's owner cannot remove.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PYTHONDONTWRITEBYTECODE=1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export HYPOTHESIS_STORAGE_DIRECTORY="$scratch/hypothesis"
.venv/bin/ruff check --no-cache osfs tests bench
# The import contracts live in pyproject.toml's [tool.importlinter] section.
if grep -q '^\[tool\.importlinter\]' pyproject.toml; then
    .venv/bin/lint-imports --no-cache
fi
.venv/bin/python -m pytest -p no:cacheprovider -q -ra "$@"
