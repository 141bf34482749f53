#!/usr/bin/env bash
# Set up everything, then lint and run the whole test suite headless
# (pytest-xvfb starts a virtual X server; extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
unset QT_QPA_PLATFORM
exec .venv/bin/python -m pytest "$@"
