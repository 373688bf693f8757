#!/usr/bin/env bash
# NFS bed: the real Linux NFS client and server in a QEMU guest (TCG; KVM
# does not work on these machines). The guest boots Debian's kernel with a
# busybox initramfs assembled here at run time, serves a tmpfs export with
# kernel nfsd, and runs one or more jobs, one after another: each mounts the
# export over the guest's own loopback, runs the payload and unmounts.
# Results come back on the serial console; the guest powers off at the end.
#
#   scripts/lanes/netfs/nfs.sh [--variant V] [--hosts N] [--job JOB]...
#                              [--include FILE]... [--timeout SECS]
#                              [-- CMD ARGS...]
#
# A job is VARIANT (two mounts, "two clients") or VARIANT:N (N hosts, below).
# --variant V --hosts N is the one job V:N (default v3, 1); --job (repeatable)
# lists jobs instead, so one guest boot serves several (e.g. --job v3 --job
# v42 --job v40:3).
#
# Variants (mount options):
#   v3        vers=3,nolock (no statd in the guest), nosharecache
#   v42       vers=4.2, nosharecache (one client lease for both mounts)
#   v3-nocto  vers=3,nolock,nocto, nosharecache
#   v40       vers=4.0, nosharecache, the second mount through 127.0.0.2:
#             two NFS clients with their own leases
#
# The server: kernel nfsd on a tmpfs /export, NFSv4 lease and grace time
# 10 s, the grace period ended at once; NETFS_NFSD_DELEGATIONS=0 makes it
# grant no delegations (to tell the cost of their recalls apart).
#
# The payload runs in the guest as root, with PATH=/usr/sbin:/usr/bin; every
# argument of CMD that names a file on this machine is copied into the guest
# at the same path (with the libraries `ldd` lists), and so is every
# --include FILE. Every NETFS_* environment variable is passed on, and
# so are LOCKFOLDER_ALLOW_FS (the core's filesystem opt-in) and
# LOCKFOLDER_STORM_LEASE_MS (the storm workers' lease); lockfolder-storm and
# the lockfolder CLI are always in the guest, named by NETFS_STORM_BIN and
# NETFS_CLI; NETFS_VARIANT names the job's variant. Without `-- CMD` the
# payload is payload.sh (freshness probe, then a storm; see payload.sh for
# its variables), or multihost.sh for N hosts; the probes live on the
# guest's local tmpfs (NETFS_LOCAL=/tmp). A two-mount job runs
# `CMD ARGS... /mnt/V-I/0 /mnt/V-I/1` (I: the job's number, from 1).
#
# N hosts (N >= 2): the export is mounted N times, mount k through
# 127.0.0.(k+1) (with v40 each is its own NFS client), and N payload
# instances run at once, each a separate "host": its own host name (hostK,
# UTS namespace), PID namespace with a private /proc, and mount namespace.
# Each instance is run as `CMD ARGS... /mnt/V-N-I/hK` and sees
#   NETFS_HOST=K  NETFS_HOSTS=N  NETFS_MOUNT=/mnt/V-N-I/hK
#   NETFS_SHARED=/shared/V-N-I  a local tmpfs all hosts share (probes, logs)
#   NETFS_CTL=$NETFS_SHARED/ctl control folder:
#     touch $NETFS_CTL/kill.J   SIGKILLs host J's PID namespace init (so every
#                               process of host J) within ~50 ms; the guest
#                               then writes killed.J holding its uptime
#     status.J                  host J's exit status, once it ended
# Once every host has ended, NETFS_AFTER (a command line, if set; the
# default payload, multihost.sh, sets its --audit) runs in the guest's
# initial PID namespace, which sees every process, with
# NETFS_MOUNT=/mnt/V-N-I/h0. The job's status is the worst status of the hosts
# not killed on request and of NETFS_AFTER. Each host's output is printed,
# prefixed [hK], when all ended.
#
# Root only. Exit status: the worst job's; 125 if the bed (or the guest's NFS
# setup) failed.
NF_BED=nfs
# shellcheck source=scripts/lanes/netfs/common.sh
. "$(dirname "$0")/common.sh"

