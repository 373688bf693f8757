#!/usr/bin/env bash
# sshfs bed: a private sshd on 127.0.0.1 serving a temporary folder, mounted
# twice by two sshfs processes ("two clients"), then the payload runs with
# the two mount points as its last two arguments.
#
#   scripts/lanes/netfs/sshfs.sh [--variant default|nocache|rclone] [-- CMD ARGS...]
#
#   default   sshfs with its default caches (dir_cache=yes, 20 s)
#   nocache   sshfs -o dir_cache=no
#   rclone    two `rclone mount` sftp mounts (rclone from Debian); lockfolder
#             cannot publish there, and the default payload then checks that
#             the storm fails closed (NETFS_EXPECT_REFUSAL=1)
#
# Without `-- CMD`, the payload is payload.sh (freshness probe, then a 60 s
# storm; see that file for its environment variables). Root only. Exit
# status: the payload's; 125 if the bed failed.
NF_BED=sshfs
# shellcheck source=scripts/lanes/netfs/common.sh
. "$(dirname "$0")/common.sh"

variant=default
nf_split_args "$@"
set -- "${NF_ARGS[@]}"
while [ $# -gt 0 ]; do
    case $1 in
    --variant) variant=$2; shift 2 ;;
    *) nf_die "unknown option $1" ;;
    esac
done
case $variant in default | nocache | rclone) ;; *) nf_die "unknown variant $variant" ;; esac
NF_BED=sshfs-$variant

nf_begin install
pkgs=(openssh-server openssh-client sshfs fuse3)
[ "$variant" = rclone ] && pkgs+=(rclone)
nf_apt "${pkgs[@]}"
nf_end

nf_begin build
NF_STORM=$(nf_storm_bin)
nf_end

nf_begin setup
tmp=$(mktemp -d /tmp/lockfolder-netfs-sshfs.XXXXXX)
nf_defer "rm -rf '$tmp'"
mkdir -p "$tmp/export" "$tmp/m1" "$tmp/m2" "$tmp/local" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/id"
cp "$tmp/id.pub" "$tmp/authorized_keys"
# A free port in the 22200s.
port=""
for p in $(seq 22200 22299); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        port=$p
        break
    fi
done
[ -n "$port" ] || nf_die "no free port in 22200-22299"
cat >"$tmp/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $tmp/host_key
PidFile $tmp/sshd.pid
AuthorizedKeysFile $tmp/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel ERROR
EOF
/usr/sbin/sshd -D -f "$tmp/sshd_config" -E "$tmp/sshd.log" &
sshd_pid=$!
nf_defer "kill $sshd_pid; wait $sshd_pid"
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$sshd_pid" 2>/dev/null || { cat "$tmp/sshd.log" >&2; nf_die "sshd exited"; }
    sleep 0.05
done

ssh_opts="port=$port,IdentityFile=$tmp/id,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,BatchMode=yes,LogLevel=ERROR"
mount_pids=()
for m in m1 m2; do
    case $variant in
    default) sshfs -f -o "$ssh_opts" "root@127.0.0.1:$tmp/export" "$tmp/$m" & ;;
    nocache) sshfs -f -o "$ssh_opts,dir_cache=no" "root@127.0.0.1:$tmp/export" "$tmp/$m" & ;;
    rclone)
        RCLONE_CONFIG_LF_TYPE=sftp RCLONE_CONFIG_LF_HOST=127.0.0.1 RCLONE_CONFIG_LF_PORT=$port \
            RCLONE_CONFIG_LF_USER=root RCLONE_CONFIG_LF_KEY_FILE=$tmp/id \
            rclone mount --config /dev/null "lf:$tmp/export" "$tmp/$m" \
            --log-file "$tmp/rclone-$m.log" &
        ;;
    esac
    pid=$!
    mount_pids+=("$pid")
    # Unmount first, then make sure the client process is gone.
    nf_defer "kill $pid; wait $pid"
    nf_defer "umount '$tmp/$m' || umount -l '$tmp/$m'"
done
for m in m1 m2; do
    for _ in $(seq 200); do
        mountpoint -q "$tmp/$m" && break
        sleep 0.05
    done
    mountpoint -q "$tmp/$m" || nf_die "$tmp/$m did not mount"
done
grep " $tmp/m[12] " /proc/self/mountinfo | sed 's/^/  /' >&2
[ "$variant" = rclone ] && export NETFS_EXPECT_REFUSAL=${NETFS_EXPECT_REFUSAL:-1}
export NETFS_LOCAL=$tmp/local
nf_end

nf_begin payload
NF_STATUS=0
nf_payload "$tmp/m1" "$tmp/m2" || NF_STATUS=$?
nf_end
