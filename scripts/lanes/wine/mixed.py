"""A mixed Windows run: our Rust contenders and lockfolder 1.0.2 processes
on one folder, holders and waiters ended by TerminateProcess now and then,
and a probe outside the lock that counts two holders at once.

Run by the Windows CPython of wine/python.sh (with psutil and lockfolder
1.0.2 on its import path); scripts/lanes/wine/mixed.sh prepares all that.

    python mixed.py run --exe CONTEND.EXE [--rust 3] [--py 3] [--seconds 90] ...
    python mixed.py worker102 FOLDER LOG STOP WORK_MS PAUSE_MS ROUNDS NOLOCK ONEUUID

The probe: every worker writes its own log, one line per event,
`<unix ns> <event> <round> [...]` (appends of several processes to one file
lose lines under wine, so nobody shares one). `enter` is noted after the
lock is taken and `leave` before it is given back, so the noted intervals
lie inside the held ones. The orchestrator notes the time just before it
calls TerminateProcess on a worker: a killed holder's interval ends there
(its bid stays, and nobody may enter until someone has proven it dead,
which cannot happen before the kill). Afterwards the logs are merged by
time; an interval that begins before an earlier one has ended is an overlap.
Every process reads the same clock (GetSystemTimePreciseAsFileTime; under
wine the host's CLOCK_REALTIME), and the run checks that the wall clock did
not step against the monotonic one while it ran.

Exit status: 0 only if there was no overlap, no wedge, no lost bid, no
unexpected worker exit, both kinds took the lock and workers were killed;
with --no-lock (the probe's self-test), 0 only if overlaps were seen.
"""

import argparse
import collections
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import time

STOP_MARGIN = 15.0  # seconds a worker gets to stop beyond a contender's --timeout


def now_ns() -> int:
    return time.time_ns()


# ---------------------------------------------------------------- the 1.0.2 worker


def withdraw(own: pathlib.Path, rnd: int) -> None:
    """Delete a bid if it is there. Python opens files without
    FILE_SHARE_DELETE, so while a 1.0.2 process reads the bid it cannot be
    deleted: retry (about 5 s), then give up loudly."""
    for attempt in range(100):
        try:
            own.unlink(missing_ok=True)
            return
        except PermissionError:
            time.sleep(0.001 * (attempt + 1))
    raise RuntimeError(f"cannot delete our own bid {own} (round {rnd})")


def worker102(argv: list) -> int:
    import psutil  # noqa: F401  (lockfolder 1.0.2 imports it; fail early if missing)
    from lockfolder import lockfolder

    folder, log, stop = pathlib.Path(argv[0]), argv[1], pathlib.Path(argv[2])
    work_ms, pause_ms, rounds, no_lock = int(argv[3]), int(argv[4]), int(argv[5]), argv[6] == "1"
    one_uuid = argv[7] == "1"
    lockfolder.setup()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_BINARY)

    def ev(event: str, rnd: int, *extra) -> None:
        os.write(fd, (" ".join([str(now_ns()), event, str(rnd), *map(str, extra)]) + "\n").encode())

    ev("start", 0, os.getpid(), lockfolder.g[lockfolder.UUID])
    rnd = 0
    while True:
        if stop.exists() or (rounds and rnd >= rounds):
            ev("stop", rnd)
            return 0
        rnd += 1
        if not one_uuid and rnd > 1:
            # A new bid name for every round. 1.0.2 keeps one per process,
            # and under wine 8 that loses bids: a bid deleted while a reader
            # that shares delete (ours) has it open stays listed, "delete
            # pending"; Windows refuses to create that name again until the
            # reader closes it, wine lets 1.0.2 write its next bid into the
            # doomed file, which then vanishes under its holder (--py-one-uuid
            # shows it: LOST BID).
            lockfolder.setup()
            ev("uuid", rnd, lockfolder.g[lockfolder.UUID])
        own = folder / (lockfolder.g[lockfolder.UUID] + ".json")
        ev("want", rnd)
        backoff = 0.002
        while not no_lock:
            try:
                if lockfolder.lock(folder):
                    break
            except Exception as e:  # noqa: BLE001
                # 1.0.2 raises when a bid vanishes under it, is half-written
                # (it writes bids in place) or cannot be opened; a careful
                # caller withdraws its own bid, if it got that far, and retries.
                ev("error", rnd, type(e).__name__)
                withdraw(own, rnd)
            if stop.exists():
                ev("stop", rnd)
                return 0
            # 1.0.2 leaves waiting to the caller: random, growing delays.
            time.sleep(random.uniform(0, backoff))
            backoff = min(backoff * 2, 0.05)
        ev("enter", rnd)
        time.sleep(random.uniform(0, work_ms / 1000))
        ev("leave", rnd)
        if not no_lock:
            for attempt in range(200):
                try:
                    lockfolder.unlock(folder)
                    break
                except FileNotFoundError:
                    # Someone deleted the bid of a live holder.
                    ev("lostbid", rnd)
                    break
                except PermissionError:
                    # Another 1.0.2 process has it open to read it (Python
                    # opens files without FILE_SHARE_DELETE).
                    ev("unlockretry", rnd)
                    time.sleep(0.001 * (attempt + 1))
        time.sleep(random.uniform(0, pause_ms / 1000))


