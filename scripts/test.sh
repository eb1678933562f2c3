#!/usr/bin/env bash
# Sets everything up and runs every check: formatting, lints, the Rust unit tests, the wheel
# as users install it and the Python test suite. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== cargo fmt / clippy" >&2
cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

echo "== ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== mypy" >&2
# The package's types, the native module's included (rnnstab_cli/_engine.pyi; configuration in
# pyproject.toml).
.venv/bin/mypy

echo "== cargo test" >&2
RNNSTAB_REQUIRE_GPU=1 cargo test --workspace --exclude rnnstab-python --release --quiet
# The kernels of the lower instruction sets, on a machine that has a higher one: the engine's
# tests again with its instruction set capped.
for level in avx2 portable; do
    RNNSTAB_SIMD=$level cargo test -p rnnstab-engine --release --quiet
done

echo "== wheel" >&2
# The wheel as users install it: presets inside, `rnnstab tasks` and a preset run from a fresh
# environment outside the checkout (reuses the engine setup.sh built).
bash scripts/check_wheel.sh

echo "== pytest" >&2
# CI=1 selects the derandomised Hypothesis profile with no deadlines (tests/conftest.py).
# RNNSTAB_REQUIRE_GPU=1: a missing GPU adapter fails the GPU tests instead of skipping them.
CI="${CI:-1}" RNNSTAB_REQUIRE_GPU=1 .venv/bin/python -m pytest -q
