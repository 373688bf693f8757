#!/bin/sh
# Refusal checks, a payload for a bed whose filesystem the core refuses by
# default (sshfs.sh --variant rclone or mystery, nfs.sh --variant v3-nocto):
#
#   refusal.sh FSNAME MOUNT1 MOUNT2
#
# FSNAME is the filesystem's name as the core gives it (fuse.rclone, nfs).
# Needs NETFS_CLI (the lockfolder binary) and NETFS_STORM_BIN. Checks, each
# printed as "refusal: ok|FAIL ...":
#
#  1. `lockfolder status DIR` names FSNAME and says it is refused;
#  2. `lockfolder run -n DIR -- CMD` exits non-zero without running CMD, and
#     its message names FSNAME and the opt-in LOCKFOLDER_ALLOW_FS=FSNAME;
#  3. `lockfolder-storm storm` on the two mounts exits 4 (refused, nothing
#     run) with the same typed error;
#  4. with LOCKFOLDER_ALLOW_FS=FSNAME, `lockfolder status` says "opted in",
#     and `lockfolder run -n DIR -- CMD` either runs CMD and exits 0 or fails
#     closed: exits non-zero without running CMD;
#  5. with the opt-in, a short storm (NETFS_REFUSAL_STORM_SECONDS, 10)
#     through MOUNT1 (rclone's directory cache hides a folder made through
#     one mount from the other for minutes, so two mounts cannot even start)
#     sees no overlap and no lost update: it passes, or it fails closed (no
#     acquisition at all).
#
# One line "refusal-summary: ..." sums it up. Exit status 0 only if every
# check passed.
set -u
fs=$1
m1=$2
m2=$3
cli=${NETFS_CLI:?NETFS_CLI names the lockfolder binary}
storm=${NETFS_STORM_BIN:-lockfolder-storm}
local=${NETFS_LOCAL:-/tmp}
run=refusal-$(hostname)-$$-$(date +%s)
dir=$m1/$run/lock
out=$(mktemp)
fails=0
ok() { echo "refusal: ok   $*"; }
bad() {
    echo "refusal: FAIL $*"
    fails=$((fails + 1))
}
show() { sed 's/^/    | /' "$out"; }
unset LOCKFOLDER_ALLOW_FS

mkdir -p "$dir" || {
    echo "refusal: FAIL cannot make $dir"
    exit 1
}

# 1. status names the filesystem and the refusal.
"$cli" status "$dir" >"$out" 2>&1
s=$?
show
if grep -q "filesystem $fs .*REFUSED" "$out"; then
    ok "status (exit $s) names $fs and says refused"
else
    bad "status (exit $s) does not name $fs as refused"
fi

# 2. run -n refuses without running the command.
rm -f "$local/ran.$$"
"$cli" run -n "$dir" -- touch "$local/ran.$$" >"$out" 2>&1
s=$?
show
if [ "$s" = 0 ] || [ -e "$local/ran.$$" ]; then
    bad "run -n on $fs: exit $s, the command ran: not refused"
elif grep -q "refusing to lock on $fs" "$out" && grep -q "LOCKFOLDER_ALLOW_FS=$fs" "$out"; then
    ok "run -n refused (exit $s), naming $fs and LOCKFOLDER_ALLOW_FS=$fs; the command did not run"
else
    bad "run -n failed (exit $s) without the refusal message naming $fs and the opt-in"
fi
refused_exit=$s

# 3. the storm refuses before starting any worker.
"$storm" storm --workers 2 --seconds 5 --dirs "$m1/$run/storm1,$m2/$run/storm1" \
    --probe-dir "$local" >"$out" 2>&1
s=$?
show
if [ "$s" = 4 ] && grep -q "REFUSED .*refusing to lock on $fs" "$out"; then
    ok "storm refused (exit 4) before running anything"
else
    bad "storm on $fs: exit $s, expected 4 (refused)"
fi

# 4. the opt-in: it runs, or fails closed.
export LOCKFOLDER_ALLOW_FS="$fs"
"$cli" status "$dir" >"$out" 2>&1
s=$?
show
if grep -q "filesystem $fs .*accepted by opt-in" "$out"; then
    ok "status with the opt-in (exit $s) says accepted by opt-in"
else
    bad "status with LOCKFOLDER_ALLOW_FS=$fs (exit $s) does not say accepted by opt-in"
fi
rm -f "$local/ran.$$"
"$cli" run -n "$dir" -- touch "$local/ran.$$" >"$out" 2>&1
s=$?
show
if [ "$s" = 0 ] && [ -e "$local/ran.$$" ]; then
    optin=ran
    ok "run -n with the opt-in: ran the command, exit 0"
elif [ "$s" != 0 ] && [ ! -e "$local/ran.$$" ]; then
    if grep -q "refusing to lock" "$out"; then
        optin=still-refused
        bad "run -n with the opt-in is still refused (exit $s)"
    else
        optin=failed-closed
        ok "run -n with the opt-in failed closed (exit $s), the command did not run"
    fi
else
    optin=broken
    bad "run -n with the opt-in: exit $s, but the command ran: $( [ -e "$local/ran.$$" ] && echo yes || echo no)"
fi
rm -f "$local/ran.$$"

# 5. a short storm with the opt-in: no overlap; passes or fails closed.
"$storm" storm --workers 2 --seconds "${NETFS_REFUSAL_STORM_SECONDS:-10}" \
    --dirs "$m1/$run/storm2" --probe-dir "$local" \
    --kill-every-ms "${NETFS_KILL_EVERY_MS:-50}" --quiet-secs 2 \
    --wake-limit-ms "${NETFS_WAKE_LIMIT_MS:-5000}" --settle-secs 5 >"$out" 2>&1
s=$?
grep -v '^lockfolder-storm: worker ' "$out" | sed 's/^/    | /' | head -n 20
line=$(grep '^lockfolder-storm: \(PASS\|FAIL\)' "$out" || true)
storm_result=none
case " $line " in
*" PASS "*" overlaps=0 lost_updates=0 "*)
    storm_result=pass
    ok "storm with the opt-in passed (exit $s)"
    ;;
*" FAIL "*" acquisitions=0 "*" overlaps=0 lost_updates=0 "*)
    storm_result=failed-closed
    ok "storm with the opt-in failed closed: no acquisition, no overlap (exit $s)"
    ;;
*)
    storm_result=failed
    bad "storm with the opt-in: exit $s, neither passed nor failed closed"
    ;;
esac
rm -f "$out"
rm -rf "${m1:?}/$run" 2>/dev/null || true
echo "refusal-summary: fs=$fs refused_exit=$refused_exit opt_in_run=$optin opt_in_storm=$storm_result failures=$fails"
[ "$fails" = 0 ]
