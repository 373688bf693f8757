# Shared helpers for the lanes in scripts/lanes/. Source it, do not run it:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   lane_begin cross            # timing; prints "== lane cross: N s" at exit
#   step "install" apt_install gcc-mingw-w64-x86-64
#   on_exit rm -rf "$scratch"   # cleanup, run in reverse order at exit
#
# Everything here installs what it needs itself: CI runs on a fresh machine.

set -euo pipefail

LANES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034 # used by the lanes that source this file
REPO_ROOT="$(cd "$LANES_DIR/../.." && pwd)"
# Caches that survive between runs on one machine (the wine prefix, the
# Windows CPython, downloads). Not in the checkout: a wine prefix is 0.7 GB.
LANES_CACHE="${LANES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lockfolder-lanes}"
# Python tools of the lanes (cargo-zigbuild, ziglang), also in the cache:
# cargo-zigbuild names its linker wrappers after the path of zig, and cargo
# rebuilds std and every dependency when the linker's path changes, so a venv
# inside each fresh CI clone would make every run cold.
LANES_VENV="${LANES_VENV:-$LANES_CACHE/venv}"

export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# ---------------------------------------------------------------- messages

log() { printf '%s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------- cleanup

_LANE_CLEANUPS=()

# on_exit CMD [ARG...]: run CMD at exit (also after a failure or ^C), after
# every command registered later. Arguments are kept as given.
on_exit() {
    _LANE_CLEANUPS+=("$(printf '%q ' "$@")")
}

_lane_run_cleanups() {
    local i
    for ((i = ${#_LANE_CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${_LANE_CLEANUPS[i]}" || log "cleanup failed: ${_LANE_CLEANUPS[i]}"
    done
    _LANE_CLEANUPS=()
}

# ---------------------------------------------------------------- timing

_LANE_NAME=""
_LANE_START=0
_LANE_STEPS=()

# lane_begin NAME: start the lane's clock. At exit (success or not) the
# cleanups run, then the per-step times and "== lane NAME: N s" are printed.
lane_begin() {
    _LANE_NAME="$1"
    _LANE_START=$SECONDS
    trap '_lane_end $?' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    log "== lane $_LANE_NAME: start ($(date -u +%FT%TZ))"
}

_lane_end() {
    local rc="$1" s
    trap - EXIT
    _lane_run_cleanups
    if ((${#_LANE_STEPS[@]})); then
        log "-- steps of lane $_LANE_NAME:"
        for s in "${_LANE_STEPS[@]}"; do log "   $s"; done
    fi
    local cpu
    _child_cpu cpu
    cpu=$(((cpu + 500) / 1000))
    rm -f "$_LANE_TIMES"
    if ((rc == 0)); then
        log "== lane $_LANE_NAME: $((SECONDS - _LANE_START)) s ($cpu CPU-s)"
    else
        log "== lane $_LANE_NAME: $((SECONDS - _LANE_START)) s ($cpu CPU-s) (FAILED, exit $rc)"
    fi
    exit "$rc"
}

# _child_cpu VAR: set VAR to the CPU milliseconds (user + system) used so
# far by this shell's finished children. `times` must run in this shell (in a
# $(...) subshell it would see no children), so it writes to a file.
_LANE_TIMES="${TMPDIR:-/tmp}/lanes-times.$$"
_child_cpu() {
    local line="" f total=0 min sec
    times >"$_LANE_TIMES"
    { read -r _ && read -r line; } <"$_LANE_TIMES" || true
    # line: user and system time of the children, each like 1m2.345s
    for f in $line; do
        min="${f%%m*}" sec="${f#*m}"
        sec="${sec%s}"
        total=$((total + 10#$min * 60000 + 10#${sec%%.*} * 1000 + 10#${sec#*.}))
    done
    printf -v "$1" '%d' "$total"
}

# step NAME CMD [ARG...]: run CMD, print how long it took (wall and CPU
# seconds: on a shared machine the CPU figure is the steadier one), remember
# both for the lane's summary. Returns CMD's status. Bash ignores `set -e`
# inside a command whose status is tested, so functions run by step return
# explicitly on failure.
step() {
    local name="$1" start=$SECONDS cpu0 rc=0
    shift
    _child_cpu cpu0
    log ""
    log "-- $name"
    "$@" || rc=$?
    local took=$((SECONDS - start)) cpu
    _child_cpu cpu
    cpu=$(((cpu - cpu0 + 500) / 1000))
    if ((rc == 0)); then
        _LANE_STEPS+=("$(printf '%5d s %6d CPU-s  %s' "$took" "$cpu" "$name")")
        log "-- $name: $took s ($cpu CPU-s)"
    else
        _LANE_STEPS+=("$(printf '%5d s %6d CPU-s  %s (FAILED, exit %d)' "$took" "$cpu" "$name" "$rc")")
        log "-- $name: FAILED (exit $rc) after $took s ($cpu CPU-s)"
    fi
    return "$rc"
}

# ---------------------------------------------------------------- apt

_APT_UPDATED=0

# apt_install PKG...: install the Debian packages not yet installed, without
# recommends, retrying (mirrors hiccup, another apt may hold the lock).
apt_install() {
    local missing=() p status
    for p in "$@"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
        [ "$status" = installed ] || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        log "apt: already installed: $*"
        return 0
    fi
    command -v apt-get >/dev/null || die "apt-get not found; install by hand: ${missing[*]}"
    ((EUID == 0)) || die "apt_install needs root for: ${missing[*]}"
    local try apt=(apt-get -q -y -o DPkg::Lock::Timeout=600)
    for try in 1 2 3; do
        if ((_APT_UPDATED == 0)); then
            if "${apt[@]}" update >/dev/null; then
                _APT_UPDATED=1
            else
                log "apt-get update failed (try $try)"
            fi
        fi
        log "apt: installing ${missing[*]}"
        if "${apt[@]}" install --no-install-recommends "${missing[@]}" >/dev/null; then
            return 0
        fi
        log "apt-get install failed (try $try of 3)"
        _APT_UPDATED=0
        sleep $((try * 10))
    done
    die "apt-get install ${missing[*]} failed three times"
}

# ---------------------------------------------------------------- python

# lanes_venv PKG...: make sure the lanes' private virtualenv exists and has
# these requirements (pip is quiet and quick when they are already there).
lanes_venv() {
    local python="${PYTHON:-python3}"
    if [ ! -x "$LANES_VENV/bin/python" ]; then
        log "venv: creating $LANES_VENV"
        "$python" -m venv "$LANES_VENV"
    fi
    if (($#)); then
        local try
        for try in 1 2 3; do
            "$LANES_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" && return 0
            log "pip install $* failed (try $try of 3)"
            sleep $((try * 5))
        done
        die "pip install $* failed three times"
    fi
}

# ---------------------------------------------------------------- Rust

# The Debian toolchain: rustc, cargo, std's source (for -Zbuild-std) and
# clippy, Rust 1.96 from bookworm-security. rustup here has only the x86_64
# Linux std and cannot download more; this toolchain builds std for any target.
DEBIAN_RUST_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-clippy)

# debian_rust_env: put Debian's toolchain first for this shell. The host's
# rustup toolchain is left alone; the lanes use their own target dir so the
# two never share build outputs.
debian_rust_env() {
    if [ ! -x /usr/bin/rustc ] || [ ! -x /usr/bin/cargo ]; then
        die "Debian's rustc/cargo missing (apt_install ${DEBIAN_RUST_PACKAGES[*]})"
    fi
    export PATH="/usr/bin:$PATH"
    export RUSTC=/usr/bin/rustc
    export CARGO=/usr/bin/cargo
    # -Zbuild-std is unstable; this is Debian's stable compiler, so allow it.
    export RUSTC_BOOTSTRAP=1
    # rustup's proxies read this; make sure none of them is picked up.
    unset RUSTUP_TOOLCHAIN
    # Not the checkout's target/: the host build keeps its own, and CI (a
    # fresh clone each run) finds the std builds of its previous runs here.
    export CARGO_TARGET_DIR="${LANES_TARGET_DIR:-$LANES_CACHE/target}"
    # Every clone adds its own copies of the workspace crates there; start
    # over (one cold run) rather than let it grow without bound.
    local max_kb=$((${LANES_TARGET_MAX_GB:-10} * 1024 * 1024)) kb
    if [ -d "$CARGO_TARGET_DIR" ]; then
        kb="$(du -sk "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1)"
        if ((${kb:-0} > max_kb)); then
            log "lanes: $CARGO_TARGET_DIR is over ${LANES_TARGET_MAX_GB:-10} GB; emptying it"
            rm -rf "$CARGO_TARGET_DIR"
        fi
    fi
    # Line tables are enough for a backtrace and much cheaper than full
    # debuginfo for the copies of std the lanes build. The same in every lane,
    # so that cross.sh and windows.sh share the Windows std.
    export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
    export CARGO_PROFILE_TEST_DEBUG="${CARGO_PROFILE_TEST_DEBUG:-line-tables-only}"
}
