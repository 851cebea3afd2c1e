#!/usr/bin/env bash
# All tests: set-up (idempotent), Rust unit + integration + UI tests (headless wgpu on lavapipe),
# and the Python tool/training tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./packaging/setup.sh
echo "== cargo test" >&2
cargo test --release --locked --all-targets
echo "== python tests" >&2
PYTHONPATH=training .venv/bin/python -m pytest -q training/tests
echo "all tests passed" >&2
