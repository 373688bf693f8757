#!/usr/bin/env bash
# Cross-target lane: clippy with warnings denied, then link the CLI and the
# Python extension, for every target the project must build on.
#
#   scripts/lanes/cross.sh                      # every target in the table below
#   scripts/lanes/cross.sh x86_64-apple-darwin  # only these targets
#   scripts/lanes/cross.sh --survey [TARGET...] # try every check on every target,
#                                               # print a pass/fail matrix, never fail
#
# rustup here has only the x86_64 Linux std, so the lane uses Debian's Rust
# 1.96 (rustc-web, cargo-web, rust-web-src, rust-web-clippy from
# bookworm-security) and builds std for each target with -Zbuild-std.
# Linking: zig (cargo-zigbuild + ziglang from PyPI, in the lanes' venv) for
# macOS, FreeBSD and the other Linux targets; mingw-w64 for Windows.
# Outputs go to the lanes' cache (LANES_TARGET_DIR, default
# ~/.cache/lockfolder-lanes/target), apart from the host build; CI, a fresh
# clone each run, finds the std builds of its previous runs there.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ------------------------------------------------------------------ the table
#
# What each target must pass today. Check kinds:
#   clippy:CRATE      cargo clippy -p CRATE (lib and bins) -- -D warnings
#   clippy-all:CRATE  the same with --all-targets (tests, benches, examples)
#   bin:CRATE         build and link CRATE's binaries
#   cdylib:CRATE      build and link CRATE's cdylib (the Python extension)
#   smoke:lockfolder-cli  run the linked CLI here (only for targets this
#                     x86_64 Linux host can execute): --version, run, status
# When a port lands, add its checks here (`--survey` shows what passes).
declare -A CHECKS=(
    # Every target: all four crates clippy-clean with their tests, the CLI and
    # the Python extension linked (`--survey`, 2026-12-02). Only the musl CLI
    # can run here (smoke); Windows runs its tests under wine (windows.sh).
    [x86_64-apple-darwin]="clippy-all:lockfolder clippy-all:lockfolder-cli clippy-all:lockfolder-py clippy-all:lockfolder-model bin:lockfolder-cli cdylib:lockfolder-py"
    [aarch64-apple-darwin]="clippy-all:lockfolder clippy-all:lockfolder-cli clippy-all:lockfolder-py clippy-all:lockfolder-model bin:lockfolder-cli cdylib:lockfolder-py"
    [x86_64-unknown-freebsd]="clippy-all:lockfolder clippy-all:lockfolder-cli clippy-all:lockfolder-py clippy-all:lockfolder-model bin:lockfolder-cli cdylib:lockfolder-py"
    [aarch64-unknown-linux-gnu]="clippy-all:lockfolder clippy-all:lockfolder-cli clippy-all:lockfolder-py clippy-all:lockfolder-model bin:lockfolder-cli cdylib:lockfolder-py"
    [x86_64-unknown-linux-musl]="clippy-all:lockfolder clippy-all:lockfolder-cli clippy-all:lockfolder-py clippy-all:lockfolder-model bin:lockfolder-cli smoke:lockfolder-cli cdylib:lockfolder-py"
    # The Python extension through the crate's generate-import-lib feature.
    [x86_64-pc-windows-gnu]="clippy-all:lockfolder clippy-all:lockfolder-cli clippy-all:lockfolder-py clippy-all:lockfolder-model bin:lockfolder-cli cdylib:lockfolder-py"
)
# Every check --survey tries.
SURVEY_CHECKS="clippy-all:lockfolder clippy:lockfolder clippy-all:lockfolder-cli clippy:lockfolder-cli clippy-all:lockfolder-py clippy:lockfolder-py clippy-all:lockfolder-model bin:lockfolder-cli cdylib:lockfolder-py"
DEFAULT_TARGETS=(x86_64-apple-darwin aarch64-apple-darwin x86_64-unknown-freebsd
    x86_64-pc-windows-gnu aarch64-unknown-linux-gnu x86_64-unknown-linux-musl)

