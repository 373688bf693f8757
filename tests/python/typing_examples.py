"""API usage checked by `mypy --strict` (scripts/test-python.sh). Not run by
pytest: it only has to type-check."""

from __future__ import annotations

import asyncio
import pathlib
from typing import List, Literal, Optional

import lockfolder
from lockfolder import (
    CancelToken,
    Holder,
    LockCancelled,
    LockError,
    LockFolder,
    LockLost,
    LockTimeout,
    SlotsMismatch,
    Status,
)
from lockfolder import lockfolder as lf1


def blocking(path: pathlib.Path) -> Optional[float]:
    lock = LockFolder(path, timeout=5.0, label="example")
    with lock:
        assert lock.is_locked
    with lock.acquire(timeout=1.5) as same:
        same_lock: LockFolder = same
        bid: Optional[pathlib.Path] = same_lock.bid_path
        print(bid)
    if lock.try_acquire():
        lock.release()
    token = CancelToken()
    token.cancel()
    try:
        lock.acquire(cancel=token)
    except LockCancelled as e:
        where: str = e.path
        print(where)
    try:
        LockFolder("other", timeout=0).acquire()
    except LockTimeout as e:
        holder: str = e.holder
        as_builtin: TimeoutError = e
        print(holder, as_builtin)
    except LockLost:
        pass
    except LockError:
        pass
    holders: List[Holder] = lock.holders()
    for h in holders:
        state: Literal["live", "stale", "foreign", "not-a-bid"] = h.state
        kind: Literal[
            "bid", "legacy-bid", "temporary", "queue-marker", "artefact", "fence", "other"
        ] = h.kind
        role: Literal["holder", "waiter", "none"] = h.role
        lease: Optional[float] = h.lease
        as_text: str = h.state
        pid: Optional[int] = h.pid
        started: Optional[float] = h.started
        print(state, kind, role, lease, as_text, pid, started, h.host, h.label, h.path.name)
    st: Status = lock.status()
    waits: bool = st.would_wait or lock.would_wait()
    fs_name: str = lock.filesystem.name
    fence: Optional[int] = lock.fencing_token
    print(waits, fs_name, fence, st.blockers, lock.lost)
    removed: List[Holder] = lock.clean()
    mine: bool = lock.is_locked
    anyone: bool = lock.held_by_anyone()
    print(len(removed), mine, anyone, lock.path.name, lock.timeout, lock.label)
    return holders[0].acquired if holders else None


async def waiting(path: str) -> bool:
    lock = LockFolder(path)
    async with lock:
        pass
    same: LockFolder = await lock.acquire_async(timeout=2)
    same.release()
    return lock.is_locked


def legacy(path: pathlib.Path) -> bool:
    lf1.init()
    lf1.setup()
    if lf1.lock(path):
        assert lf1.have_lock(path)
        lf1.unlock(str(path))
    return lf1.in_use(path) or lf1.challenge(path / "x.json")


def modes(path: pathlib.Path) -> int:
    reader = LockFolder(path, shared=True, timeout=1.0)
    pool = LockFolder(path / "pool", slots=4, label="worker")
    shared: bool = reader.shared
    slots: int = pool.slots
    with reader:
        for h in reader.holders():
            mode: Optional[Literal["exclusive", "shared"]] = h.mode
            count: Optional[int] = h.slots
            print(mode, count)
    try:
        with pool.acquire(timeout=2):
            pass
    except SlotsMismatch as e:
        ours: int = e.ours
        theirs: int = e.theirs
        bid: str = e.path
        as_lock_error: LockError = e
        print(ours, theirs, bid, as_lock_error)
    return slots if shared else 1


def version() -> str:
    return lockfolder.__version__


if __name__ == "__main__":
    asyncio.run(waiting("example"))
