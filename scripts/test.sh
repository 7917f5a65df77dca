#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite: unit tests, the store against a real
# nats-server, and real FUSE mounts (needs /dev/fuse; run as root for the mount tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check osfs tests bench
exec .venv/bin/python -m pytest -p no:cacheprovider -q -ra "$@"
