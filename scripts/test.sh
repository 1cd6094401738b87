#!/usr/bin/env bash
# Every test: the Rust workspace's, then the Python package's (crates/python) against
# Gymnasium, PyTorch and Stable-Baselines3. The Python tests run in a virtual environment of
# their own (GRADLESS_VENV, default .venv), made and filled on the first run (maturin, numpy,
# gymnasium, pytest, torch, stable-baselines3 from PyPI); the native module is built there by `maturin develop` in the dev profile, reusing
# the dependencies `cargo test` just built in the same target directory.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-features

venv="${GRADLESS_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
    echo "test: making the Python virtual environment $venv" >&2
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "maturin>=1.9.4,<2" numpy "gymnasium>=1.0" pytest torch "stable-baselines3>=2.4"
VIRTUAL_ENV="$(cd "$venv" && pwd)" "$venv/bin/maturin" develop --quiet \
    --manifest-path crates/python/Cargo.toml
GRADLESS_BIN="${CARGO_TARGET_DIR:-target}/debug/gradless" "$venv/bin/python" -m pytest -q crates/python/tests