# ---------------------------------------------------------------- the orchestrator


class Worker:
    def __init__(self, run, kind: str, slot: int, gen: int):
        self.kind, self.slot, self.gen = kind, slot, gen
        self.log = run.logs / f"{kind}{slot}-{gen}.log"
        self.log.touch()
        if kind == "rust":
            cmd = [run.args.exe, "--folder", str(run.folder), "--log", str(self.log), "--stop", str(run.stop),
                   "--work-ms", str(run.args.work_ms), "--pause-ms", str(run.args.pause_ms),
                   "--timeout-s", str(run.args.timeout)]
            if run.args.rounds:
                cmd += ["--rounds", str(run.args.rounds)]
            if run.args.no_lock:
                cmd.append("--no-lock")
        else:
            cmd = [sys.executable, __file__, "worker102", str(run.folder), str(self.log), str(run.stop),
                   str(run.args.work_ms), str(run.args.pause_ms), str(run.args.rounds or 0),
                   "1" if run.args.no_lock else "0", "1" if run.args.py_one_uuid else "0"]
        # Pipes, not files: under wine 8 Python dies at start-up when its
        # stdout or stderr is a regular file. Workers print only on errors.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.pid = self.proc.pid
        self.killed_at = None  # (ns just before TerminateProcess, ns once it was seen dead)
        self.exit = None
        self.stderr = ""
        self.pos = 0
        self.last = None  # the last event read from its log

    def tail(self):
        """New complete lines of the log (a kill may leave a partial one)."""
        with open(self.log, "rb") as f:
            f.seek(self.pos)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.pos += end
        lines = data[:end].decode().splitlines()
        if lines:
            self.last = lines[-1].split()
        return lines

    def reap(self, timeout=None):
        self.exit = self.proc.wait(timeout=timeout)
        out, err = self.proc.communicate()
        self.stderr = (out + err).decode(errors="replace").strip()

    def holding(self) -> bool:
        return self.last is not None and self.last[1] == "enter"

    def name(self) -> str:
        return f"{self.kind}{self.slot}-{self.gen} (pid {self.pid})"


