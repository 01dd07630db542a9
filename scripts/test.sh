#!/usr/bin/env bash
# `make test`: dev requirements (+ Debian's chromium for the browser tests), then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh requirements-dev.txt --browser
# Tests get their own filesystem-broker folder, so that a worker of `make run` never takes their tasks.
export FEDHEALTH_BROKER_DIR="${FEDHEALTH_BROKER_DIR:-$PWD/var/test-broker}"
exec .venv/bin/python -m pytest "$@"
