#!/bin/sh
# /init of the NFS bed's guest (busybox sh; see nfs.sh). Serves /export with
# kernel nfsd, mounts it over the loopback, runs the payload and powers off.
# Lines starting with "@@netfs " are read by nfs.sh:
#   @@netfs step NAME SECONDS    a step's time
#   @@netfs exit STATUS          the payload's exit status (125: setup failed)
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# No tmpfs over /tmp or /run: the initramfs (itself a tmpfs) is writable,
# and files nfs.sh copied in at their paths on the host (say, under /tmp)
# must stay visible.
mount -t tmpfs shared /shared
exec </dev/null >/dev/console 2>&1
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
mkdir -p /run/rpcbind /var/lib/nfs/sm
rpcbind || fail "rpcbind"
exportfs -ra || fail "exportfs"
rpc.mountd || fail "rpc.mountd"
rpc.nfsd 4 || fail "rpc.nfsd"
# A fresh server has no client state to recover: end the grace period now
# (else every v4 OPEN waits it out, 10 s).
echo Y >/proc/fs/nfsd/v4_end_grace 2>/dev/null || echo "netfs guest: cannot end the grace period early"
step nfsd

# Mount k goes through 127.0.0.(k+1): with vers=4.0 each address is its own
# NFS client with its own lease; for two mounts, mount 1 uses 127.0.0.1
# except for v40, whose point is the second client.
n=$NETFS_NHOSTS
[ "$n" -lt 2 ] && n=2
mounts=""
k=0
while [ "$k" -lt "$n" ]; do
    addr=127.0.0.$((k + 1))
    if [ "$NETFS_NHOSTS" -lt 2 ]; then
        mp=/mnt/$k
        case $NETFS_OPTS in vers=4.0*) ;; *) addr=127.0.0.1 ;; esac
    else
        mp=/mnt/h$k
    fi
    mkdir -p "$mp"
    mount.nfs "$addr:/export" "$mp" -o "$NETFS_OPTS" || fail "mount.nfs $addr:/export $mp -o $NETFS_OPTS"
    mounts="$mounts $mp"
    k=$((k + 1))
done
grep ' nfs' /proc/mounts
step mounts

if [ "$NETFS_NHOSTS" -lt 2 ]; then
    # shellcheck disable=SC2086 # two mount points, no spaces
    "$@" $mounts
    rc=$?
    step payload
    finish "$rc"
fi

# Multi-host: one PID, UTS and mount namespace per host.
ctl=/shared/ctl
mkdir -p "$ctl"
k=0
while [ "$k" -lt "$NETFS_NHOSTS" ]; do
    (
        NETFS_HOST=$k NETFS_HOSTS=$NETFS_NHOSTS NETFS_MOUNT=/mnt/h$k \
            NETFS_SHARED=/shared NETFS_CTL=$ctl \
            unshare --uts --pid --fork --mount-proc \
            sh -c 'hostname "host$NETFS_HOST"; exec "$@"' sh "$@" "/mnt/h$k" \
            >"/shared/out.$k" 2>&1 &
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
    while [ "$k" -lt "$NETFS_NHOSTS" ]; do
        [ -e "$ctl/status.$k" ] || left=$((left + 1))
        if [ -e "$ctl/kill.$k" ] && [ ! -e "$ctl/killed.$k" ] && [ -e "$ctl/unshare.$k" ]; then
            u=$(cat "$ctl/unshare.$k")
            for init in $(cat "/proc/$u/task/$u/children" 2>/dev/null); do
                kill -9 "$init"
            done
            up >"$ctl/killed.$k"
            echo "netfs guest: killed host $k (namespace init of unshare $u) at $(up) s"
        fi
        k=$((k + 1))
    done
    [ "$left" = 0 ] && break
    usleep 50000
done
rc=0
k=0
while [ "$k" -lt "$NETFS_NHOSTS" ]; do
    s=$(cat "$ctl/status.$k")
    sed "s/^/[h$k] /" "/shared/out.$k"
    echo "netfs guest: host $k exit status $s$([ -e "$ctl/killed.$k" ] && echo ' (killed on request)')"
    if [ ! -e "$ctl/killed.$k" ] && [ "$s" -gt "$rc" ]; then rc=$s; fi
    k=$((k + 1))
done
step payload
finish "$rc"