class Run:
    def __init__(self, args):
        self.args = args
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="lockfolder-mixed-"))
        self.folder = self.root / "lock"
        self.logs = self.root / "logs"
        self.stop = self.root / "stop"
        self.folder.mkdir()
        self.logs.mkdir()
        self.rng = random.Random(args.seed)
        self.workers = []  # every worker ever started, in order
        self.live = {}  # slot key -> Worker
        self.restart_at = {}  # slot key -> time to restart
        self.failures = []
        self.cleared = []  # torn 1.0.2 bids removed by hand, as an operator would
        self.last_enter = time.monotonic()
        self.enters = 0

    def start(self, key):
        kind, slot = key
        gen = sum(1 for w in self.workers if (w.kind, w.slot) == key)
        w = Worker(self, kind, slot, gen)
        self.workers.append(w)
        self.live[key] = w
        self.note(f"{now_ns()} start {w.name()}")

    def poll_logs(self):
        for w in list(self.live.values()):
            for line in w.tail():
                if line.split()[1] == "enter":
                    self.enters += 1
                    self.last_enter = time.monotonic()

    def wait_for_holder(self, kind: str):
        """A live worker of this kind whose last event is `enter`, waited
        for up to a second (1.0.2 workers hold rarely and briefly, so a kill
        at a random moment would almost never find one holding)."""
        give_up = time.monotonic() + 1.0
        while time.monotonic() < give_up:
            candidates = [w for w in self.live.values() if w.kind == kind]
            for w in candidates:
                for line in w.tail():
                    if line.split()[1] == "enter":
                        self.enters += 1
                        self.last_enter = time.monotonic()
            holders = [w for w in candidates if w.holding()]
            if holders:
                return self.rng.choice(holders)
            time.sleep(0.002)
        return None

    def kill(self, w: Worker):
        import psutil

        holding = w.holding()
        sent = now_ns()
        psutil.Process(w.pid).kill()  # TerminateProcess
        w.reap(timeout=30)
        w.killed_at = (sent, now_ns())
        w.tail()
        self.note(f"{sent} kill {w.name()}{' holding' if holding else ''}; seen dead {w.killed_at[1]}")

    def note(self, line: str):
        with open(self.root / "orchestrator.log", "a") as f:
            f.write(line + "\n")

    def entries(self):
        """The folder's entries as (name, size, text) for the report."""
        out = []
        for p in sorted(self.folder.iterdir()):
            try:
                data = p.read_bytes()
            except OSError as e:
                data = f"<{type(e).__name__}>".encode()
            out.append((p.name, len(data), data[:300].decode(errors="replace")))
        return out

    def diagnose_wedge(self) -> bool:
        """Nobody entered for too long. True if the cause is a bid that a
        killed 1.0.2 worker left empty or half-written (1.0.2 writes bids in
        place, and such a bid can never be judged: its documented hazard);
        it is then removed, as an operator would, and counted."""
        uuids = {}
        for w in self.workers:
            if w.kind != "py":
                continue
            with open(w.log, "rb") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 4 and parts[1] in (b"start", b"uuid"):
                        uuids[parts[-1].decode() + ".json"] = w
        torn = []
        for name, size, text in self.entries():
            if not name.endswith(".json"):
                continue
            try:
                json.loads(text)
            except ValueError:
                w = uuids.get(name)
                if w is not None and w.killed_at is not None:
                    torn.append((name, size, w))
        if not torn:
            return False
        for name, size, w in torn:
            try:
                # 1.0.2 workers keep opening it (without FILE_SHARE_DELETE).
                withdraw(self.folder / name, 0)
            except RuntimeError:
                self.note(f"{now_ns()} could not remove the torn bid {name} of {w.name()} yet")
                continue
            self.cleared.append(f"{name} ({size} bytes) of {w.name()}, killed")
            self.note(f"{now_ns()} removed the torn bid {name} of {w.name()}")
        # Explained either way; one not removed yet is tried again later.
        return True

    def main_loop(self):
        a = self.args
        keys = [("rust", i) for i in range(a.rust)] + [("py", i) for i in range(a.py)]
        for key in keys:
            self.start(key)
        t_end = time.monotonic() + a.seconds
        next_kill = time.monotonic() + self.rng.uniform(a.kill_min, a.kill_max) if a.kill_max else None
        while time.monotonic() < t_end:
            time.sleep(0.02)
            self.poll_logs()
            now = time.monotonic()
            for key, w in list(self.live.items()):
                if w.proc.poll() is not None:
                    w.reap()
                    w.tail()
                    del self.live[key]
                    self.failures.append(f"{w.name()} exited by itself, code {w.exit}: {w.stderr or '(no output)'}")
            for key, t in list(self.restart_at.items()):
                if now >= t:
                    del self.restart_at[key]
                    self.start(key)
            if next_kill is not None and now >= next_kill and self.live:
                victim = None
                if self.rng.random() < a.holder_share:
                    victim = self.wait_for_holder(self.rng.choice(("rust", "py")))
                if victim is None:
                    victim = self.rng.choice(list(self.live.values()))
                self.kill(victim)
                del self.live[(victim.kind, victim.slot)]
                self.restart_at[(victim.kind, victim.slot)] = now + self.rng.uniform(0.1, 0.5)
                next_kill = now + self.rng.uniform(a.kill_min, a.kill_max)
            if not a.no_lock and now - self.last_enter > a.wedge:
                if self.diagnose_wedge():
                    self.last_enter = now
                    continue
                self.failures.append(
                    f"WEDGE: nobody entered for {now - self.last_enter:.1f} s; folder: {self.entries()}; "
                    f"live: {[w.name() for w in self.live.values()]}")
                break
        self.stop.touch()
        # Contenders notice the stop file between rounds; one waiting for the
        # lock goes on until it has it (or times out, which is a failure).
        # A torn bid made late in the run would keep them all out: clear it
        # as during the run, once the stop has had a moment to work.
        t_stop = time.monotonic()
        grace = self.args.timeout + STOP_MARGIN
        pending = dict(self.live)
        while pending and time.monotonic() < t_stop + grace:
            for key, w in list(pending.items()):
                if w.proc.poll() is not None:
                    w.reap()
                    w.tail()
                    del pending[key]
                    if w.exit != 0:
                        self.failures.append(
                            f"{w.name()} exited with code {w.exit} at the stop: {w.stderr or '(no output)'}")
            if pending and time.monotonic() > t_stop + 2:
                self.diagnose_wedge()
            time.sleep(0.05)
        for w in pending.values():
            w.proc.kill()
            w.reap(timeout=30)
            w.tail()
            self.failures.append(f"{w.name()} did not stop within {grace:.0f} s of the stop file")


