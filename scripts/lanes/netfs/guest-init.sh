#!/bin/sh
# /init of the NFS bed's guest (busybox sh; see nfs.sh). Serves /export with
# kernel nfsd, then runs each job (mounts over the loopback, the payload,
# unmount) and powers off.
# Lines starting with "@@netfs " are read by nfs.sh:
#   @@netfs step NAME SECONDS    a step's time
#   @@netfs job-begin JOB        a job begins (its output follows)
#   @@netfs job JOB status S     a job's exit status
#   @@netfs exit STATUS          the worst job's status (125: setup failed)
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# No tmpfs over /tmp or /run: the initramfs (itself a tmpfs) is writable,
# and files nfs.sh copied in at their paths on the host (say, under /tmp)
# must stay visible.
mount -t tmpfs shared /shared
exec </dev/null >/dev/console 2>&1
# shellcheck source=/dev/null # written by nfs.sh
. /netfs/env

up() { cut -d' ' -f1 /proc/uptime; }
T=$(up)
step() {
    now=$(up)
    echo "@@netfs step $1 $(awk -v a="$T" -v b="$now" 'BEGIN { printf "%.1f", b - a }')"
    T=$now
}
finish() {
    sync
    echo "@@netfs exit $1"
    poweroff -f
    sleep 10
}
fail() {
    echo "netfs guest: $*"
    dmesg | tail -n 20
    finish 125
}
echo "@@netfs step boot $T"

hostname netfs-guest
ip link set lo up || fail "lo"
while read -r ko; do
    insmod "$ko" || fail "insmod $ko"
done </netfs/modules
step modules

mount -t tmpfs export /export || fail "tmpfs /export"
mount -t nfsd nfsd /proc/fs/nfsd || fail "mount nfsd"
# Before nfsd starts: a 10 s lease, and a 10 s grace period instead of 90 s.
echo 10 >/proc/fs/nfsd/nfsv4leasetime
echo 10 >/proc/fs/nfsd/nfsv4gracetime
# NETFS_NFSD_DELEGATIONS=0: nfsd grants no delegations (they are file leases
# to it), to tell their recalls' cost apart.
if [ "${NETFS_NFSD_DELEGATIONS:-1}" = 0 ]; then
    echo 0 >/proc/sys/fs/leases-enable
    echo "netfs guest: nfsd delegations off"
fi
mkdir -p /run/rpcbind /var/lib/nfs/sm
rpcbind || fail "rpcbind"
exportfs -ra || fail "exportfs"
rpc.mountd || fail "rpc.mountd"
rpc.nfsd 4 || fail "rpc.nfsd"
# A fresh server has no client state to recover: end the grace period now
# (else every v4 OPEN waits it out, 10 s).
echo Y >/proc/fs/nfsd/v4_end_grace 2>/dev/null || echo "netfs guest: cannot end the grace period early"
step nfsd

# The jobs, one after another on this one server: NETFS_JOBS is a list of
# VARIANT (two mounts, the pair payload) or VARIANT:N (N hosts, the hosts
# payload); NETFS_OPTS_<variant> its mount options (see nfs.sh).
opts_of() { eval "echo \"\${NETFS_OPTS_$(echo "$1" | tr -- '-.' '__')}\""; }

# Mounts the export COUNT times under DIR (DIR/PREFIX0, ...) with OPTS;
# mount k goes through 127.0.0.(k+1) if SPREAD, else through 127.0.0.1
# (with vers=4.0 each address is its own NFS client with its own lease;
# v4.1+ mounts of one kernel share one lease whatever the address).
# Prints the mount points.
mount_all() {
    dir=$1 prefix=$2 count=$3 opts=$4 spread=$5
    k=0
    while [ "$k" -lt "$count" ]; do
        addr=127.0.0.1
        [ "$spread" = 1 ] && addr=127.0.0.$((k + 1))
        mkdir -p "$dir/$prefix$k"
        mount.nfs "$addr:/export" "$dir/$prefix$k" -o "$opts" >&2 ||
            { echo "netfs guest: mount.nfs $addr:/export $dir/$prefix$k -o $opts failed" >&2; return 1; }
        echo "$dir/$prefix$k"
        k=$((k + 1))
    done
}

unmount_all() {
    for m in "$@"; do umount "$m" 2>/dev/null || umount -l "$m"; done
}

