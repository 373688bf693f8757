"""Python workers for lockfolder's benchmark.

The orchestrator (``lockfolder-bench suite``, see ``bench/README.md``) starts
this script exactly as it starts its own Rust workers, with the same arguments,
and reads the same output:

    python peers.py worker LOCK MODE PATH [--counter F --id I --start NS --end NS]
                                          [--iters N] [--secs S] [--timeout S]
    python peers.py versions

LOCK is one of: self (lockfolder's own Python face), filelock, softfilelock,
fasteners, portalocker, flufl, lf102 (lockfolder 1.0.2 from PyPI). Each lock is
used the way its documentation shows, with its default polling settings; the
only setting we choose is flufl.lock's lifetime (FLUFL_LIFETIME), which it
requires. lockfolder 1.0.2 has no waiting of its own, so its waiter retries with
the jittered exponential backoff its README recommends (1 ms doubling to 50 ms).

Modes and output are described in ``bench/src/worker.rs``.
"""

import json
import os
import random
import sys
import threading
import time

FLUFL_LIFETIME = 3.0  # seconds; reported next to flufl.lock's recovery time


def mono_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Peer:
    """acquire(timeout) -> bool, try_acquire() -> bool, release()."""

    def exceptions(self):
        """Exceptions the lock raised and the worker caught, by type name."""
        return {}

    def try_acquire(self):
        return self.acquire(0.0)


class SelfFace(Peer):
    def __init__(self, path):
        import lockfolder

        self.lock = lockfolder.LockFolder(path)

    def try_acquire(self):
        return bool(self.lock.try_acquire())

    def acquire(self, timeout):
        try:
            return bool(self.lock.acquire(timeout=timeout))
        except TimeoutError:
            return False

    def release(self):
        self.lock.release()


class FileLockPeer(Peer):
    def __init__(self, path, soft):
        import filelock

        self.timeout_error = filelock.Timeout
        self.lock = (filelock.SoftFileLock if soft else filelock.FileLock)(path)

    def acquire(self, timeout):
        try:
            self.lock.acquire(timeout=timeout)
            return True
        except self.timeout_error:
            return False

    def try_acquire(self):
        return self.acquire(0)

    def release(self):
        self.lock.release()


class FastenersPeer(Peer):
    def __init__(self, path):
        import fasteners

        self.lock = fasteners.InterProcessLock(path)

    def acquire(self, timeout):
        return bool(self.lock.acquire(blocking=True, timeout=timeout))

    def try_acquire(self):
        return bool(self.lock.acquire(blocking=False))

    def release(self):
        self.lock.release()


class PortalockerPeer(Peer):
    def __init__(self, path):
        import portalocker

        self.portalocker = portalocker
        self.path = path
        self.lock = None

    def acquire(self, timeout):
        return self._take(self.portalocker.Lock(self.path, timeout=timeout))

    def try_acquire(self):
        return self._take(
            self.portalocker.Lock(self.path, timeout=0, fail_when_locked=True))

    def _take(self, lock):
        try:
            lock.acquire()
        except self.portalocker.exceptions.LockException:
            return False
        self.lock = lock
        return True

    def release(self):
        self.lock.release()
        self.lock = None


class FluflPeer(Peer):
    def __init__(self, path):
        from datetime import timedelta

        import flufl.lock

        self.flufl = flufl.lock
        self.timedelta = timedelta
        self.lock = flufl.lock.Lock(path, lifetime=timedelta(seconds=FLUFL_LIFETIME))

    def acquire(self, timeout):
        try:
            self.lock.lock(timeout=self.timedelta(seconds=timeout))
            return True
        except self.flufl.TimeOutError:
            return False

    def try_acquire(self):
        try:
            self.lock.lock(timeout=self.timedelta(0))
            return True
        except self.flufl.TimeOutError:
            return False

    def release(self):
        self.lock.unlock()


class Lf102Peer(Peer):
    def __init__(self, path):
        import pathlib

        from lockfolder import lockfolder

        self.lf = lockfolder
        self.path = pathlib.Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.errors = {}
        lockfolder.setup()

    def try_acquire(self):
        return self.attempt()

    def attempt(self):
        # 1.0.2 writes its bid in place (open, then json.dump), so a rival's
        # check can read it half-written and raise; a check can also meet a
        # bid deleted since the listing. Both escape lock(). We count them,
        # withdraw our bid if the error struck after bidding, and call the
        # attempt failed, as a careful caller of 1.0.2 would have to.
        try:
            return bool(self.lf.lock(self.path))
        except (ValueError, OSError) as e:
            kind = type(e).__name__
            self.errors[kind] = self.errors.get(kind, 0) + 1
            try:
                if self.lf.have_lock(self.path):
                    self.lf.unlock(self.path)
            except OSError:
                pass
            return False

    def exceptions(self):
        return dict(self.errors)

    def acquire(self, timeout):
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            if self.attempt():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay * (0.5 + 0.5 * random.random()))
            delay = min(delay * 2, 0.05)

    def release(self):
        self.lf.unlock(self.path)