# How each target links: zig (through cargo-zigbuild) or mingw.
declare -A LINKER=(
    [x86_64-apple-darwin]=zig
    [aarch64-apple-darwin]=zig
    [x86_64-unknown-freebsd]=zig
    [aarch64-unknown-linux-gnu]=zig
    [x86_64-unknown-linux-musl]=zig
    [x86_64-pc-windows-gnu]=mingw
)
# RUSTFLAGS for every build of a target. Debian's rustc ships no musl CRT
# objects ("self-contained" linking), so let zig supply them.
declare -A TARGET_RUSTFLAGS=(
    [x86_64-unknown-linux-musl]="-C link-self-contained=no"
)
# A cdylib on musl needs a dynamically linked C runtime (as maturin builds
# musllinux wheels). That changes std, so it gets its own target dir.
declare -A CDYLIB_RUSTFLAGS=(
    [x86_64-unknown-linux-musl]="-C target-feature=-crt-static"
)
# Python extensions on macOS leave Python's symbols to the loader (what
# maturin passes too).
declare -A CDYLIB_LINK_ARGS=(
    [x86_64-apple-darwin]="-C link-arg=-undefined -C link-arg=dynamic_lookup"
    [aarch64-apple-darwin]="-C link-arg=-undefined -C link-arg=dynamic_lookup"
)

# shellcheck disable=SC2054 # one argument, with a comma in it
BUILD_STD=(-Zbuild-std=std,panic_abort)

# ------------------------------------------------------------------ arguments

survey=0
targets=()
for arg in "$@"; do
    case "$arg" in
    --survey) survey=1 ;;
    -h | --help)
        sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    -*) die "unknown option $arg" ;;
    *)
        [ -n "${LINKER[$arg]:-}" ] || die "unknown target $arg (known: ${DEFAULT_TARGETS[*]})"
        targets+=("$arg")
        ;;
    esac
