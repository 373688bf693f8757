#!/usr/bin/env bash
# GlusterFS bed: glusterd and one brick inside a network namespace that has
# only `lo` (brick host 127.0.0.2), one volume, mounted twice with the FUSE
# client ("two clients"); then the payload runs, in the host's own network
# and mount namespace, with the two mount points as its last two arguments.
#
#   scripts/lanes/netfs/gluster.sh [-- CMD ARGS...]
#
# Without `-- CMD`, the payload is payload.sh (freshness probe, then a 60 s
# storm; see that file for its environment variables). Root only; glusterd's
# state lives in a temporary folder, not in /var/lib/glusterd. Exit status:
# the payload's; 125 if the bed failed.
NF_BED=gluster
# shellcheck source=scripts/lanes/netfs/common.sh
. "$(dirname "$0")/common.sh"

nf_split_args "$@"
[ ${#NF_ARGS[@]} -eq 0 ] || nf_die "unknown option ${NF_ARGS[0]}"

nf_begin install
nf_apt glusterfs-server glusterfs-client iproute2 util-linux
nf_end

nf_begin build
NF_STORM=$(nf_storm_bin)
nf_end

nf_begin setup
tmp=$(mktemp -d /tmp/lockfolder-netfs-gluster.XXXXXX)
nf_defer "rm -rf '$tmp'"
ns=lfnetfs$$
vol=lf$$
nsexec() { nsenter --net="/run/netns/$ns" "$@"; }
mkdir -p "$tmp/brick" "$tmp/m1" "$tmp/m2" "$tmp/local" "$tmp/glusterd" "$tmp/log" "$tmp/run"
ip netns add "$ns"
nf_defer "ip netns delete '$ns'"
ip -n "$ns" link set lo up

# glusterd with its own working folder, log and PID file. The CLI talks to
# it over a unix socket we name (--glusterd-sock), never the default one.
cat >"$tmp/glusterd.vol" <<EOF
volume management
    type mgmt/glusterd
    option working-directory $tmp/glusterd
    option transport-type socket
    option transport.socket.listen-address 127.0.0.2
    option transport.socket.keepalive-time 10
    option transport.socket.keepalive-interval 2
    option transport.socket.read-fail-log off
    option ping-timeout 0
    option event-threads 1
    option glusterd-sockfile $tmp/run/glusterd.socket
end-volume
EOF
# glusterd forks away from its starter even with --no-daemon: its PID
# comes from its PID file. Its stdout must not be ours (a pipe reading the
# bed's output would wait for it).
nsexec glusterd --no-daemon -f "$tmp/glusterd.vol" -l "$tmp/log/glusterd.log" \
    -p "$tmp/run/glusterd.pid" </dev/null >"$tmp/log/glusterd.out" 2>&1 &
starter=$!
for _ in $(seq 100); do
    [ -s "$tmp/run/glusterd.pid" ] && break
    sleep 0.05
done
glusterd_pid=$(cat "$tmp/run/glusterd.pid" 2>/dev/null) || nf_die "glusterd wrote no PID file"
nf_defer "kill $glusterd_pid; kill $starter"
gcli() { nsexec gluster --mode=script --glusterd-sock="$tmp/run/glusterd.socket" "$@"; }
for _ in $(seq 200); do
    gcli volume list >/dev/null 2>&1 && break
    kill -0 "$glusterd_pid" 2>/dev/null || { tail -20 "$tmp/log/glusterd.log" >&2; nf_die "glusterd exited"; }
    sleep 0.1
done
gcli volume create "$vol" "127.0.0.2:$tmp/brick" force >&2
nf_defer "gcli volume delete '$vol'"
gcli volume start "$vol" >&2
# The brick process (glusterfsd) is glusterd's child: stop the volume
# through glusterd, then make sure that PID is gone.
brick_pid=$(gcli volume status "$vol" --xml | sed -n 's:.*<pid>\([0-9]*\)</pid>.*:\1:p' | head -n 1)
case $brick_pid in '' | *[!0-9]*) nf_die "no brick PID in: $(gcli volume status "$vol")" ;; esac
nf_defer "kill $brick_pid"
nf_defer "gcli volume stop '$vol' force"
for m in m1 m2; do
    nsexec mount -t glusterfs -o "log-file=$tmp/log/$m.log" "127.0.0.2:/$vol" "$tmp/$m"
    nf_defer "umount '$tmp/$m' || umount -l '$tmp/$m'"
done
for m in m1 m2; do mountpoint -q "$tmp/$m" || nf_die "$tmp/$m did not mount"; done
grep " $tmp/m[12] " /proc/self/mountinfo | sed 's/^/  /' >&2
export NETFS_LOCAL=$tmp/local
nf_end

nf_begin payload
NF_STATUS=0
nf_payload "$tmp/m1" "$tmp/m2" || NF_STATUS=$?
nf_end