# Two mounts, the pair payload with both mount points as its last words.
# JOBDIR names the job (jobs may repeat a variant).
run_pair() {
    variant=$1 opts=$2 jobdir=$3 spread=0
    case $opts in vers=4.0*) spread=1 ;; esac
    mounts=$(mount_all "/mnt/$jobdir" "" 2 "$opts" "$spread") || return 125
    grep " /mnt/$jobdir/" /proc/mounts
    # shellcheck disable=SC2086 # two mount points, no spaces
    NETFS_VARIANT=$variant pair_cmd $mounts
    s=$?
    # shellcheck disable=SC2086
    unmount_all $mounts
    return "$s"
}

# N hosts: one PID, UTS and mount namespace each, host K through its own
# mount and address; see nfs.sh for what each host sees.
run_hosts() {
    variant=$1 opts=$2 n=$3 jobdir=$4
    shared=/shared/$jobdir
    ctl=$shared/ctl
    mkdir -p "$ctl"
    mounts=$(mount_all "/mnt/$jobdir" h "$n" "$opts" 1) || return 125
    grep " /mnt/$jobdir/" /proc/mounts
    k=0
    while [ "$k" -lt "$n" ]; do
        (
            # shellcheck disable=SC2016 # expanded by the host's own shell
            NETFS_VARIANT=$variant NETFS_HOST=$k NETFS_HOSTS=$n NETFS_MOUNT=/mnt/$jobdir/h$k \
                NETFS_SHARED=$shared NETFS_CTL=$ctl \
                unshare --uts --pid --fork --mount-proc \
                sh -c 'hostname "host$NETFS_HOST"; . /netfs/cmds; hosts_cmd "$NETFS_MOUNT"' \
                >"$shared/out.$k" 2>&1 &
            echo $! >"$ctl/unshare.$k"
            wait $!
            echo $? >"$ctl/status.tmp.$k"
            mv "$ctl/status.tmp.$k" "$ctl/status.$k"
        ) &
        k=$((k + 1))
    done
    # Supervise: serve kill requests until every host has ended.
    while :; do
        left=0
        k=0
        while [ "$k" -lt "$n" ]; do
            [ -e "$ctl/status.$k" ] || left=$((left + 1))
            if [ -e "$ctl/kill.$k" ] && [ ! -e "$ctl/killed.$k" ] && [ -e "$ctl/unshare.$k" ]; then
                u=$(cat "$ctl/unshare.$k")
                # shellcheck disable=SC2013 # PIDs, one word each
                for init in $(cat "/proc/$u/task/$u/children" 2>/dev/null); do
                    kill -9 "$init"
                done
                up >"$ctl/killed.$k"
                echo "netfs guest: killed host $k (namespace init of unshare $u) at $(cat "$ctl/killed.$k") s"
            fi
            k=$((k + 1))
        done
        [ "$left" = 0 ] && break
        usleep 50000
    done
    hrc=0
    k=0
    while [ "$k" -lt "$n" ]; do
        s=$(cat "$ctl/status.$k")
        sed "s/^/[h$k] /" "$shared/out.$k"
        echo "netfs guest: host $k exit status $s$([ -e "$ctl/killed.$k" ] && echo ' (killed on request)')"
        if [ ! -e "$ctl/killed.$k" ] && [ "$s" -gt "$hrc" ]; then hrc=$s; fi
        k=$((k + 1))
    done
    # The payload's last word, from the initial PID namespace (which sees
    # every process), once every host has ended: NETFS_AFTER, if set.
    if [ -n "${NETFS_AFTER:-}" ]; then
        # shellcheck disable=SC2086 # a command line of words
        NETFS_VARIANT=$variant NETFS_HOSTS=$n NETFS_MOUNT=/mnt/$jobdir/h0 \
            NETFS_SHARED=$shared NETFS_CTL=$ctl $NETFS_AFTER
        a=$?
        echo "netfs guest: after the hosts ($NETFS_AFTER): status $a"
        [ "$a" -gt "$hrc" ] && hrc=$a
    fi
    # shellcheck disable=SC2086
    unmount_all $mounts
    return "$hrc"
}

# shellcheck source=/dev/null # written by nfs.sh: pair_cmd, hosts_cmd
. /netfs/cmds
rc=0
i=0
for job in $NETFS_JOBS; do
    i=$((i + 1))
    variant=${job%%:*}
    n=1
    case $job in *:*) n=${job#*:} ;; esac
    opts=$(opts_of "$variant")
    echo "@@netfs job-begin $job"
    if [ "$n" -lt 2 ]; then
        run_pair "$variant" "$opts" "$variant-$i"
    else
        run_hosts "$variant" "$opts" "$n" "$variant-$n-$i"
    fi
    s=$?
    echo "@@netfs job $job status $s"
    step "job-$job"
    [ "$s" -gt "$rc" ] && rc=$s
done
finish "$rc"
