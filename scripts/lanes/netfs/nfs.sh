#!/usr/bin/env bash
# NFS bed: the real Linux NFS client and server in a QEMU guest (TCG; KVM
# does not work on these machines). The guest boots Debian's kernel with a
# busybox initramfs assembled here at run time, serves a tmpfs export with
# kernel nfsd, mounts it twice over its own loopback ("two clients") and
# runs the payload there with the two mount points as its last arguments.
# Results come back on the serial console; the guest powers off at the end.
#
#   scripts/lanes/netfs/nfs.sh [--variant V] [--hosts N] [--include FILE]...
#                              [--timeout SECS] [-- CMD ARGS...]
#
# Variants (mount options of the two mounts):
#   v3        vers=3,nolock (no statd in the guest), nosharecache
#   v42       vers=4.2, nosharecache (one client lease for both mounts)
#   v3-nocto  vers=3,nolock,nocto, nosharecache
#   v40       vers=4.0, the second mount through 127.0.0.2: two NFS clients
#             with their own leases
#
# The payload runs in the guest as root, with PATH=/usr/sbin:/usr/bin; every
# argument of CMD that names a file on this machine is copied into the guest
# at the same path (with the libraries `ldd` lists), and so is every
# --include FILE. Every NETFS_* environment variable is passed on, and
# lockfolder-storm is always in the guest, named by NETFS_STORM_BIN. Without
# `-- CMD` the payload is payload.sh (freshness probe, then a 60 s storm; see
# payload.sh for its variables), or multihost.sh with --hosts; the probes
# live on the guest's local tmpfs (NETFS_LOCAL=/tmp).
#
# Multi-host mode (--hosts N, N >= 2): the export is mounted N times, mount
# k through 127.0.0.(k+1) (with v40 each is its own NFS client), and N
# payload instances run at once, each a separate "host": its own host name
# (hostK, UTS namespace), PID namespace with a private /proc, and mount. Each
# instance is run as `CMD ARGS... /mnt/hK` and sees
#   NETFS_HOST=K  NETFS_HOSTS=N  NETFS_MOUNT=/mnt/hK
#   NETFS_SHARED=/shared   a local tmpfs all hosts share (probes, logs)
#   NETFS_CTL=/shared/ctl  control folder:
#     touch $NETFS_CTL/kill.J   SIGKILLs host J's PID namespace init (so every
#                               process of host J) within ~50 ms; the guest
#                               then writes killed.J holding its uptime
#     status.J                  host J's exit status, once it ended
# The bed's exit status is the worst status of the hosts not killed on
# request. Each host's output is printed, prefixed [hK], when all ended.
#
# Root only. Exit status: the payload's; 125 if the bed (or the guest's NFS
# setup) failed.
NF_BED=nfs
# shellcheck source=scripts/lanes/netfs/common.sh
. "$(dirname "$0")/common.sh"

variant=v3
hosts=1
timeout=900
includes=()
nf_split_args "$@"
set -- "${NF_ARGS[@]}"
while [ $# -gt 0 ]; do
    case $1 in
    --variant) variant=$2; shift 2 ;;
    --hosts) hosts=$2; shift 2 ;;
    --include) includes+=("$2"); shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    *) nf_die "unknown option $1" ;;
    esac
done
case $variant in
v3) opts=vers=3,nolock,nosharecache ;;
v42) opts=vers=4.2,nosharecache ;;
v3-nocto) opts=vers=3,nolock,nocto,nosharecache ;;
v40) opts=vers=4.0,nosharecache ;;
*) nf_die "unknown variant $variant" ;;
esac
case $hosts in '' | *[!0-9]* | 0) nf_die "--hosts wants a number >= 1" ;; esac
[ "$hosts" -le 200 ] || nf_die "--hosts: at most 200"
NF_BED=nfs-$variant
[ "$hosts" -gt 1 ] && NF_BED=nfs-$variant-${hosts}hosts

nf_begin install
nf_apt qemu-system-x86 linux-image-amd64 busybox-static nfs-kernel-server kmod cpio
nf_end

nf_begin build
NF_STORM=$(nf_storm_bin)
nf_end

nf_begin initramfs
tmp=$(mktemp -d /tmp/lockfolder-netfs-nfs.XXXXXX)
nf_defer "rm -rf '$tmp'"
root=$tmp/root
kver=""
for d in /lib/modules/*-amd64; do
    [ -f "/boot/vmlinuz-${d##*/}" ] && kver=${d##*/}
done
[ -n "$kver" ] || nf_die "no Debian amd64 kernel in /boot (linux-image-amd64)"
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,proc,sys,dev,tmp,run,etc,export,mnt,shared,netfs,var/lib/nfs/v4recovery}
for l in bin sbin lib lib64; do ln -s "usr/$l" "$root/$l"; done

