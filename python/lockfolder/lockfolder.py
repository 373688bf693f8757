"""The lockfolder 1.x functions, kept so that 1.x code runs unchanged::

    import pathlib
    from lockfolder import lockfolder

    lockfolder.init()
    p = pathlib.Path("path/to/lockfolder")
    if lockfolder.lock(p):
        ...
        lockfolder.unlock(p)

Each function takes a ``pathlib.Path`` or a ``str``. ``lock`` makes one
check-bid-check attempt (as in 1.x) and creates the folder if it is missing.
The bids are in the 2.0 format, which processes running lockfolder 1.0.2 read
as their own; they and this process exclude each other on one folder.

The lock belongs to the process, as in 1.0.2: while it holds the lock of a
folder, ``lock`` returns True and ``have_lock`` is True in every thread, and
``unlock`` from any thread releases it for all of them (another thread's
``unlock`` then raises ``FileNotFoundError``, as a second ``unlock`` did in
1.0.2). Unlike 1.0.2 the functions may be called from several threads at
once: each call is atomic with respect to the others, so the process never
has more than one bid in a folder, and ``lock`` never fails because of this
process's own bid. They do not make threads exclude each other; use
``lockfolder.LockFolder``, whose acquisitions belong to threads and tasks,
for that.

What else changed from 1.0.2, on purpose: a bid appears whole (1.0.2 could
be seen half-written), stale bids are judged by the process start time to the
clock tick rather than the second, and unreadable or foreign bids are never
deleted. New code should use ``lockfolder.LockFolder``, which can also wait.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Dict, Union

from ._lock import LockFolder

__all__ = ["init", "setup", "lock", "unlock", "in_use", "have_lock", "challenge"]

_StrPath = Union[str, "os.PathLike[str]"]

# The lock objects of this process, by resolved folder path. Their
# acquisitions belong to the process (not to the thread that made them), so
# any thread's ``unlock`` can release them. Every function that changes or
# reads the lock state does so under ``_mutex``.
_held: Dict[str, LockFolder] = {}
_mutex = threading.Lock()


def _key(lockfolder_path: _StrPath) -> str:
    return os.path.realpath(os.fspath(lockfolder_path))


def setup() -> None:
    """Prepares the module (1.0.2's name). Nothing needs preparing any more:
    the process identity is read for each bid, so calling it is harmless,
    also more than once or after ``fork()``."""


def init() -> None:
    """Prepares the module (the name the 1.0.2 README uses); see ``setup``."""
    setup()


def lock(lockfolder_path: _StrPath) -> bool:
    """Tries once to take the lock of the folder (created if missing).

    True: the lock is ours until ``unlock``. False: a live rival holds it; try
    again later. True again if this process already holds it.
    """
    key = _key(lockfolder_path)
    with _mutex:
        mine = _held.get(key)
        if mine is not None and mine.is_locked:
            if mine.is_held():
                return True
            # Our bid was deleted behind our back: the lock is lost.
            del _held[key]
        folder = LockFolder(key, _per_process=True)
        if folder.try_acquire():
            _held[key] = folder
            return True
        return False


def unlock(lockfolder_path: _StrPath) -> None:
    """Releases the lock taken by ``lock``.

    Raises ``FileNotFoundError`` if this process does not hold it (1.0.2 did
    too) and ``LockLost`` if our bid had been deleted by someone else.
    """
    key = _key(lockfolder_path)
    with _mutex:
        mine = _held.pop(key, None)
        if mine is None or not mine.is_locked:
            raise FileNotFoundError(
                errno.ENOENT,
                "this process holds no lock in this folder",
                os.fspath(lockfolder_path),
            )
        # Still under the mutex: a `lock` in another thread must not see the
        # bid being withdrawn as a rival's.
        mine.release()


def in_use(lockfolder_path: _StrPath) -> bool:
    """Whether anything other than our own bid keeps the lock from being
    taken: a live bid of another process, a foreign bid, or an entry that is
    not a bid. Raises ``FileNotFoundError`` if the folder does not exist."""
    key = _key(lockfolder_path)
    with _mutex:
        mine = _held.get(key)
        own = mine.bid_path if mine is not None else None
        folder = LockFolder(key, create=False)
        return any(h.blocks and h.path != own for h in folder.holders())


def have_lock(lockfolder_path: _StrPath) -> bool:
    """Whether this process holds the lock and its bid is still in place."""
    with _mutex:
        mine = _held.get(_key(lockfolder_path))
        return mine is not None and mine.is_held()


def challenge(bid_path: _StrPath) -> bool:
    """Judges one bid file and deletes it if its process is provably gone.

    True: it was stale and is removed. False: it is live, foreign, not a bid,
    or already gone. Unlike 1.0.2, an unreadable bid is never deleted.
    """
    # Resolve the folder only: the entry itself is judged as it is (a symlink
    # is not a bid, and is never followed).
    parent, name = os.path.split(os.fspath(bid_path))
    folder = LockFolder(os.path.realpath(parent or "."), create=False)
    return folder.challenge(name)
