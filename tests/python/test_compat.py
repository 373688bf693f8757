"""lockfolder 1.x compatibility: the module-level functions, the 1.0.2 README
example verbatim, and processes running the real lockfolder 1.0.2 sharing a
folder with this package."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import time
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from lockfolder import lockfolder as lf1

from conftest import HOLDER, Children, bids, check_typed, finish, legacy_python, read_line

# The usage example of lockfolder 1.0.2's README, character for character
# (its "..." is a valid statement).
README_EXAMPLE = '''\
import pathlib
from lockfolder import lockfolder

lockfolder.init()

p = pathlib.Path("path/to/lockfolder")

if lockfolder.lock(p):
    print("aquired lock")
    ...
    lockfolder.unlock(p)
else:
    print("failed to aquire lock")
'''


def test_readme_example_runs_unchanged(tmp_path: Path, children: Children) -> None:
    script = tmp_path / "example.py"
    script.write_text(README_EXAMPLE)
    folder = tmp_path / "path" / "to" / "lockfolder"
    # First without the folder, then with it (left empty by the first run).
    for exists_before in (False, True):
        assert folder.is_dir() == exists_before
        rc, out, err = finish(children.start([_py(), str(script)], cwd=tmp_path))
        assert (rc, out) == (0, "aquired lock\n"), err
        assert bids(folder) == []
    # And while another process holds the lock, it fails politely.
    holder = children.python(HOLDER, str(folder), "60")
    read_line(holder)
    rc, out, err = finish(children.start([_py(), str(script)], cwd=tmp_path))
    assert (rc, out) == (0, "failed to aquire lock\n"), err


def _py() -> str:
    import sys

    return sys.executable


def test_module_functions(tmp_path: Path, children: Children) -> None:
    lf1.init()
    lf1.setup()
    p = tmp_path / "lf"
    assert lf1.lock(p) is True  # created on the way
    assert lf1.have_lock(p) and lf1.have_lock(str(p))
    assert lf1.lock(str(p)) is True  # already ours: still True, no second bid
    assert len(bids(p)) == 1
    assert lf1.in_use(p) is False  # our own bid does not count
    lf1.unlock(str(p))
    assert not lf1.have_lock(p) and bids(p) == []
    with pytest.raises(FileNotFoundError):
        lf1.unlock(p)
    holder = children.python(HOLDER, str(p), "60")
    _, pid, bid = read_line(holder).split()
    assert lf1.in_use(p) is True
    assert lf1.lock(p) is False
    assert lf1.challenge(pathlib.Path(bid)) is False  # live: kept
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    assert lf1.challenge(bid) is True  # stale: removed
    assert bids(p) == []
    assert lf1.in_use(p) is False
    assert lf1.lock(p) is True
    lf1.unlock(p)


def _created(pid: int) -> int:
    """What 1.0.2 writes as CREATED: the process start time in whole Unix
    seconds (psutil's create_time(), computed here from /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
    btime = next(int(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
    return int(btime + ticks / os.sysconf("SC_CLK_TCK"))


def test_reads_a_legacy_bid(tmp_path: Path, children: Children) -> None:
    """A 1.0.2 bid of a live process blocks; once the process is gone it is
    stale and removed."""
    from lockfolder import LockFolder

    sleeper = children.start([_py(), "-c", "import time; time.sleep(60)"])
    bid = tmp_path / "2b3e9c1e-7d0a-4c55-9d1b-5a4c3e2f1a0b.json"
    bid.write_text(json.dumps({"PID": sleeper.pid, "CREATED": _created(sleeper.pid)}))
    lock = LockFolder(tmp_path)
    (h,) = lock.holders()
    assert (h.kind, h.state, h.pid, h.host) == ("legacy-bid", "live", sleeper.pid, None)
    check_typed(h)
    assert lock.try_acquire() is False
    assert lf1.in_use(tmp_path) and lf1.challenge(bid) is False
    os.kill(sleeper.pid, signal.SIGKILL)
    sleeper.wait(10)
    assert [h.state for h in lock.holders()] == ["stale"]
    assert lf1.challenge(bid) is True and not bid.exists()


LEGACY_WORKER = """
    import json, os, random, sys, time, traceback
    from lockfolder import lockfolder
    folder, marker, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    import pathlib
    p = pathlib.Path(folder)
    lockfolder.setup()
    # Record every failure of 1.0.2's challenge() with the file it was reading.
    failures = []
    real_challenge = lockfolder.challenge
    def challenge(path):
        try:
            return real_challenge(path)
        except Exception as e:
            failures.append([path.name, type(e).__name__])
            raise
    lockfolder.challenge = challenge
    held = crashes = overlaps = 0
    end = time.time() + seconds
    while time.time() < end:
        try:
            got = lockfolder.lock(p)
        except Exception:
            crashes += 1
            got = False
            try:
                lockfolder.unlock(p)  # a crash after bidding leaves our bid
            except FileNotFoundError:
                pass
        if got:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                overlaps += 1
            time.sleep(0.002)
            try:
                os.unlink(marker)
            except FileNotFoundError:
                overlaps += 1
            held += 1
            lockfolder.unlock(p)
        time.sleep(random.uniform(0.0, 0.004))
    print(json.dumps({"held": held, "crashes": crashes, "overlaps": overlaps,
                      "failures": failures}), flush=True)
"""

OUR_WORKER = """
    import json, os, random, sys, time
    from lockfolder import LockFolder, LockTimeout
    from lockfolder import lockfolder as lf1
    folder, marker, seconds, style = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    lock = LockFolder(folder)
    held = overlaps = timeouts = 0
    end = time.time() + seconds
    while time.time() < end:
        if style == "wait":
            try:
                lock.acquire(timeout=1.0)
                got = True
            except LockTimeout:
                timeouts += 1
                got = False
        else:
            got = lf1.lock(folder)
        if got:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                overlaps += 1
            time.sleep(0.002)
            try:
                os.unlink(marker)
            except FileNotFoundError:
                overlaps += 1
            held += 1
            if style == "wait":
                lock.release()
            else:
                lf1.unlock(folder)
        time.sleep(random.uniform(0.0, 0.004))
    print(json.dumps({"held": held, "overlaps": overlaps, "timeouts": timeouts}), flush=True)
"""


def test_mixed_with_lockfolder_102(tmp_path: Path, children: Children) -> None:
    legacy = legacy_python()
    if legacy is None:
        pytest.skip("LOCKFOLDER_LEGACY_PYTHON is not set (scripts/test-python.sh sets it)")
    folder, marker = tmp_path / "lock", tmp_path / "inside"
    folder.mkdir()
    seconds = "6"
    olds = [children.python(LEGACY_WORKER, str(folder), str(marker), seconds, python=legacy)
            for _ in range(2)]
    news = [children.python(OUR_WORKER, str(folder), str(marker), seconds, style)
            for style in ("wait", "try")]
    old_results = []
    for p in olds:
        rc, out, err = finish(p)
        assert rc == 0, err
        old_results.append(json.loads(out))
    new_results = []
    for p in news:
        rc, out, err = finish(p)
        assert rc == 0, err
        new_results.append(json.loads(out))
    print("1.0.2:", old_results, "2.0:", new_results)
    assert all(r["overlaps"] == 0 for r in old_results + new_results)
    # 1.0.2 may trip over its own races (a 1.0.2 bid read half-written, a bid
    # that vanished between listing and reading), never over one of our bids:
    # ours are UUIDv7 names (version digit 7), 1.0.2's are UUIDv4.
    ours_failed = [f for r in old_results for f in r["failures"]
                   if f[0][14] == "7" and f[1] != "FileNotFoundError"]
    assert ours_failed == []
    assert all(r["held"] > 0 for r in new_results)
    assert sum(r["held"] for r in old_results) > 0
    assert bids(folder) == []


# ------------------------------------------------ threads of one process ---


def test_the_lock_belongs_to_the_process(tmp_path: Path, children: Children) -> None:
    """As in 1.0.2, every thread of the process shares its lock: a second
    thread's lock() is True too, and any thread's unlock() releases it."""
    import threading

    p = tmp_path / "lf"
    results: Dict[str, object] = {}

    def in_thread(name: str, fn: Callable[[], object]) -> None:
        def run() -> None:
            try:
                results[name] = fn()
            except BaseException as e:
                results[name] = e

        t = threading.Thread(target=run)
        t.start()
        t.join(30)

    in_thread("a-lock", lambda: lf1.lock(p))
    in_thread("b-lock", lambda: lf1.lock(p))
    in_thread("b-have", lambda: lf1.have_lock(p))
    assert (results["a-lock"], results["b-lock"], results["b-have"]) == (True, True, True)
    assert len(bids(p)) == 1  # one bid for the process
    outside = children.python(
        "import sys; from lockfolder import lockfolder as lf; print(lf.lock(sys.argv[1]))", str(p)
    )
    rc, out, err = finish(outside)
    assert (rc, out.strip()) == (0, "False"), err  # another process is kept out
    in_thread("b-unlock", lambda: lf1.unlock(p))
    in_thread("a-have", lambda: lf1.have_lock(p))
    in_thread("a-unlock", lambda: lf1.unlock(p))
    assert results["b-unlock"] is None and results["a-have"] is False
    assert isinstance(results["a-unlock"], FileNotFoundError)
    assert bids(p) == []


# Lists the folder argv[1] in a loop until the file argv[2] exists; prints
# the largest number of bids it saw at once.
WATCHER = """
    import os, sys
    folder, stop = sys.argv[1], sys.argv[2]
    most = 0
    print("watching", flush=True)
    while not os.path.exists(stop):
        try:
            most = max(most, sum(n.endswith(".json") for n in os.listdir(folder)))
        except FileNotFoundError:
            pass
    print(most, flush=True)
"""


def test_functions_from_several_threads_at_once(tmp_path: Path, children: Children) -> None:
    """Concurrent calls from several threads leave a consistent state: never
    two bids of the process (seen from outside), lock() never refused and
    in_use() never True because of the process's own bid, unlock() only ever
    raising FileNotFoundError."""
    import random
    import threading

    p, stop = tmp_path / "lf", tmp_path / "stop"
    p.mkdir()
    watcher = children.python(WATCHER, str(p), str(stop))
    assert read_line(watcher) == "watching"
    problems: List[str] = []
    counts = {"locked": 0, "unlocked": 0, "not-held": 0}
    guard = threading.Lock()

    def work(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            for _ in range(400):
                r = rnd.random()
                if r < 0.2:
                    if lf1.in_use(p):
                        problems.append("in_use() took this process's own bid for a rival's")
                elif r < 0.6:
                    if not lf1.lock(p):
                        problems.append("lock() was refused with no other process")
                    with guard:
                        counts["locked"] += 1
                else:
                    try:
                        lf1.unlock(p)
                        with guard:
                            counts["unlocked"] += 1
                    except FileNotFoundError:
                        with guard:
                            counts["not-held"] += 1
        except BaseException as e:
            problems.append(repr(e))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    stop.touch()
    rc, out, err = finish(watcher)
    assert rc == 0, err
    print(counts, "most bids seen at once:", out.strip())
    assert problems == []
    assert int(out) <= 1
    assert counts["unlocked"] > 0 and counts["not-held"] > 0
    assert lf1.have_lock(p) == (len(bids(p)) == 1)
    if lf1.have_lock(p):
        lf1.unlock(p)
    assert bids(p) == []
