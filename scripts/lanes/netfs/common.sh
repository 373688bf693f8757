# shellcheck shell=bash
# Shared helpers of the network-filesystem beds (scripts/lanes/netfs/*.sh),
# sourced after the bed sets NF_BED. What they give:
#
#   nf_apt PKG...           install what is missing (3 tries, services kept off)
#   nf_begin NAME / nf_end  time a step; every step's time is printed at exit
#   nf_defer CMD            run CMD at exit, last deferred first, even on failure
#   nf_storm_bin            build lockfolder-storm, print its path
#   nf_payload M1 M2        run the payload (default payload.sh) on two mounts
#
# Exit status of a bed: the payload's status; 125 if the bed itself failed
# before or while starting the payload (so a broken bed is never mistaken for
# a lock failure).

set -euo pipefail

NF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NF_REPO=$(cd "$NF_DIR/../../.." && pwd)
NF_T0=$(date +%s.%N)
NF_STEP=""
NF_STEP_T0=""
NF_TIMES=()
NF_DEFERRED=()
NF_STATUS=125

nf_say() { printf 'netfs-%s: %s\n' "$NF_BED" "$*" >&2; }
nf_die() {
    nf_say "error: $*"
    exit 125
}
nf_secs() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

nf_begin() {
    NF_STEP=$1
    NF_STEP_T0=$(date +%s.%N)
    nf_say "step $NF_STEP ..."
}

nf_end() {
    local s
    s=$(nf_secs "$NF_STEP_T0")
    NF_TIMES+=("$NF_STEP ${s}s")
    nf_say "step $NF_STEP done in ${s}s"
    NF_STEP=""
}

nf_defer() { NF_DEFERRED+=("$1"); }

nf_teardown() {
    local rc=$? i t
    trap - EXIT INT TERM
    set +e
    if [ -n "$NF_STEP" ]; then
        NF_TIMES+=("$NF_STEP $(nf_secs "$NF_STEP_T0")s (failed, rc=$rc)")
    fi
    # A failure before the payload's status was known is the bed's own.
    if [ "$NF_STATUS" = 125 ] && [ "$rc" != 0 ]; then rc=125; fi
    [ "$NF_STATUS" != 125 ] && rc=$NF_STATUS
    t=$(date +%s.%N)
    nf_say "step teardown ..."
    for ((i = ${#NF_DEFERRED[@]} - 1; i >= 0; i--)); do
        eval "${NF_DEFERRED[i]}" >/dev/null 2>&1
    done
    NF_TIMES+=("teardown $(nf_secs "$t")s")
    NF_TIMES+=("total $(nf_secs "$NF_T0")s")
    {
        echo "netfs-$NF_BED: times: $(printf '%s; ' "${NF_TIMES[@]}")"
        echo "netfs-$NF_BED: exit status $rc"
    } >&2
    exit "$rc"
}
trap nf_teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Installs the Debian packages that are not installed yet. Daemons must not
# be started by the packages' scripts (the beds start their own, by hand):
# a policy-rc.d that says no is put in place for the install if there is none.
nf_apt() {
    local missing=() p try log policy=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || nf_die "need root to install ${missing[*]}"
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy=/usr/sbin/policy-rc.d
    fi
    log=$(mktemp)
    nf_say "installing ${missing[*]}"
    for try in 1 2 3; do
        if apt-get update -q >"$log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                "${missing[@]}" >>"$log" 2>&1; then
            rm -f "$log" $policy
            return 0
        fi
        nf_say "apt-get failed (try $try of 3):"
        tail -n 5 "$log" >&2
        sleep $((try * 10))
    done
    rm -f "$log" $policy
    nf_die "could not install ${missing[*]}"
}

# The storm binary: $LOCKFOLDER_STORM if set, else built here (profile
# $NETFS_PROFILE, default dev: CI's test build already made it).
nf_storm_bin() {
    if [ -n "${LOCKFOLDER_STORM:-}" ]; then
        [ -x "$LOCKFOLDER_STORM" ] || nf_die "LOCKFOLDER_STORM=$LOCKFOLDER_STORM is not executable"
        echo "$LOCKFOLDER_STORM"
        return
    fi
    local profile=${NETFS_PROFILE:-dev} sub target
    sub=$profile
    [ "$profile" = dev ] && sub=debug
    target=${CARGO_TARGET_DIR:-$NF_REPO/target}
    (cd "$NF_REPO" && cargo build --locked --quiet --profile "$profile" \
        -p lockfolder-chaos --bin lockfolder-storm) >&2 ||
        nf_die "cargo build of lockfolder-storm failed"
    echo "$target/$sub/lockfolder-storm"
}

# The payload command, as an array: the bed's arguments after `--`, or the
# default payload (payload.sh: freshness probe, then a storm).
nf_payload() {
    local rc=0
    if [ ${#NF_PAYLOAD_CMD[@]} -gt 0 ]; then
        "${NF_PAYLOAD_CMD[@]}" "$@" || rc=$?
    else
        NETFS_STORM_BIN=$NF_STORM sh "$NF_DIR/payload.sh" "$@" || rc=$?
    fi
    return $rc
}

# Parses the bed's own options into NF_OPT_* and the payload command
# (everything after `--`) into NF_PAYLOAD_CMD.
NF_PAYLOAD_CMD=()
nf_split_args() {
    NF_ARGS=()
    while [ $# -gt 0 ]; do
        if [ "$1" = -- ]; then
            shift
            NF_PAYLOAD_CMD=("$@")
            return
        fi
        NF_ARGS+=("$1")
        shift
    done
}
