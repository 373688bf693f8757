#!/usr/bin/env bash
# Mixed Windows run under wine: our Rust contenders (crates/lockfolder's
# `contend` example, built for x86_64-pc-windows-gnu) and lockfolder 1.0.2
# processes (the Windows CPython of wine/python.sh, with psutil) on one folder,
# workers ended by TerminateProcess at random and restarted, a probe outside
# the lock that counts two holders at once (wine/mixed.py has the details).
#
#   scripts/lanes/wine/mixed.sh                   # self-test, then 90 s
#   scripts/lanes/wine/mixed.sh --seconds 120 --rust 4 --py 2 --seed 7
#
# Arguments go to `mixed.py run` (see its --help). First a 4 s run without
# the lock must show overlaps (the probe can fail); then the real run must
# show none, no wedge, and both kinds taking the lock. Exit 0 only then.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$LANES_DIR/wine/env.sh"
. "$LANES_DIR/wine/python.sh"

case "${1:-}" in
-h | --help)
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
# A hung run under wine must not hang CI.
RUN_TIMEOUT="${LANES_MIXED_TIMEOUT:-900}"

lane_begin windows-mixed

step "install: Debian Rust, mingw-w64, wine" apt_install "${DEBIAN_RUST_PACKAGES[@]}" "${WINE_PACKAGES[@]}"
step "wine prefix" wine_prefix
on_exit wine_wait
step "wine self-test" wine_self_test

windows_cargo_env
# shellcheck disable=SC2054 # -Zbuild-std=std,panic_abort is one argument
step "build the contend example for $WINDOWS_TARGET" \
    cargo build -Zbuild-std=std,panic_abort --target "$WINDOWS_TARGET" --locked -p lockfolder --example contend
exe="$CARGO_TARGET_DIR/$WINDOWS_TARGET/debug/examples/contend.exe"
[ -f "$exe" ] || die "no $exe after the build"

step "Windows CPython 3.13.2 (download, verify)" winpy_prepare
site="$(mktemp -d "${TMPDIR:-/tmp}/winpy-site.XXXXXX")"
on_exit rm -rf "$site"
step "site: psutil 7.2.2 (win_amd64 wheel), lockfolder 1.0.2" \
    winpy_site "$site" "psutil==7.2.2" "lockfolder==1.0.2"
winpy_paths "$site"

# winpy under a timeout (a function cannot be timeout's command).
winpy_timeout() {
    local secs="$1"
    shift
    { timeout --kill-after=30 "$secs" wine "$WINPY_HOME/python.exe" "$@" </dev/null 2> >(cat >&2) | cat; }
}

script="$(_winpath "$WINE_DIR")\\mixed.py"
winexe="$(_winpath "$(dirname "$exe")")\\contend.exe"
step "self-test: without the lock the probe must see overlaps" \
    winpy_timeout 120 "$script" run --exe "$winexe" --rust 2 --py 2 --seconds 4 \
    --kill-max 0 --no-lock
step "mixed run: Rust + lockfolder 1.0.2, TerminateProcess at random" \
    winpy_timeout "$RUN_TIMEOUT" "$script" run --exe "$winexe" "$@"