done
((${#targets[@]})) || targets=("${DEFAULT_TARGETS[@]}")

lane_begin cross

# ------------------------------------------------------------------ installs

install_tools() {
    local need_zig=0 need_mingw=0 t
    for t in "${targets[@]}"; do
        [ "${LINKER[$t]}" = zig ] && need_zig=1
        [ "${LINKER[$t]}" = mingw ] && need_mingw=1
    done
    local pkgs=("${DEBIAN_RUST_PACKAGES[@]}")
    # mingw also brings x86_64-w64-mingw32-dlltool, which windows-sys needs
    # even to type-check.
    ((need_mingw)) && pkgs+=(gcc-mingw-w64-x86-64)
    apt_install "${pkgs[@]}"
    if ((need_zig)); then
        lanes_venv "cargo-zigbuild==0.24.1" "ziglang==0.17.1"
    fi
}
step "install tools" install_tools

debian_rust_env
export PYO3_BUILD_EXTENSION_MODULE=1 # as maturin: never link libpython on Unix
if [ -x "$LANES_VENV/bin/cargo-zigbuild" ]; then
    export PATH="$PATH:$LANES_VENV/bin"
    # cargo-zigbuild would look for ziglang with the first python3 on PATH,
    # which is Debian's here; point it at the venv's zig.
    CARGO_ZIGBUILD_ZIG_PATH="$(find "$LANES_VENV"/lib/python3*/site-packages/ziglang -maxdepth 1 -name zig -type f | head -n1)"
    export CARGO_ZIGBUILD_ZIG_PATH
fi
log "rustc: $(rustc -V); cargo: $(cargo -V); clippy: $(cargo clippy -V)"
log "target dir: $CARGO_TARGET_DIR"

# ------------------------------------------------------------------ checks

# target_env TARGET: environment for building TARGET (prints NAME=VALUE
# lines); EXTRA_RUSTFLAGS, if set, adds to the target's RUSTFLAGS.
target_env() {
    local t="$1" up
    up="$(printf '%s' "$t" | tr 'a-z-' 'A-Z_')"
    if [ "${LINKER[$t]}" = mingw ]; then
        printf '%s\n' "CARGO_TARGET_${up}_LINKER=x86_64-w64-mingw32-gcc" \
            "CC_${t//-/_}=x86_64-w64-mingw32-gcc" "AR_${t//-/_}=x86_64-w64-mingw32-ar"
    fi
    local flags="${TARGET_RUSTFLAGS[$t]:-} ${EXTRA_RUSTFLAGS:-}"
    if [ -n "${flags// /}" ]; then
        printf '%s\n' "CARGO_TARGET_${up}_RUSTFLAGS=$flags"
    fi
}

# tcargo TARGET SUBCOMMAND ARGS...: cargo for TARGET, through cargo-zigbuild
# for zig targets (so build scripts compile their C with zig too).
tcargo() {
    local t="$1" sub="$2"
    shift 2
    local envs=() line
    while IFS= read -r line; do [ -n "$line" ] && envs+=("$line"); done < <(target_env "$t")
    local cmd=(cargo "$sub")
    if [ "${LINKER[$t]}" = zig ]; then
        [ -n "${CARGO_ZIGBUILD_ZIG_PATH:-}" ] || die "zig not found in $LANES_VENV"
        case "$sub" in
        build) cmd=(cargo-zigbuild zigbuild) ;;
        *) cmd=(cargo-zigbuild "$sub") ;;
        esac
    fi
    env "${envs[@]}" "${cmd[@]}" "${BUILD_STD[@]}" --target "$t" --locked "$@"
}

# has_feature CRATE FEATURE: does CRATE's Cargo.toml declare FEATURE?
has_feature() {
    sed -n '/^\[features\]/,/^\[/p' "$REPO_ROOT/crates/$1/Cargo.toml" | grep -q "^$2 *="
}

# artifact FILE: show what was linked.
artifact() {
    if [ ! -f "$1" ]; then
        log "expected artifact missing: $1"
        return 1
    fi
    log "   artifact: ${1#"$REPO_ROOT"/} ($(du -h "$1" | cut -f1)): $(file -b "$1" | cut -c1-110)"
}

# run_check TARGET CHECK. Runs inside `step ... ||`, where bash ignores
# set -e, so every command returns explicitly on failure.
run_check() {
    local t="$1" kind="${2%%:*}" crate="${2#*:}"
    case "$kind" in
    clippy) tcargo "$t" clippy -p "$crate" -- -D warnings ;;
    clippy-all) tcargo "$t" clippy -p "$crate" --all-targets -- -D warnings ;;
    bin)
        tcargo "$t" build -p "$crate" --bins || return
        local b bins
        bins="$(bin_names "$crate")" || return
        for b in $bins; do
            case "$t" in *windows*) b="$b.exe" ;; esac
            artifact "$CARGO_TARGET_DIR/$t/debug/$b" || return
        done
        ;;
    cdylib)
        local features=() lib
        lib="$(sed -n '/^\[lib\]/,/^\[/s/^name *= *"\(.*\)"/\1/p' "$REPO_ROOT/crates/$crate/Cargo.toml")"
        lib="${lib:-${crate//-/_}}"
        if [ "${LINKER[$t]}" = mingw ]; then
            # No Windows Python here: pyo3 must write python3.dll's import
            # library itself (pyo3's generate-import-lib, through a feature
            # of the crate so that Cargo.lock carries python3-dll-a).
            if ! has_feature "$crate" generate-import-lib; then
                log "$crate has no 'generate-import-lib' feature (= [\"pyo3/generate-import-lib\"]);"
                log "a Windows cdylib cannot link without it (see scripts/lanes/README.md)"
                return 1
            fi
            features=(--features generate-import-lib)
        fi
        local dir="$CARGO_TARGET_DIR" extra="${CDYLIB_RUSTFLAGS[$t]:-}"
        # Other RUSTFLAGS make another std: keep it apart from the usual one.
        [ -z "$extra" ] || dir="$CARGO_TARGET_DIR/cdylib-rustflags"
        # shellcheck disable=SC2086 # the link args are words
        CARGO_TARGET_DIR="$dir" EXTRA_RUSTFLAGS="$extra" \
            tcargo "$t" rustc -p "$crate" --lib "${features[@]}" -- ${CDYLIB_LINK_ARGS[$t]:-} || return
        case "$t" in
        *windows*) artifact "$dir/$t/debug/$lib.dll" ;;
        *apple*) artifact "$dir/$t/debug/lib$lib.dylib" ;;
        *) artifact "$dir/$t/debug/lib$lib.so" ;;
        esac
        ;;
    smoke)
        local bin="$CARGO_TARGET_DIR/$t/debug/lockfolder" dir rc=0
        [ "$crate" = lockfolder-cli ] || {
            log "smoke: only lockfolder-cli"
            return 1
        }
        [ -x "$bin" ] || {
            log "smoke: $bin not built (bin:lockfolder-cli first)"
            return 1
        }
        dir="$(mktemp -d)" || return
        # While the command runs, its bid is in the folder; after, it is free.
        # shellcheck disable=SC2016 # $1 is the inner shell's
        {
            "$bin" --version &&
                "$bin" run "$dir/lock" -- sh -c 'ls "$1" | grep -q "\.json$"' sh "$dir/lock" &&
                "$bin" status "$dir/lock"
        } || rc=$?
        rm -rf "$dir"
        ((rc == 0)) || log "smoke: the $t CLI failed here (exit $rc)"
        return "$rc"
        ;;
    *)
        log "unknown check kind $kind in $2"
        return 1
        ;;
    esac
}

