#!/bin/sh
# Wall time of `lockfolder run DIR -- true` against `flock FILE true`, side by
# side in one hyperfine run (same machine, same moment), uncontended lock.
# Prints both medians and the ratio run/flock (issue 4's target: <= 1.5).
# Two measurements: hyperfine (each command in its own block of runs), then an
# interleaved loop (flock, lockfolder, flock, ...) so that a change of machine
# load during the run hits both alike; on a shared, busy machine the
# interleaved ratio of medians is the one to quote.
#
# Usage: crates/lockfolder-cli/bench/run_vs_flock.sh [RUNS]
#   LOCKFOLDER=path/to/lockfolder  binary to measure (default: builds release
#                                  with cargo into $CARGO_TARGET_DIR or target/)
#   JSON=file                      also keep hyperfine's JSON export there
# Needs hyperfine (apt-get install hyperfine), flock (util-linux), python3.
set -eu
runs=${1:-500}
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${LOCKFOLDER:-}" ]; then
    cargo build --quiet --release -p lockfolder-cli --manifest-path "$here/../Cargo.toml"
    LOCKFOLDER="${CARGO_TARGET_DIR:-$here/../../../target}/release/lockfolder"
fi
command -v hyperfine >/dev/null || { echo "hyperfine not found (apt-get install hyperfine)" >&2; exit 69; }
command -v flock >/dev/null || { echo "flock not found (util-linux)" >&2; exit 69; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
json=${JSON:-$work/result.json}
echo "machine: $(uname -srm), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "lockfolder: $("$LOCKFOLDER" --version); flock: $(flock --version 2>&1 | head -n1)"
# -N: no intermediate shell, so only the two programs are timed.
hyperfine -N --warmup 50 --runs "$runs" --export-json "$json" \
    --command-name "flock FILE true" "flock $work/flock-file true" \
    --command-name "lockfolder run DIR -- true" "$LOCKFOLDER run $work/lock-dir -- true"
python3 - "$json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
f, l = r["flock FILE true"], r["lockfolder run DIR -- true"]
print("median: flock %.3f ms, lockfolder run %.3f ms, ratio %.2f"
      % (f["median"] * 1e3, l["median"] * 1e3, l["median"] / f["median"]))
print("mean:   flock %.3f ms, lockfolder run %.3f ms, ratio %.2f"
      % (f["mean"] * 1e3, l["mean"] * 1e3, l["mean"] / f["mean"]))
print("min:    flock %.3f ms, lockfolder run %.3f ms, ratio %.2f"
      % (f["min"] * 1e3, l["min"] * 1e3, l["min"] / f["min"]))
PY
echo "interleaved ($runs pairs, posix_spawn from python, wall clock per run):"
python3 - "$runs" "$LOCKFOLDER" "$work" <<'PY'
import os, statistics, sys, time
runs, lf, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cmds = {
    "flock FILE true": ["flock", work + "/flock-file2", "true"],
    "lockfolder run DIR -- true": [lf, "run", work + "/lock-dir2", "--", "true"],
}
def once(argv):
    t = time.perf_counter_ns()
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 0, argv
    return (time.perf_counter_ns() - t) / 1e6
times = {k: [] for k in cmds}
for i in range(runs + 20):
    for k, argv in cmds.items():
        ms = once(argv)
        if i >= 20:  # warm-up
            times[k].append(ms)
f, l = (statistics.median(times[k]) for k in cmds)
print("median: flock %.3f ms, lockfolder run %.3f ms, ratio %.2f" % (f, l, l / f))
PY