# ---------------------------------------------------------------- replay


def replay(run: Run, t_last: int) -> dict:
    """Merge the logs by time; count overlaps and the rest of the figures."""
    intervals = []  # (start, end, worker, round, how it ended)
    waits = collections.defaultdict(list)
    errors = collections.Counter()
    lost = []
    unlock_retries = 0
    for w in run.workers:
        want = {}
        open_enter = None
        with open(w.log, "rb") as f:
            raw = f.read()
        lines = raw[: raw.rfind(b"\n") + 1].decode().splitlines()
        for line in lines:
            parts = line.split()
            t, event, rnd = int(parts[0]), parts[1], int(parts[2])
            if event == "want":
                want[rnd] = t
            elif event == "enter":
                open_enter = (t, rnd)
                if rnd in want:
                    waits[w.kind].append((t - want[rnd]) / 1e9)
            elif event == "leave":
                if open_enter is not None and open_enter[1] == rnd:
                    intervals.append((open_enter[0], t, w, rnd, "left"))
                open_enter = None
            elif event == "error":
                errors[f"{w.kind}: {parts[3]}"] += 1
            elif event == "lostbid":
                lost.append(f"{w.name()} round {rnd}")
            elif event == "unlockretry":
                unlock_retries += 1
        if open_enter is not None:
            if w.killed_at is not None:
                intervals.append((open_enter[0], w.killed_at[0], w, open_enter[1], "killed"))
            else:
                intervals.append((open_enter[0], t_last, w, open_enter[1], "never left"))
    intervals.sort(key=lambda i: (i[0], i[1]))
    overlaps = []
    in_kill_window = 0
    handovers = collections.defaultdict(list)  # kind of the next holder -> s after a killed holder died
    prev = None  # the interval that ends last so far
    for iv in intervals:
        if prev is not None:
            if iv[0] < prev[1]:
                overlaps.append((prev, iv))
            elif prev[4] == "killed":
                dead = prev[2].killed_at[1]
                if iv[0] <= dead:
                    in_kill_window += 1
                handovers[iv[2].kind].append(max(0, iv[0] - dead) / 1e9)
        if prev is None or iv[1] > prev[1]:
            prev = iv
    kills = [w for w in run.workers if w.killed_at is not None]
    holder_kills = [iv for iv in intervals if iv[4] == "killed"]
    return {
        "intervals": intervals,
        "overlaps": overlaps,
        "in_kill_window": in_kill_window,
        "waits": waits,
        "errors": errors,
        "lost": lost,
        "unlock_retries": unlock_retries,
        "kills": kills,
        "holder_kills": holder_kills,
        "handovers": handovers,
    }