def open_peer(name, path):
    if name == "self":
        return SelfFace(path)
    if name == "filelock":
        return FileLockPeer(path, soft=False)
    if name == "softfilelock":
        return FileLockPeer(path, soft=True)
    if name == "fasteners":
        return FastenersPeer(path)
    if name == "portalocker":
        return PortalockerPeer(path)
    if name == "flufl":
        return FluflPeer(path)
    if name == "lf102":
        return Lf102Peer(path)
    raise ValueError(f"unknown lock {name!r}")


def read_counter(path):
    with open(path) as f:
        count, holder, ts = f.read().split()
    return int(count), int(holder), int(ts)


def write_counter(path, count, holder, ts):
    with open(path, "w") as f:
        f.write(f"{count} {holder} {ts}\n")


def parse_opts(rest):
    opts = {"counter": None, "id": 0, "start": 0, "end": 0, "iters": 1000, "secs": 5.0, "timeout": 30.0}
    kinds = {"counter": str, "id": int, "start": int, "end": int, "iters": int, "secs": float, "timeout": float}
    it = iter(rest)
    for key in it:
        name = key.lstrip("-")
        if name not in kinds:
            raise ValueError(f"unknown option {key}")
        opts[name] = kinds[name](next(it))
    return opts


def worker(args):
    lock_name, mode, path, *rest = args
    o = parse_opts(rest)
    lock = open_peer(lock_name, path)
    if mode == "uncontended":

        def cycle(n):
            for _ in range(n):
                if not lock.try_acquire():
                    raise RuntimeError("uncontended lock was busy")
                lock.release()

        cycle(o["iters"] // 10 + 1)
        t0 = mono_ns()
        cycle(o["iters"])
        say(json.dumps({"ns_per_op": (mono_ns() - t0) / o["iters"]}))
    elif mode == "hot":
        counter, me = o["counter"], o["id"]
        while mono_ns() < o["start"]:
            time.sleep(min((o["start"] - mono_ns()) / 1e9, 0.05) if o["start"] > mono_ns() else 0)
        acq, lat, timeouts = 0, [], 0
        while mono_ns() < o["end"]:
            if not lock.acquire(o["timeout"]):
                timeouts += 1  # waited far longer than any hold: a stall
                break
            t_acq = mono_ns()
            count, prev, ts = read_counter(counter)
            if prev >= 0 and prev != me:
                lat.append(max(t_acq - ts, 0))
            acq += 1
            write_counter(counter, count + 1, me, mono_ns())
            lock.release()
        say(json.dumps({"acq": acq, "lat": lat, "timeouts": timeouts, "exceptions": lock.exceptions()}))
    elif mode == "hold":
        if not lock.acquire(o["timeout"]):
            raise RuntimeError("could not take the lock to hold it")
        say("held")
        while True:
            time.sleep(3600)
    elif mode == "wait":
        say("waiting")
        if lock.acquire(o["timeout"]):
            say(f"acquired {mono_ns()}")
            lock.release()
        else:
            say("timeout")
    elif mode == "cpu":
        secs = o["secs"]

        def measure():
            c0, w0 = time.process_time_ns(), mono_ns()
            time.sleep(secs)
            c1, w1 = time.process_time_ns(), mono_ns()
            say(json.dumps({"cpu_ns": c1 - c0, "wall_ns": w1 - w0}))
            os._exit(0)

        threading.Thread(target=measure, daemon=True).start()
        say("waiting")
        if lock.acquire(o["timeout"]):
            raise RuntimeError("the waiter acquired a lock that was held")
        raise RuntimeError("the waiter timed out before the measurement ended")
    else:
        raise ValueError(f"unknown mode {mode!r}")


def versions():
    from importlib import metadata

    names = ["lockfolder", "filelock", "fasteners", "portalocker", "flufl.lock", "psutil"]
    found = []
    for n in names:
        try:
            found.append(f"{n} {metadata.version(n)}")
        except metadata.PackageNotFoundError:
            pass
    say(f"Python {sys.version.split()[0]}; " + ", ".join(found))


def main():
    if sys.argv[1:2] == ["versions"]:
        versions()
        return 0
    if sys.argv[1:2] != ["worker"]:
        sys.stderr.write(__doc__)
        return 2
    try:
        worker(sys.argv[2:])
    except Exception as e:  # reported to the orchestrator, which shows it in the table
        say(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
