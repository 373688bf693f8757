#!/usr/bin/env bash
# lockfolder's benchmark, one command:
#
#   bash bench/run.sh           full run (about 10 minutes), writes bench/RESULTS.md
#   bash bench/run.sh --quick   smoke run (seconds, Rust only), writes
#                               bench/work/RESULTS-quick.md; exits non-zero if
#                               mutual exclusion failed or the harness broke
#
# It builds the Rust bench in release mode, measures on tmpfs (/dev/shm) and on
# the disk filesystem holding the repository (bench/work/), and, in the full
# run, sets up bench-only virtualenvs for the Python peers (bench/.venv),
# lockfolder 1.0.2 from PyPI (bench/.venv-lf102: its package name clashes with
# ours) and lockfolder's own Python face (bench/.venv-self, `pip install .`).
# See bench/README.md.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "bench/run.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
say() { echo "[bench/run.sh] $*" >&2; }

say "building lockfolder-bench (release)"
cargo build --release --quiet -p lockfolder-bench
BENCH=$TARGET/release/lockfolder-bench

# ---- filesystems: a tmpfs and the disk under the repository
WORK=$ROOT/bench/work
mkdir -p "$WORK"
DISK=$(mktemp -d "$WORK/run.XXXXXX")
TMPFS=""
if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" = tmpfs ]; then
    TMPFS=$(mktemp -d /dev/shm/lockfolder-bench.XXXXXX)
fi
cleanup() { rm -rf "$DISK"; [ -n "$TMPFS" ] && rm -rf "$TMPFS"; true; }
trap cleanup EXIT
FS_ARGS=()
[ -n "$TMPFS" ] && FS_ARGS+=(--fs "tmpfs=$TMPFS") || say "no writable tmpfs at /dev/shm: measuring the disk only"
FS_ARGS+=(--fs "disk=$DISK")

ARGS=()
NOTE=""
if [ "$QUICK" = 1 ]; then
    OUT=$WORK/RESULTS-quick.md
    ARGS+=(--quick)
    CMD="bash bench/run.sh --quick"
else
    OUT=$ROOT/bench/RESULTS.md
    CMD="bash bench/run.sh"
    ARGS+=(--peers "$ROOT/bench/peers.py")

    # ---- Python peers, each group in its own bench-only virtualenv
    venv() { # dir, packages...
        local dir=$1; shift
        if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'pass' 2>/dev/null; then
            python3 -m venv "$dir" || return 1
        fi
        "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2 || return 1
    }
    if venv bench/.venv filelock fasteners portalocker flufl.lock; then
        ARGS+=(--python "$ROOT/bench/.venv/bin/python")
    else
        say "could not set up bench/.venv: Python peers skipped"
    fi
    if venv bench/.venv-lf102 lockfolder==1.0.2; then
        ARGS+=(--python-lf102 "$ROOT/bench/.venv-lf102/bin/python")
    else
        say "could not set up bench/.venv-lf102: lockfolder 1.0.2 skipped"
    fi
    # Our own Python face, built from this checkout.
    SELF_LOG=$WORK/pip-install-self.log
    if venv bench/.venv-self --force-reinstall --no-deps "$ROOT" > "$SELF_LOG" 2>&1 \
        && bench/.venv-self/bin/python -c 'import lockfolder; lockfolder.LockFolder' 2>>"$SELF_LOG"; then
        ARGS+=(--python-self "$ROOT/bench/.venv-self/bin/python")
    else
        ARGS+=(--self-missing "\`pip install .\` did not give a working \`lockfolder.LockFolder\`: $(tail -n 1 "$SELF_LOG" | tr -d '`|' | cut -c1-200)")
        say "lockfolder's Python face is not available (see $SELF_LOG)"
    fi

    # ---- the CLI, for lockfolder run vs flock
    if command -v flock >/dev/null; then
        if cargo build --release --quiet -p lockfolder-cli 2>"$WORK/cli-build.log" && [ -x "$TARGET/release/lockfolder" ]; then
            ARGS+=(--cli "$TARGET/release/lockfolder")
            if [ -f crates/lockfolder-cli/bench/run_vs_flock.sh ]; then
                ARGS+=(--cli-script "$ROOT/crates/lockfolder-cli/bench/run_vs_flock.sh")
            fi
        else
            ARGS+=(--cli-missing "cargo build --release -p lockfolder-cli failed: $(tail -n 1 "$WORK/cli-build.log" | tr -d '`|' | cut -c1-200)")
        fi
    else
        ARGS+=(--cli-missing "flock(1) is not installed")
    fi
    LOAD=$(cut -d' ' -f1 /proc/loadavg)
    NOTE="the machine is shared; load average $LOAD when the run began (other builds may have been running)."
fi

"$BENCH" suite "${ARGS[@]}" "${FS_ARGS[@]}" --out "$OUT" --command "$CMD" \
    ${NOTE:+--note "$NOTE"} > /dev/null
say "wrote ${OUT#$ROOT/}"
