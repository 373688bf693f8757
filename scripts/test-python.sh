#!/usr/bin/env bash
# Builds the Python package from this repository on a fresh machine and tests
# it: a virtualenv (.venv-test/) gets maturin, pytest and mypy; maturin builds
# the wheel (cargo's progress shows: a cold release build takes minutes, which
# `pip install .` would spend in silence) and pip installs it; a second
# virtualenv (.venv-lockfolder102/) gets the PyPI release lockfolder 1.0.2 for
# the mixed test; then pytest (tests/python) and `mypy --strict` run. Exits
# non-zero on any failure.
#
#   PYTHON=python3.12 scripts/test-python.sh    # another interpreter
#   scripts/test-python.sh -k mixed             # extra arguments go to pytest
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
venv="$root/.venv-test"
legacy="$root/.venv-lockfolder102"
# Reuse the workspace's target directory unless the caller chose one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

step() { printf '\n== %s\n' "$*"; }

if [ ! -x "$venv/bin/python" ]; then
    step "virtualenv $venv"
    "$python" -m venv "$venv"
fi
step "tools: maturin, pytest, mypy"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "maturin>=1.5,<2" "pytest>=7" "mypy>=1.5"

step "maturin build --release (crates/lockfolder-py), then pip install the wheel"
wheels="$CARGO_TARGET_DIR/test-python-wheels"
rm -rf "$wheels"
start=$SECONDS
# The same build `pip install .` runs, with cargo's output (a line per crate,
# a progress bar on a terminal) instead of minutes of silence.
"$venv/bin/maturin" build --release --locked --interpreter "$venv/bin/python" \
    --out "$wheels"
echo "built in $((SECONDS - start)) s"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --force-reinstall --no-deps "$wheels"/lockfolder-*.whl

if [ ! -x "$legacy/bin/python" ]; then
    step "virtualenv $legacy (lockfolder 1.0.2 from PyPI)"
    "$python" -m venv "$legacy"
fi
"$legacy/bin/python" -m pip install --quiet --disable-pip-version-check \
    "lockfolder==1.0.2" psutil
"$legacy/bin/python" -c "import lockfolder.lockfolder, psutil"

step "mypy --strict"
"$venv/bin/python" -m mypy --strict tests/python/typing_examples.py
"$venv/bin/python" -m mypy --strict python/lockfolder

step "pytest tests/python"
# Run from outside the source tree's python/ folder so `import lockfolder`
# finds the installed package (with its native module), not the sources.
LOCKFOLDER_LEGACY_PYTHON="$legacy/bin/python" \
    "$venv/bin/python" -m pytest tests/python -q -rs "$@"
