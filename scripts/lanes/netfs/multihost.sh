#!/bin/sh
# Multi-host payload for nfs.sh --hosts N (POSIX sh, runs in the guest).
# Every host runs a storm of its own workers on the same lock folder
# ($NETFS_MOUNT/multi/lock, each host through its own mount) with the
# detectors shared in $NETFS_SHARED/arena, so an overlap between two hosts is
# seen, and every bid under a lease (LOCKFOLDER_STORM_LEASE_MS, default
# 2000): no host can judge another's processes (PID namespaces), so a dead
# host's bid goes only once its lease has lapsed.
#
# Each host's own killer storms its workers for NETFS_MULTIHOST_SECONDS (20),
# then goes quiet. The last host is the victim: NETFS_KILL_HOST_AT seconds
# into its storm (default: 2 s after the killers stopped, so the takeover is
# measured on its own, not mixed with the churn of random kills), the next of
# its workers to hold the lock asks the guest to SIGKILL the host's
# PID-namespace init (every process of the host dies at once, as when a
# machine loses power) and holds the lock until then. The other hosts measure
# the takeover (victim.rs in crates/lockfolder-chaos): it must come after the
# victim's lease lapsed by the server's clock (last renewal + 1.05 x lease)
# and within 1.05 x lease + NETFS_TAKEOVER_SLACK_MS (3000: the re-check
# period, the hand-over time of a dead host's queue marker, slow listings).
#
#   nfs.sh --variant v40 --hosts 3          # this payload is the default
#   multihost.sh --audit                    # run by the guest after the hosts
#
# --audit: in the guest's initial PID namespace, which sees every process,
# once every host has ended: only side files of the killed host may be left
# in the lock folder (never a bid: its lease must have let the survivors
# remove it), and clean() must leave it empty.
#
# Environment: NETFS_STORM_BIN, NETFS_MULTIHOST_SECONDS (20),
# NETFS_KILL_HOST_AT ("none": no host is killed), NETFS_QUIET_SECS (the
# quiet phase: until 12 s after the host kill), NETFS_WAKE_LIMIT_MS (8000: the waiters
# are served in order, and after a host died holding a queue marker each
# newcomer defers to it for the hand-over time, 1 s, so the last of four
# survivors may wait 4 s and more in the TCG guest), NETFS_TAKEOVER_SLACK_MS,
# NETFS_KILL_EVERY_MS, NETFS_STORM_ARGS, LOCKFOLDER_STORM_LEASE_MS (2000);
# and the NETFS_HOST* variables nfs.sh sets.
set -eu
storm=${NETFS_STORM_BIN:-lockfolder-storm}
seconds=${NETFS_MULTIHOST_SECONDS:-20}
kill_at=${NETFS_KILL_HOST_AT:-$((seconds + 2))}
if [ "$kill_at" = none ]; then
    quiet=${NETFS_QUIET_SECS:-5}
else
    quiet=${NETFS_QUIET_SECS:-$((kill_at - seconds + 12))}
fi
victim=$((NETFS_HOSTS - 1))
export LOCKFOLDER_STORM_LEASE_MS="${LOCKFOLDER_STORM_LEASE_MS:-2000}"
lock=$NETFS_MOUNT/multi/lock

if [ "${1:-}" = --audit ]; then
    set --
    [ "$kill_at" != none ] && set -- --killed-ns "$NETFS_CTL/ns.$victim"
    echo "== audit of $lock (initial PID namespace)"
    exec "$storm" audit --dir "$lock" "$@"
fi

readlink /proc/self/ns/pid >"$NETFS_CTL/ns.$NETFS_HOST"
echo "host $NETFS_HOST of $NETFS_HOSTS ($(hostname)), mount $NETFS_MOUNT," \
    "PID namespace $(cat "$NETFS_CTL/ns.$NETFS_HOST"), lease ${LOCKFOLDER_STORM_LEASE_MS} ms"
mkdir -p "$NETFS_SHARED/arena"
set --
if [ "$kill_at" != none ]; then
    if [ "$NETFS_HOST" = "$victim" ]; then
        set -- --victim-after "$kill_at" --victim-request "$NETFS_CTL/kill.$victim"
    else
        set -- --victim-killed "$NETFS_CTL/killed.$victim"
    fi
fi
# shellcheck disable=SC2086 # NETFS_STORM_ARGS is a list of words
"$storm" storm --workers 2 --seconds "$seconds" --shared "$NETFS_SHARED/arena" \
    --dirs "$lock" --probe-dir /tmp --quiet-secs "$quiet" \
    --kill-every-ms "${NETFS_KILL_EVERY_MS:-50}" \
    --wake-limit-ms "${NETFS_WAKE_LIMIT_MS:-8000}" --settle-secs 5 \
    --takeover-slack-ms "${NETFS_TAKEOVER_SLACK_MS:-3000}" "$@" ${NETFS_STORM_ARGS:-}
