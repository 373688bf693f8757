#!/bin/sh
# The default payload of the network-filesystem beds (POSIX sh: it also runs
# under busybox inside the NFS guest).
#
#   payload.sh MOUNT1 MOUNT2
#
# MOUNT1 and MOUNT2 are two mounts of one export ("two clients"). A new
# folder run-<host>-<pid>-<time> is made through MOUNT1, then:
#   freshness  lockfolder-storm freshness on <run>/fresh through both mounts
#   storm      lockfolder-storm storm, 4 workers alternating between
#              MOUNT1/<run>/lock and MOUNT2/<run>/lock, the probes (marker,
#              counter, logs) on the local folder $NETFS_LOCAL
# Environment (all optional):
#   NETFS_PAYLOAD         which parts, comma-separated (freshness,storm)
#   NETFS_STORM_BIN       the lockfolder-storm binary (lockfolder-storm)
#   NETFS_LOCAL           local folder for the storm's probes (/tmp)
#   NETFS_STORM_SECONDS   killing time of the storm (60)
#   NETFS_KILL_EVERY_MS   mean time between random kills (50; nfs.sh: 400,
#                         since starting a worker in the TCG guest is slow)
#   NETFS_STORM_ARGS      more storm options (e.g. "--bid-kill-percent 5")
#   NETFS_WAKE_LIMIT_MS   wedge bound while the killer is quiet (5000)
#   NETFS_FRESH_TRIALS    trials per look (100)
#   NETFS_FRESH_SECONDS   budget of the freshness probe (60)
#   NETFS_FRESH_WAIT      how long a missed entry is waited for, s (30)
#   NETFS_EXPECT_REFUSAL  1: the storm must fail closed (no acquisition, no
#                         overlap) and the payload passes only then
# Exit status: the first failing part's status, else 0.
set -eu
m1=$1
m2=$2
storm=${NETFS_STORM_BIN:-lockfolder-storm}
parts=${NETFS_PAYLOAD:-freshness,storm}
run=run-$(hostname)-$$-$(date +%s)
rc=0

mkdir "$m1/$run"

case ",$parts," in *,freshness,*)
    echo "== freshness: $m1/$run/fresh vs $m2/$run/fresh"
    t0=$(date +%s)
    "$storm" freshness --a "$m1/$run/fresh" --b "$m2/$run/fresh" \
        --trials "${NETFS_FRESH_TRIALS:-100}" --seconds "${NETFS_FRESH_SECONDS:-60}" \
        --wait-secs "${NETFS_FRESH_WAIT:-30}" || rc=$?
    echo "== freshness: $(($(date +%s) - t0)) s, status $rc"
    ;;
esac

case ",$parts," in *,storm,*)
    echo "== storm: $m1/$run/lock,$m2/$run/lock"
    t0=$(date +%s)
    out=$(mktemp)
    s=0
    # shellcheck disable=SC2086 # NETFS_STORM_ARGS is a list of words
    "$storm" storm --workers 4 --seconds "${NETFS_STORM_SECONDS:-60}" \
        --dirs "$m1/$run/lock,$m2/$run/lock" --probe-dir "${NETFS_LOCAL:-/tmp}" \
        --kill-every-ms "${NETFS_KILL_EVERY_MS:-50}" --quiet-secs 5 --wake-limit-ms "${NETFS_WAKE_LIMIT_MS:-5000}" --settle-secs 30 \
        ${NETFS_STORM_ARGS:-} >"$out" || s=$?
    cat "$out"
    if [ "${NETFS_EXPECT_REFUSAL:-0}" = 1 ]; then
        line=$(grep '^lockfolder-storm: ' "$out" || true)
        case " $line " in
        *" acquisitions=0 "*" overlaps=0 "*)
            if [ "$s" != 0 ]; then
                echo "== storm failed closed as expected (status $s, no acquisition, no overlap)"
                s=0
            else
                echo "== storm passed where it was expected to fail closed"
                s=1
            fi
            ;;
        *)
            echo "== storm did not fail closed (status $s)"
            [ "$s" = 0 ] && s=1
            ;;
        esac
    fi
    rm -f "$out"
    echo "== storm: $(($(date +%s) - t0)) s, status $s"
    [ "$rc" = 0 ] && rc=$s
    ;;
esac

rm -rf "${m1:?}/$run" 2>/dev/null || true
exit "$rc"
