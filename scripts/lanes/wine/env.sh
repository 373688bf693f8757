# Wine helpers for the Windows lanes. Source after scripts/lanes/lib.sh.
#
#   wine_install          apt: wine 8 (64-bit only) and mingw-w64
#   wine_prefix           make $WINEPREFIX (cached, reused) ready for Rust exes
#   wine_self_test        prove that exit codes come through wine
#   windows_cargo_env     cargo builds for $WINDOWS_TARGET, run under wine
#
# Wine 8 (Debian bookworm) lacks bcryptprimitives.dll, from which every
# executable built by Rust >= 1.78 imports ProcessPrng: such an exe exits with
# code 53 before main and prints nothing. wine_prefix builds a stand-in DLL
# (wine/bcryptprimitives.c) and puts it into the prefix's system32.

WINE_DIR="$LANES_DIR/wine"
WINE_PACKAGES=(wine wine64 gcc-mingw-w64-x86-64)
export WINEPREFIX="${WINEPREFIX:-$LANES_CACHE/wine-prefix}"
export WINEDEBUG="${WINEDEBUG:--all}"
# No Mono or Gecko install prompts (there is no display, and no network for them).
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree=d;mshtml=d}"
WINE_BUILD="$LANES_CACHE/wine-build"

wine_install() {
    apt_install "${WINE_PACKAGES[@]}"
}

# The directory of wine's own 64-bit Windows DLLs.
_wine_builtin_dir() {
    local d
    for d in /usr/lib/x86_64-linux-gnu/wine/x86_64-windows /usr/lib/wine/x86_64-windows /usr/lib64/wine/x86_64-windows; do
        [ -d "$d" ] && {
            echo "$d"
            return 0
        }
    done
    return 1
}

# _wine_stub_dll: build the ProcessPrng stand-in (when its source changed).
_wine_stub_dll() {
    local src="$WINE_DIR/bcryptprimitives.c" def="$WINE_DIR/bcryptprimitives.def"
    local out="$WINE_BUILD/bcryptprimitives.dll"
    mkdir -p "$WINE_BUILD"
    if [ ! -f "$out" ] || [ "$src" -nt "$out" ] || [ "$def" -nt "$out" ]; then
        # No C runtime (nothing to initialise), no timestamp (same bytes each build).
        x86_64-w64-mingw32-gcc -shared -O2 -Wall -Wextra -Werror -nostartfiles -e DllMain \
            -Wl,--no-insert-timestamp -s -o "$out.tmp" "$src" "$def" -ladvapi32 || return
        mv "$out.tmp" "$out"
    fi
    echo "$out"
}

# _wine_probe_exe: a tiny C program that loads ProcessPrng the way Rust's std
# does and exits with the code it is given (to check exit codes come through).
_wine_probe_exe() {
    local out="$WINE_BUILD/probe.exe"
    mkdir -p "$WINE_BUILD"
    if [ ! -f "$out" ] || [ "$WINE_DIR/probe.c" -nt "$out" ]; then
        x86_64-w64-mingw32-gcc -O2 -Wall -Wextra -Werror -Wl,--no-insert-timestamp -s \
            -o "$out.tmp" "$WINE_DIR/probe.c" || return
        mv "$out.tmp" "$out"
    fi
    echo "$out"
}

# wine_prefix: create the prefix once (wineboot -i, ~10 s, 0.7 GB), then make
# sure it has a ProcessPrng. A prefix is reused as long as it exists.
wine_prefix() {
    if [ ! -f "$WINEPREFIX/system.reg" ]; then
        log "wine: creating prefix $WINEPREFIX"
        mkdir -p "$(dirname "$WINEPREFIX")"
        wineboot -i </dev/null >/dev/null 2>&1 || return
        # wineboot returns before the registry is written: wait for the server.
        wineserver -w || return
        [ -f "$WINEPREFIX/system.reg" ] || {
            log "wine: wineboot made no prefix in $WINEPREFIX"
            return 1
        }
    else
        log "wine: reusing prefix $WINEPREFIX"
    fi
    local builtin sys32="$WINEPREFIX/drive_c/windows/system32"
    builtin="$(_wine_builtin_dir)" || {
        log "wine: cannot find wine's x86_64-windows DLL directory"
        return 1
    }
    if [ -f "$builtin/bcryptprimitives.dll" ]; then
        # Wine 9 and later have their own (with ProcessPrng); leave it alone.
        log "wine: has its own bcryptprimitives.dll; no stand-in needed"
    else
        local dll
        dll="$(_wine_stub_dll)" || return
        # Wine has no builtin of this name, so a native DLL in system32 is
        # loaded as it is: no DLL override needed.
        cmp -s "$dll" "$sys32/bcryptprimitives.dll" || cp "$dll" "$sys32/bcryptprimitives.dll" || return
        log "wine: ProcessPrng stand-in installed in system32"
    fi
}

# wine_self_test: a lane that runs tests under wine is only worth something if
# a failing exe fails. Checks that ProcessPrng loads and that exit codes 0 and
# 3 come through.
wine_self_test() {
    local probe rc
    probe="$(_wine_probe_exe)" || return
    wine "$probe" 0 </dev/null || {
        rc=$?
        log "wine: probe could not load ProcessPrng (exit $rc; 53 means bcryptprimitives.dll is missing)"
        return 1
    }
    rc=0
    wine "$probe" 3 </dev/null || rc=$?
    if ((rc != 3)); then
        log "wine: probe asked to exit 3 exited $rc: exit codes do not come through"
        return 1
    fi
    log "wine: $(wine --version): ProcessPrng loads, exit codes come through"
}

# wine_wait: let this prefix's wine server end by itself (it does, 3 s after
# its last process); kill it only if something is still running after 30 s.
wine_wait() {
    timeout 30 wineserver -w 2>/dev/null || {
        log "wine: processes still running in $WINEPREFIX after 30 s; ending its wineserver"
        wineserver -k 2>/dev/null || true
    }
}

# ---------------------------------------------------------------- Rust for Windows

WINDOWS_TARGET=x86_64-pc-windows-gnu

# windows_cargo_env: cargo for $WINDOWS_TARGET as every Windows lane builds
# it (windows.sh, wine/mixed.sh), so they share one std and one set of
# dependencies in the lanes' target dir: Debian's Rust (debian_rust_env; the
# caller passes -Zbuild-std=std,panic_abort), mingw-w64 as linker and C
# compiler, wine as the runner of `cargo test`.
windows_cargo_env() {
    debian_rust_env
    local up
    up="$(printf '%s' "$WINDOWS_TARGET" | tr 'a-z-' 'A-Z_')"
    export "CARGO_TARGET_${up}_LINKER=x86_64-w64-mingw32-gcc"
    export "CC_${WINDOWS_TARGET//-/_}=x86_64-w64-mingw32-gcc"
    export "AR_${WINDOWS_TARGET//-/_}=x86_64-w64-mingw32-ar"
    export "CARGO_TARGET_${up}_RUNNER=wine"
    export PYO3_BUILD_EXTENSION_MODULE=1 # the same build-script inputs as cross.sh
}