variant=v3
hosts=1
timeout=900
includes=()
jobs=()
nf_split_args "$@"
set -- "${NF_ARGS[@]}"
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || nf_die "option $1 wants a value"
    case $1 in
    --variant) variant=$2; shift 2 ;;
    --hosts) hosts=$2; shift 2 ;;
    --job) jobs+=("$2"); shift 2 ;;
    --include) includes+=("$2"); shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    *) nf_die "unknown option $1" ;;
    esac
done
if [ ${#jobs[@]} -eq 0 ]; then
    jobs=("$variant")
    [ "$hosts" != 1 ] && jobs=("$variant:$hosts")
fi
opts_of() {
    case $1 in
    v3) echo vers=3,nolock,nosharecache ;;
    v42) echo vers=4.2,nosharecache ;;
    v3-nocto) echo vers=3,nolock,nocto,nosharecache ;;
    v40) echo vers=4.0,nosharecache ;;
    *) return 1 ;;
    esac
}
any_hosts=0
for j in "${jobs[@]}"; do
    opts_of "${j%%:*}" >/dev/null || nf_die "unknown variant in job $j"
    case $j in
    *:*)
        n=${j#*:}
        case $n in '' | *[!0-9]* | 0) nf_die "job $j: the host count wants a number >= 1" ;; esac
        [ "$n" -le 200 ] || nf_die "job $j: at most 200 hosts"
        [ "$n" -ge 2 ] && any_hosts=1
        ;;
    esac
done
NF_BED=nfs-$(IFS=+; echo "${jobs[*]}" | tr : x)

nf_begin install
nf_apt qemu-system-x86 linux-image-amd64 busybox-static nfs-kernel-server kmod cpio
nf_end

nf_begin build
NF_STORM=$(nf_storm_bin)
NF_CLI=$(nf_cli_bin)
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
# A script has no libraries: ldd fails, and that is no error.
put() {
    local f lib
    for f in "$@"; do
        cp -L --parents "$f" "$root/"
        for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ )]*' || true); do
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

# The payload. lockfolder-storm and the CLI are always there, named by
# NETFS_STORM_BIN and NETFS_CLI.
put "$NF_STORM" "$NF_CLI"
export NETFS_STORM_BIN=$NF_STORM NETFS_CLI=$NF_CLI
if [ ${#NF_PAYLOAD_CMD[@]} -eq 0 ]; then
    cp "$NF_DIR/multihost.sh" "$NF_DIR/payload.sh" "$root/netfs/"
    payload=(sh /netfs/payload.sh)
    hosts_payload=(sh /netfs/multihost.sh)
    [ "$any_hosts" = 1 ] && export NETFS_AFTER="sh /netfs/multihost.sh --audit"
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
    hosts_payload=("${payload[@]}")
fi
for f in "${includes[@]}"; do put "$(realpath "$f")"; done
export NETFS_LOCAL=${NETFS_LOCAL:-/tmp}
# Starting a worker process takes ~10x longer under TCG: kill less often, or
# the killer outpaces the acquisitions.
export NETFS_KILL_EVERY_MS=${NETFS_KILL_EVERY_MS:-400}
{
    printf 'NETFS_JOBS=%q\n' "${jobs[*]}"
    for j in "${jobs[@]}"; do
        v=${j%%:*}
        printf 'NETFS_OPTS_%s=%q\n' "$(echo "$v" | tr -- '-.' '__')" "$(opts_of "$v")"
    done
    env | grep -oE '^(NETFS_[A-Z0-9_]*|LOCKFOLDER_ALLOW_FS|LOCKFOLDER_STORM_LEASE_MS)=' |
        tr -d = | while read -r v; do
        printf 'export %s=%q\n' "$v" "${!v}"
    done
} >"$root/netfs/env"
{
    printf 'pair_cmd() {'
    printf ' %q' "${payload[@]}"
    printf ' "$@"; }\nhosts_cmd() {'
    printf ' %q' "${hosts_payload[@]}"
    printf ' "$@"; }\n'
} >"$root/netfs/cmds"
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
while read -r j st; do
    [ -n "$j" ] && nf_say "job $j: status $st"
done < <(sed -n 's/^@@netfs job \([^ ]*\) status \([0-9]*\)$/\1 \2/p' "$tmp/console.log")
status=$(sed -n 's/^@@netfs exit \([0-9]*\)$/\1/p' "$tmp/console.log" | tail -n 1)
if [ -n "$status" ]; then
    NF_STATUS=$status
else
    nf_say "no exit status from the guest (qemu status $qrc)"
fi
