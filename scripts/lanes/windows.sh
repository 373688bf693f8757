#!/usr/bin/env bash
# Windows lane: build the test executables for x86_64-pc-windows-gnu and run
# them under wine; their exit codes decide.
#
#   scripts/lanes/windows.sh                                   # the default below
#   scripts/lanes/windows.sh -p lockfolder -p lockfolder-cli   # these crates
#   scripts/lanes/windows.sh -p lockfolder -- --test-threads 2 # args for the tests
#
# Installs Debian's Rust 1.96 (std for the target comes from -Zbuild-std),
# mingw-w64 and wine 8; makes a wine prefix in the lanes' cache (reused);
# gives it the ProcessPrng stand-in that Rust executables need under wine 8
# (wine/bcryptprimitives.c); checks that exit codes come through wine; then
# `cargo test` with wine as the target's runner.
#
# The default: the core (its unit, multi-process and doc tests),
# lockfolder-model without its two biggest state spaces (80 CPU-s; the main
# suite runs them natively), and lockfolder-cli (tests/cli/windows.rs).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$LANES_DIR/wine/env.sh"

TARGET="$WINDOWS_TARGET"
DEFAULT_CRATES=(lockfolder lockfolder-model lockfolder-cli)
DEFAULT_TEST_ARGS=(--skip three_of_ours)
# A hung test under wine must not hang CI.
TEST_TIMEOUT="${LANES_WINDOWS_TIMEOUT:-900}"

crates=()
test_args=()
while (($#)); do
    case "$1" in
    -p)
        [ $# -ge 2 ] || die "-p needs a crate"
        crates+=("$2")
        shift 2
        ;;
    -p*)
        crates+=("${1#-p}")
        shift
        ;;
    --)
        shift
        test_args=("$@")
        break
        ;;
    -h | --help)
        sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument $1 (crates go after -p, test arguments after --)" ;;
    esac
done
if ((${#crates[@]} == 0)); then
    crates=("${DEFAULT_CRATES[@]}")
    ((${#test_args[@]})) || test_args=("${DEFAULT_TEST_ARGS[@]}")
fi

lane_begin windows

step "install: Debian Rust, mingw-w64, wine" apt_install "${DEBIAN_RUST_PACKAGES[@]}" "${WINE_PACKAGES[@]}"
step "wine prefix" wine_prefix
on_exit wine_wait
step "wine self-test" wine_self_test

windows_cargo_env

pkgs=()
for c in "${crates[@]}"; do pkgs+=(-p "$c"); done
# shellcheck disable=SC2054 # -Zbuild-std=std,panic_abort is one argument
cargo_test=(cargo test -Zbuild-std=std,panic_abort --target "$TARGET" --locked "${pkgs[@]}")

step "build tests (${crates[*]})" "${cargo_test[@]}" --no-run
# stdin from /dev/null: nothing under wine should wait for a console.
step "run tests under wine (${crates[*]})" \
    timeout --kill-after=30 "$TEST_TIMEOUT" "${cargo_test[@]}" -- "${test_args[@]}" </dev/null
