#!/usr/bin/env bash
# Builds the lockfolder command and shows it at work on a demo folder: three
# jobs started at once take turns, `status` says who holds the lock, a job
# killed with -9 does not wedge it, `clean` tidies up.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p lockfolder-cli
lf=target/release/lockfolder
demo=$(mktemp -d)
trap 'rm -rf "$demo"' EXIT
lock="$demo/nightly.lock"

echo "== three jobs at once; each holds the lock for half a second =="
for i in 1 2 3; do
  "$lf" run -w 10 --label "job $i" "$lock" -- sh -c "echo \"job $i: running (pid \$\$)\"; sleep 0.5" &
done
sleep 0.2
echo "== status while they run =="
"$lf" status "$lock" || true
wait
echo "== kill -9 the launcher of a running job: its command still holds the lock =="
"$lf" run --label "doomed" "$lock" -- sleep 30 &
launcher=$!
sleep 0.3
command_pid=$(pgrep -P "$launcher")
kill -9 "$launcher"
wait "$launcher" 2>/dev/null || true
"$lf" status "$lock" || true
"$lf" run -n "$lock" -- echo "must not run" || echo "(a second job is refused while the command runs)"
echo "== kill -9 the command too: its bid is now stale and does not wedge the lock =="
kill -9 "$command_pid"
sleep 0.1
"$lf" status "$lock" || true
"$lf" run -n "$lock" -- echo "next job: got the lock at once"
"$lf" clean "$lock"
"$lf" status --json "$lock"
