"""One LockFolder object shared by threads or asyncio tasks: every
acquisition is a bid of its own, owned by its thread or task, and each kind
of lock keeps its promise among them, as a process outside sees it."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from lockfolder import LockFolder

from conftest import Children, bids, read_line

# A process outside: for each line {"kwargs": {...}} it reads, it makes one
# try_acquire() with a LockFolder opened with those arguments (releasing at
# once if it got in) and prints whether it got in.
PROBE = """
    import json, sys
    from lockfolder import LockFolder
    folder = sys.argv[1]
    print("ready", flush=True)
    for line in sys.stdin:
        lock = LockFolder(folder, **json.loads(line)["kwargs"])
        got = lock.try_acquire()
        if got:
            lock.release()
        print(json.dumps(got), flush=True)
"""


class Probe:
    def __init__(self, children: Children, folder: Path) -> None:
        self.p = children.python(PROBE, str(folder), stdin=subprocess.PIPE)
        assert read_line(self.p) == "ready"

    def gets_in(self, **kwargs: Any) -> bool:
        assert self.p.stdin is not None
        self.p.stdin.write(json.dumps({"kwargs": kwargs}) + "\n")
        self.p.stdin.flush()
        got = json.loads(read_line(self.p))
        assert isinstance(got, bool)
        return got


# What each worker reports: ("in", i, bid path, is_locked) once it holds the
# lock, ("out", i, bid path, is_locked after release) once it released it.
Report = Tuple[str, int, Optional[str], bool]


class Threads:
    """Workers that are threads sharing `lock`."""

    def __init__(self, lock: LockFolder, n: int) -> None:
        self.lock = lock
        self.reports: "queue.Queue[Report]" = queue.Queue()
        self.go = [threading.Event() for _ in range(n)]
        self.threads = [threading.Thread(target=self.work, args=(i,)) for i in range(n)]
        for t in self.threads:
            t.start()

    def work(self, i: int) -> None:
        try:
            self.lock.acquire(timeout=30)
            self.reports.put(("in", i, str(self.lock.bid_path), self.lock.is_locked))
            self.go[i].wait(30)
            bid = str(self.lock.bid_path)
            self.lock.release()
            self.reports.put(("out", i, bid, self.lock.is_locked))
        except BaseException as e:  # reported to the test, which fails
            self.reports.put(("error", i, repr(e), False))

    def leave(self, i: int) -> None:
        self.go[i].set()

    def finish(self) -> None:
        for g in self.go:
            g.set()
        for t in self.threads:
            t.join(30)
            assert not t.is_alive()


class Tasks:
    """Workers that are asyncio tasks sharing `lock`, on an event loop run by
    a thread of its own (so the test can block while they wait)."""

    def __init__(self, lock: LockFolder, n: int) -> None:
        self.lock = lock
        self.n = n
        self.reports: "queue.Queue[Report]" = queue.Queue()
        self.started = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self.main(),))
        self.thread.start()
        assert self.started.wait(30)

    async def main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.go = [asyncio.Event() for _ in range(self.n)]
        tasks = [asyncio.create_task(self.work(i)) for i in range(self.n)]
        self.started.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)

    async def work(self, i: int) -> None:
        try:
            await self.lock.acquire_async(timeout=30)
            self.reports.put(("in", i, str(self.lock.bid_path), self.lock.is_locked))
            await self.go[i].wait()
            bid = str(self.lock.bid_path)
            self.lock.release()
            self.reports.put(("out", i, bid, self.lock.is_locked))
        except BaseException as e:
            self.reports.put(("error", i, repr(e), False))

    def leave(self, i: int) -> None:
        self.loop.call_soon_threadsafe(self.go[i].set)

    def finish(self) -> None:
        if self.thread.is_alive():  # a failed test: let every task go
            for i in range(self.n):
                try:
                    self.leave(i)
                except RuntimeError:  # the loop has just ended
                    break
        self.thread.join(60)
        assert not self.thread.is_alive()


def next_report(w: "Threads | Tasks", timeout: float = 30) -> Report:
    r = w.reports.get(timeout=timeout)
    if r[0] == "error":  # show what the folder held, to tell why
        seen = [
            (h.name, h.kind, h.state, h.pid, h.mode, h.slots, h.waiting_since)
            for h in w.lock.holders()
        ]
        raise AssertionError(f"worker {r[1]} failed: {r[2]}; the folder holds {seen}")
    return r


# kind -> (LockFolder arguments, how many may hold at once, workers)
KINDS: Dict[str, Tuple[Dict[str, Any], int, int]] = {
    "exclusive": ({}, 1, 2),
    "shared": ({"shared": True}, 3, 3),
    "slots=2": ({"slots": 2}, 2, 3),
}


@pytest.mark.parametrize("workers", ["threads", "tasks"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_one_object_shared_keeps_each_kinds_promise(
    kind: str, workers: str, tmp_path: Path, children: Children
) -> None:
    kwargs, capacity, n = KINDS[kind]
    folder = tmp_path / "lock"
    lock = LockFolder(folder, **kwargs)
    probe = Probe(children, folder)
    w: "Threads | Tasks" = Threads(lock, n) if workers == "threads" else Tasks(lock, n)
    try:
        inside: Dict[int, str] = {}
        for _ in range(capacity):
            word, i, bid, mine = next_report(w)
            assert (word, mine) == ("in", True)
            assert bid is not None
            inside[i] = bid
        if n > capacity:
            # The others wait their turn: nobody else gets in while it is full.
            with pytest.raises(queue.Empty):
                w.reports.get(timeout=0.5)
        # Every holder has a bid of its own, all of them on disk.
        assert len(set(inside.values())) == capacity
        assert all(os.path.exists(b) for b in inside.values())
        # From outside: full for another contender of the same kind; a shared
        # lock admits another reader but no writer.
        if kind == "shared":
            assert probe.gets_in() is False
            assert probe.gets_in(shared=True) is True
        else:
            assert probe.gets_in(**kwargs) is False
        # This thread holds nothing: its release() is an error and releases
        # nobody else's acquisition.
        assert not lock.is_locked and lock.bid_path is None
        with pytest.raises(RuntimeError, match="does not hold"):
            lock.release()
        assert all(os.path.exists(b) for b in inside.values())

        # One holder leaves: exactly its own bid goes, the others stay.
        # (If a waiter takes its turn, it may report before the leaver.)
        first = min(inside)
        w.leave(first)
        reports = sorted(next_report(w) for _ in range(2 if n > capacity else 1))
        assert reports[-1] == ("out", first, inside[first], False)
        assert not os.path.exists(inside.pop(first))
        if n > capacity:
            # The waiter took its turn, with a new bid; still full outside.
            word, i, bid, mine = reports[0]
            assert (word, mine) == ("in", True)
            assert i not in inside and i != first and bid is not None
            inside[i] = bid
            assert all(os.path.exists(b) for b in inside.values())
            assert probe.gets_in(**kwargs) is False
        elif kind == "shared":
            assert probe.gets_in() is False  # readers are still inside
        assert all(os.path.exists(b) for b in inside.values())
        for i in sorted(inside):
            w.leave(i)
            word, j, bid, mine = next_report(w)
            assert (word, j, bid, mine) == ("out", i, inside[i], False)
        assert probe.gets_in() is True
        assert bids(folder) == []
    finally:
        w.finish()
    assert w.reports.empty()


# --------------------------------------------------------- release rules ---


def test_release_of_an_unheld_lock_is_an_error(tmp_path: Path) -> None:
    lock = LockFolder(tmp_path)
    with pytest.raises(RuntimeError, match="not held"):
        lock.release()
    lock.acquire()
    lock.release()
    with pytest.raises(RuntimeError, match="not held"):
        lock.release()  # twice
    assert bids(tmp_path) == []


def test_acquired_releases_its_own_acquisition_anywhere(tmp_path: Path) -> None:
    """Leaving `with lock.acquire():` releases the acquisition acquire()
    made, even when the block ends in another thread."""
    lock = LockFolder(tmp_path)
    handle = lock.acquire()
    bid = lock.bid_path
    assert bid is not None and bid.exists()
    errors: List[BaseException] = []

    def leave() -> None:
        try:
            handle.__exit__(None, None, None)
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=leave)
    t.start()
    t.join(30)
    assert errors == [] and not bid.exists()
    assert not lock.is_locked
    with pytest.raises(RuntimeError, match="already released"):
        handle.__exit__(None, None, None)


def test_acquisition_of_an_ended_thread_passes_on(tmp_path: Path) -> None:
    """A thread that ends holding the lock leaves an acquisition nobody else
    could release: the next caller that holds none takes it over."""
    lock = LockFolder(tmp_path)
    t = threading.Thread(target=lock.acquire)
    t.start()
    t.join(30)
    (bid,) = bids(tmp_path)
    assert lock.is_locked  # taken over by this thread
    assert lock.bid_path is not None and lock.bid_path.name == bid
    with pytest.raises(RuntimeError, match="not reentrant"):
        lock.acquire(timeout=1)
    lock.release()
    assert bids(tmp_path) == []


def test_a_live_thread_keeps_its_acquisition(tmp_path: Path) -> None:
    lock = LockFolder(tmp_path)
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            done.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(30)
        assert not lock.is_locked
        with pytest.raises(RuntimeError, match="does not hold"):
            lock.release()
        assert len(bids(tmp_path)) == 1
    finally:
        done.set()
        t.join(30)
    assert bids(tmp_path) == []


def test_wait_for_and_tasks_that_end_holding(tmp_path: Path) -> None:
    """`asyncio.wait_for(lock.acquire_async(), t)` runs the wait in a task of
    its own on Python < 3.12; `create_task(lock.acquire_async())` always
    does. The acquisition passes to the task that goes on using the lock."""

    async def main() -> None:
        lock = LockFolder(tmp_path)
        await asyncio.wait_for(lock.acquire_async(), 10)
        assert lock.is_locked
        lock.release()
        t = asyncio.create_task(lock.acquire_async())
        await t
        assert lock.is_locked and len(bids(tmp_path)) == 1
        lock.release()

    asyncio.run(main())
    assert bids(tmp_path) == []
