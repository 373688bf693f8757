#!/usr/bin/env bash
# The whole test suite: Rust (core, CLI, model check, kill storm, bench smoke
# run) and Python (binding, 1.x compatibility, mixed with real 1.0.2
# processes, typing). On a fresh machine it installs what it needs: crates
# through cargo, Python tools into a private virtualenv (.venv-test/).
set -euo pipefail
cd "$(dirname "$0")/.."

# As root (CI), the tests that need namespaces (unshare) must run, not skip.
if [ "$(id -u)" = 0 ]; then
    export LOCKFOLDER_REQUIRE_NAMESPACES=1
fi

echo "== Rust: unit, integration, doc tests, model check, kill storm =="
cargo test --workspace --locked

echo "== Benchmark harness smoke run (checks mutual exclusion, not speed) =="
bash bench/run.sh --quick

echo "== Python package =="
bash scripts/test-python.sh
