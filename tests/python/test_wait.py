"""Waiting: Ctrl-C during a blocking wait, asyncio, cancellation."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import List

import pytest

from lockfolder import CancelToken, LockCancelled, LockFolder, LockTimeout

from conftest import HOLDER, Children, bids, finish, read_line

WAITER = """
    import os, sys, time
    from lockfolder import LockFolder
    lock = LockFolder(sys.argv[1])
    print("waiting", flush=True)
    try:
        lock.acquire()
        print("acquired", flush=True)
    except KeyboardInterrupt:
        print("interrupted", repr(time.time()), flush=True)
        sys.exit(42)
"""


@pytest.mark.parametrize("blocker", ["holder-process", "non-bid-entry"])
def test_ctrl_c_interrupts_a_wait(tmp_path: Path, children: Children, blocker: str) -> None:
    if blocker == "holder-process":
        holder = children.python(HOLDER, str(tmp_path), "60")
        read_line(holder)
    else:
        # An entry that is not a bid blocks the lock but carries no place in
        # the queue, so the waiter publishes its bid and waits first in line:
        # the interrupt must withdraw it.
        (tmp_path / "notes.txt").write_text("blocks")
    before = bids(tmp_path)
    waiter = children.python(WAITER, str(tmp_path))
    assert read_line(waiter) == "waiting"
    # Let it settle into its wait (and, with the non-bid entry, bid).
    deadline = time.monotonic() + 10
    while blocker == "non-bid-entry" and len(bids(tmp_path)) < 2:
        assert time.monotonic() < deadline, "the waiter never queued its bid"
        time.sleep(0.01)
    time.sleep(0.3)
    assert waiter.poll() is None
    sent = time.time()
    os.kill(waiter.pid, signal.SIGINT)
    line = read_line(waiter, timeout=10)
    word, stamp = line.split()
    latency = float(stamp) - sent
    rc, _, err = finish(waiter, timeout=10)
    assert (word, rc) == ("interrupted", 42), err
    assert bids(tmp_path) == before, "the interrupted waiter left a bid"
    # Within 100 ms by design (50 ms slices); the bound leaves room for a
    # loaded machine.
    assert latency < 0.25, f"KeyboardInterrupt took {latency * 1000:.0f} ms"
    print(f"Ctrl-C latency ({blocker}): {latency * 1000:.1f} ms")


def test_cancel_token_from_another_thread(tmp_path: Path, children: Children) -> None:
    (tmp_path / "notes.txt").write_text("blocks")
    import threading

    token = CancelToken()
    threading.Timer(0.2, token.cancel).start()
    start = time.monotonic()
    with pytest.raises(LockCancelled):
        LockFolder(tmp_path).acquire(cancel=token)
    assert time.monotonic() - start < 2.0
    assert token.cancelled
    assert bids(tmp_path) == ["notes.txt"]


def test_async_with_lets_other_coroutines_run(tmp_path: Path, children: Children) -> None:
    holder = children.python(HOLDER, str(tmp_path), "0.6")
    read_line(holder)
    ticks: List[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def main() -> float:
        stop = asyncio.Event()
        t = asyncio.create_task(ticker(stop))
        start = time.monotonic()
        async with LockFolder(tmp_path, timeout=20) as lock:
            waited = time.monotonic() - start
            assert lock.is_locked
            assert len(bids(tmp_path)) == 1
        assert not lock.is_locked
        stop.set()
        await t
        return waited

    waited = asyncio.run(main())
    assert waited > 0.3  # it really waited for the holder
    during = [t for t in ticks if t <= ticks[0] + waited]
    # The loop kept turning while we waited: a blocked loop would tick once.
    assert len(during) >= 0.5 * waited / 0.01
    assert bids(tmp_path) == []
    finish(holder)


def test_async_cancel_leaves_no_bid(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("blocks")  # so the waiter queues a bid

    async def main() -> None:
        lock = LockFolder(tmp_path)
        task = asyncio.create_task(lock.acquire_async())
        deadline = time.monotonic() + 10
        while len(bids(tmp_path)) < 2:
            assert time.monotonic() < deadline, "the waiter never queued its bid"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not lock.is_locked

    asyncio.run(main())
    assert bids(tmp_path) == ["notes.txt"]


def test_async_timeout_and_handoff(tmp_path: Path) -> None:
    async def main() -> None:
        first = LockFolder(tmp_path)
        await first.acquire_async()
        with pytest.raises(LockTimeout):
            await LockFolder(tmp_path).acquire_async(timeout=0.2)
        second = LockFolder(tmp_path)
        waiting = asyncio.create_task(second.acquire_async(timeout=10))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        first.release()
        assert await asyncio.wait_for(waiting, 10) is second
        # The task that waited has ended holding the lock: its acquisition
        # passes to the next task that uses the object, this one.
        assert second.is_locked
        with pytest.raises(RuntimeError, match="not reentrant"):
            await second.acquire_async(timeout=10)
        second.release()
        assert not second.is_locked
        # Held by another task that still runs: this task waits its turn (and
        # gives up), and cannot release that task's acquisition.
        inside, leave = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with second:
                inside.set()
                await leave.wait()

        holder = asyncio.create_task(hold())
        await asyncio.wait_for(inside.wait(), 10)
        with pytest.raises(LockTimeout):
            await second.acquire_async(timeout=0.1)
        with pytest.raises(RuntimeError, match="does not hold"):
            second.release()
        leave.set()
        await asyncio.wait_for(holder, 10)
        # Held for this task: acquiring again is a clear error, not a hang.
        await second.acquire_async(timeout=10)
        with pytest.raises(RuntimeError, match="not reentrant"):
            await second.acquire_async(timeout=10)
        second.release()

    asyncio.run(main())
    assert bids(tmp_path) == []


def test_async_tasks_sharing_one_object(tmp_path: Path) -> None:
    lock = LockFolder(tmp_path)
    inside = 0
    overlaps = 0

    async def worker() -> None:
        nonlocal inside, overlaps
        for _ in range(5):
            async with lock:
                inside += 1
                overlaps += inside != 1
                await asyncio.sleep(0.002)
                inside -= 1

    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(3))), 30)

    asyncio.run(main())
    assert overlaps == 0
    assert bids(tmp_path) == []


def test_blocking_wait_releases_the_gil(tmp_path: Path) -> None:
    import threading

    (tmp_path / "notes.txt").write_text("blocks")
    stop = threading.Event()
    count = 0

    def spin() -> None:
        nonlocal count
        while not stop.is_set():
            count += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.05)
        before = count
        with pytest.raises(LockTimeout):
            LockFolder(tmp_path).acquire(timeout=0.5)
        during = count - before
    finally:
        stop.set()
        t.join(10)
    # A wait that held the GIL would let the spinner run only at the switch
    # interval's mercy between slices; with the GIL released it runs freely.
    print(f"spinner iterations during a 0.5 s wait: {during}")
    assert during > 100_000, during