# bin_names CRATE: the names of CRATE's binaries.
bin_names() {
    cargo metadata --no-deps --format-version 1 --locked |
        python3 -c 'import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == sys.argv[1]:
        print(" ".join(t["name"] for t in p["targets"] if "bin" in t["kind"]))' "$1"
}

# std_state TARGET: "cold" before std's first build for TARGET, else "warm".
std_state() {
    if compgen -G "$CARGO_TARGET_DIR/$1/debug/deps/libstd-*.rlib" >/dev/null; then
        echo warm
    else
        echo cold
    fi
}

declare -A RESULT=()
failures=0
for t in "${targets[@]}"; do
    if ((survey)); then checks="$SURVEY_CHECKS"; else checks="${CHECKS[$t]}"; fi
    state="$(std_state "$t")"
    tstart=$SECONDS
    for c in $checks; do
        if ((survey)); then
            logf="$CARGO_TARGET_DIR/survey/$t-${c/:/-}.log"
            mkdir -p "$CARGO_TARGET_DIR/survey"
            if step "$t $c" run_check "$t" "$c" >"$logf" 2>&1; then
                RESULT[$t $c]=pass
            else
                RESULT[$t $c]=FAIL
                log "   $t $c: FAIL; first errors (all of it in ${logf#"$REPO_ROOT"/}):"
                grep -E '^error' "$logf" | grep -v '^error: could not compile' | sort -u | head -n 8 | sed 's/^/     /' >&2 || true
            fi
        else
            step "$t $c" run_check "$t" "$c" || failures=$((failures + 1))
        fi
    done
    _LANE_STEPS+=("$(printf '%5d s  == target %s (std %s)' $((SECONDS - tstart)) "$t" "$state")")
    log "== target $t: $((SECONDS - tstart)) s (std was $state)"
done

if ((survey)); then
    log ""
    log "-- survey (pass / FAIL):"
    printf '%-28s' "" >&2
    for c in $SURVEY_CHECKS; do printf ' %s' "$c" >&2; done
    printf '\n' >&2
    for t in "${targets[@]}"; do
        printf '%-28s' "$t" >&2
        for c in $SURVEY_CHECKS; do printf " %-${#c}s" "${RESULT[$t $c]}" >&2; done
        printf '\n' >&2
    done
    exit 0
fi
((failures == 0)) || die "$failures check(s) failed"