def quantiles(xs):
    if not xs:
        return "-"
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
    return f"median {q(0.5) * 1000:.1f} ms, p99 {q(0.99) * 1000:.1f} ms, max {xs[-1] * 1000:.1f} ms"


def fmt_iv(iv) -> str:
    start, end, w, rnd, how = iv
    return f"{w.name()} round {rnd} [{start} .. {end}] ({how})"


def final_rounds(run: Run):
    """After the run, one round of each kind must get the lock over whatever
    the killed workers left behind."""
    results = []
    run.stop.unlink()
    for kind in ("rust", "py"):
        saved = run.args.rounds
        run.args.rounds = 1
        key = (kind, 99)
        run.start(key)
        w = run.live.pop(key)
        run.args.rounds = saved
        try:
            w.reap(timeout=60)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.reap(timeout=30)
        entered = any(line.split()[1] == "enter" for line in w.tail())
        results.append((kind, w.exit == 0 and entered, w.exit, w.stderr))
    return results


def run_main(argv: list) -> int:
    p = argparse.ArgumentParser(prog="mixed.py run")
    p.add_argument("--exe", required=True, help="the Windows contend.exe")
    p.add_argument("--rust", type=int, default=3, help="Rust contenders")
    p.add_argument("--py", type=int, default=3, help="lockfolder 1.0.2 workers")
    p.add_argument("--seconds", type=float, default=90)
    p.add_argument("--kill-min", type=float, default=0.5, help="seconds between kills, at least")
    p.add_argument("--kill-max", type=float, default=2.0, help="and at most (0: no kills)")
    p.add_argument("--holder-share", type=float, default=0.5, help="share of kills aimed at a holder")
    p.add_argument("--work-ms", type=int, default=20, help="longest time inside")
    p.add_argument("--pause-ms", type=int, default=30, help="longest pause between rounds")
    p.add_argument("--timeout", type=int, default=30, help="a Rust contender's longest wait (s)")
    p.add_argument("--wedge", type=float, default=15, help="no entry for this long (s) is a wedge")
    p.add_argument("--rounds", type=int, default=0, help="rounds per worker (0: until stopped)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-lock", action="store_true", help="self-test: nobody locks; overlaps must be seen")
    p.add_argument("--keep", action="store_true", help="keep the folder and logs")
    p.add_argument("--py-one-uuid", action="store_true",
                   help="1.0.2 workers keep one bid name per process, as 1.0.2 does (loses bids under wine)")
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1 << 32)
    import psutil

    run = Run(args)
    print(f"mixed: {args.rust} Rust + {args.py} lockfolder 1.0.2 (psutil {psutil.__version__}), "
          f"{args.seconds:.0f} s, "
          f"{f'kills every {args.kill_min}-{args.kill_max} s' if args.kill_max else 'no kills'}, seed {args.seed}"
          f"{', NO LOCK (self-test)' if args.no_lock else ''}; in {run.root}", flush=True)
    wall0, mono0 = time.time_ns(), time.perf_counter_ns()
    t0 = time.monotonic()
    try:
        run.main_loop()
        t_last = now_ns()
        elapsed = time.monotonic() - t0
        drift_ms = ((time.time_ns() - wall0) - (time.perf_counter_ns() - mono0)) / 1e6
        r = replay(run, t_last)
        final = [] if args.no_lock or run.failures else final_rounds(run)
        leftovers = run.entries()
    finally:
        for w in run.live.values():
            if w.proc.poll() is None:
                w.proc.kill()
    by_kind = collections.Counter(iv[2].kind for iv in r["intervals"])
    started = collections.Counter(w.kind for w in run.workers)
    killed = collections.Counter(w.kind for w in r["kills"])
    held_killed = collections.Counter(iv[2].kind for iv in r["holder_kills"])
    print(f"ran {elapsed:.1f} s; workers started: rust {started['rust']}, py {started['py']}")
    print(f"acquisitions: rust {by_kind['rust']}, 1.0.2 {by_kind['py']} ({len(r['intervals'])} in all)")
    print(f"kills (TerminateProcess): {len(r['kills'])} (rust {killed['rust']}, py {killed['py']}); "
          f"of holders: {len(r['holder_kills'])} (rust {held_killed['rust']}, py {held_killed['py']})")
    for kind in ("rust", "py"):
        print(f"wait for the lock, {kind}: {quantiles(r['waits'][kind])}")
    for kind in ("rust", "py"):
        if r["handovers"][kind]:
            print(f"next entry after a killed holder died, by {kind} ({len(r['handovers'][kind])}): "
                  f"{quantiles(r['handovers'][kind])}")
    print(f"entries between a holder's kill and its death being seen: {r['in_kill_window']}")
    print(f"1.0.2 exceptions in lock() (retried): {dict(r['errors']) or 0}; unlock retries: {r['unlock_retries']}")
    print(f"torn 1.0.2 bids of killed workers removed by hand: {len(run.cleared)} {run.cleared or ''}")
    print(f"clock: wall minus monotonic over the run {drift_ms:+.3f} ms")
    for kind, ok, code, err in final:
        print(f"final round, {kind}: {'took the lock' if ok else f'FAILED (exit {code}: {err})'}")
    print(f"left in the folder at the end: {len(leftovers)}")
    for name, size, text in leftovers:
        print(f"    {name} ({size} bytes) {text[:160]}")
    print(f"OVERLAPS: {len(r['overlaps'])}")
    for a, b in r["overlaps"][: 3 if args.no_lock else 20]:
        print(f"    {fmt_iv(a)}\n      and {fmt_iv(b)}")
    for f in run.failures:
        print(f"FAILURE: {f}")
    for item in r["lost"]:
        print(f"LOST BID: {item}")

    if args.no_lock:
        ok = len(r["overlaps"]) > 0
        print("self-test: " + ("the probe sees overlaps without the lock" if ok else "FAILED: no overlap seen"))
    else:
        problems = []
        if r["overlaps"]:
            problems.append("overlaps")
        if run.failures:
            problems.append("failures")
        if r["lost"]:
            problems.append("lost bids")
        if abs(drift_ms) > 50:
            problems.append("the wall clock stepped: the merge by time is not to be trusted")
        if by_kind["rust"] == 0 or by_kind["py"] == 0:
            problems.append("one kind never took the lock")
        if args.kill_max and not r["kills"]:
            problems.append("nobody was killed")
        if any(not ok for _, ok, _, _ in final):
            problems.append("a final round failed")
        ok = not problems
        print("mixed run: " + ("PASS" if ok else "FAIL: " + ", ".join(problems)))
    if ok and not args.keep:
        shutil.rmtree(run.root, ignore_errors=True)
    else:
        print(f"kept {run.root}")
    return 0 if ok else 1


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "worker102":
        return worker102(sys.argv[2:])
    if len(sys.argv) >= 2 and sys.argv[1] == "run":
        return run_main(sys.argv[2:])
    print(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main())
