#!/bin/sh
# Multi-host payload for nfs.sh --hosts N (POSIX sh, runs in the guest).
# Every host runs a storm of its own workers on the same lock folder
# ($NETFS_MOUNT/multi/lock, each host through its own mount) with the
# detectors shared in $NETFS_SHARED/arena, so an overlap between two hosts is
# seen. Host 0 kills the last host whole (its PID namespace) at
# NETFS_KILL_HOST_AT seconds into the storm: every process of that host dies
# at once, with its bids left behind, as when a machine loses power.
#
#   nfs.sh --variant v40 --hosts 3 -- sh scripts/lanes/netfs/multihost.sh
#
# Environment: NETFS_STORM_BIN, NETFS_STORM_SECONDS (30), NETFS_KILL_HOST_AT
# (10; "none": no host is killed), NETFS_WAKE_LIMIT_MS (5000),
# NETFS_STORM_ARGS; and the NETFS_HOST* variables nfs.sh sets.
set -eu
storm=${NETFS_STORM_BIN:-lockfolder-storm}
seconds=${NETFS_STORM_SECONDS:-30}
kill_at=${NETFS_KILL_HOST_AT:-10}
victim=$((NETFS_HOSTS - 1))
mkdir -p "$NETFS_SHARED/arena"
echo "host $NETFS_HOST of $NETFS_HOSTS ($(hostname)), mount $NETFS_MOUNT"
if [ "$NETFS_HOST" = 0 ] && [ "$kill_at" != none ]; then
    (
        sleep "$kill_at"
        echo "host 0: killing host $victim at ${kill_at}s"
        touch "$NETFS_CTL/kill.$victim"
    ) &
fi
# shellcheck disable=SC2086 # NETFS_STORM_ARGS is a list of words
"$storm" storm --workers 2 --seconds "$seconds" --shared "$NETFS_SHARED/arena" \
    --dirs "$NETFS_MOUNT/multi/lock" --probe-dir /tmp --quiet-secs 5 \
    --wake-limit-ms "${NETFS_WAKE_LIMIT_MS:-5000}" --settle-secs 5 ${NETFS_STORM_ARGS:-}
