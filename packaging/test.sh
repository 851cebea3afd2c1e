#!/usr/bin/env bash
# All tests: set-up with the training environment (idempotent; the Python tests need torch), the
# app lock's consistency, the relative links of README.md and docs/, Rust unit + integration + UI
# tests (headless wgpu on lavapipe), that the command line still builds without the app, the Debian package (built, installed into a temporary root, run
# on a sample, removed), and the Python tool/training tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./packaging/setup.sh --training
echo "== app lock (training/requirements-app-lock.txt), documentation links" >&2
.venv/bin/python packaging/check_app_lock.py
python3 packaging/check_links.py
./packaging/test_gpu_setup.sh
echo "== cargo test" >&2
cargo test --release --locked --all-targets
echo "== headless build (command line without the app: --no-default-features)" >&2
cargo check --release --locked --no-default-features --bin tamperscope
echo "== Debian package" >&2
./packaging/test_deb.sh
echo "== python tests" >&2
PYTHONPATH=training .venv/bin/python -m pytest -q training/tests
echo "all tests passed" >&2