# Files and the libraries they load, at the same paths.
put() {
    local f
    for f in "$@"; do
        cp -L --parents "$f" "$root/"
        ldd "$f" 2>/dev/null | grep -o '/[^ )]*' | while read -r lib; do
            [ -e "$root$lib" ] || cp -L --parents "$lib" "$root/"
        done
    done
}
cp /bin/busybox "$root/usr/bin/busybox"
put /usr/sbin/rpcbind /usr/sbin/rpc.mountd /usr/sbin/exportfs /usr/sbin/rpc.nfsd /usr/sbin/mount.nfs
# Every applet a link to busybox, except `busybox` itself (a self-link makes
# the kernel fail with ELOOP and the guest panics) and names we ship for real.
for a in $(busybox --list); do
    [ "$a" = busybox ] && continue
    [ -e "$root/usr/bin/$a" ] || [ -e "$root/usr/sbin/$a" ] || ln -s busybox "$root/usr/bin/$a"
done
cp /etc/netconfig /etc/services /etc/protocols /etc/rpc "$root/etc/"
printf 'root:x:0:0:root:/:/bin/sh\n_rpc:x:102:65534::/run/rpcbind:/bin/false\nnobody:x:65534:65534::/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files\nservices: files\nprotocols: files\nrpc: files\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"
echo >>"$root/etc/machine-id"
ln -s /proc/mounts "$root/etc/mtab"
: >"$root/var/lib/nfs/etab"
: >"$root/var/lib/nfs/rmtab"
echo '/export 127.0.0.0/8(rw,sync,no_root_squash,insecure,no_subtree_check,fsid=1)' >"$root/etc/exports"

# Kernel modules, dependencies first, each once.
for m in nfsd nfsv3 nfsv4; do
    modprobe -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' >"$root/netfs/modules"
while read -r ko; do cp --parents "$ko" "$root/"; done <"$root/netfs/modules"

# The payload. lockfolder-storm is always there, named by NETFS_STORM_BIN.
put "$NF_STORM"
export NETFS_STORM_BIN=$NF_STORM
if [ ${#NF_PAYLOAD_CMD[@]} -eq 0 ] && [ "$hosts" -gt 1 ]; then
    cp "$NF_DIR/multihost.sh" "$root/netfs/multihost.sh"
    payload=(sh /netfs/multihost.sh)
elif [ ${#NF_PAYLOAD_CMD[@]} -eq 0 ]; then
    cp "$NF_DIR/payload.sh" "$root/netfs/payload.sh"
    payload=(sh /netfs/payload.sh)
else
    payload=("${NF_PAYLOAD_CMD[@]}")
    for a in "${payload[@]}"; do
        [ -f "$a" ] && put "$(realpath "$a")"
        if [ "$a" = "${payload[0]}" ] && [ ! -f "$a" ] && command -v "$a" >/dev/null &&
            [ ! -e "$root/usr/bin/$a" ]; then
            put "$(command -v "$a")"
        fi
    done
    # Relative file arguments are made absolute (the guest starts in /).
    for i in "${!payload[@]}"; do
        [ -f "${payload[i]}" ] && payload[i]=$(realpath "${payload[i]}")
    done
fi
for f in "${includes[@]}"; do put "$(realpath "$f")"; done
export NETFS_LOCAL=${NETFS_LOCAL:-/tmp}
# Starting a worker process takes ~10x longer under TCG: kill less often, or
# the killer outpaces the acquisitions.
export NETFS_KILL_EVERY_MS=${NETFS_KILL_EVERY_MS:-400}
{
    printf 'NETFS_OPTS=%q\nNETFS_NHOSTS=%q\n' "$opts" "$hosts"
    printf 'set --'
    printf ' %q' "${payload[@]}"
    echo
    env | grep -o '^NETFS_[A-Z0-9_]*' | while read -r v; do
        printf 'export %s=%q\n' "$v" "${!v}"
    done
} >"$root/netfs/env"
cp "$NF_DIR/guest-init.sh" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$tmp/initramfs.cpio"
nf_say "initramfs $(du -m "$tmp/initramfs.cpio" | cut -f1) MB, kernel $kver"
nf_end

nf_begin guest
NF_STATUS=125
# No network device (-nic none; QEMU would add a user-mode NIC), no
# display, the serial console on our stdout, power-off ends QEMU.
set +e
timeout --kill-after=10 "$timeout" qemu-system-x86_64 \
    -accel tcg,thread=multi -smp 2 -m 1024 -nic none \
    -display none -monitor none -serial stdio -no-reboot \
    -kernel "/boot/vmlinuz-$kver" -initrd "$tmp/initramfs.cpio" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" \
    </dev/null 2>"$tmp/qemu.err" | sed -u 's/\r$//' | tee "$tmp/console.log"
qrc=${PIPESTATUS[0]}
set -e
[ "$qrc" = 124 ] && nf_say "the guest did not finish within ${timeout}s"
[ -s "$tmp/qemu.err" ] && sed 's/^/qemu: /' "$tmp/qemu.err" >&2
nf_end
steps=$(sed -n 's/^@@netfs step \([^ ]*\) \([0-9.]*\)$/guest-\1 \2s/p' "$tmp/console.log")
while read -r s; do [ -n "$s" ] && NF_TIMES+=("$s"); done <<<"$steps"
status=$(sed -n 's/^@@netfs exit \([0-9]*\)$/\1/p' "$tmp/console.log" | tail -n 1)
if [ -n "$status" ]; then
    NF_STATUS=$status
else
    nf_say "no exit status from the guest (qemu status $qrc)"
fi
