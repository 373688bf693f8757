"""``LockFolder``: the native lock plus its asyncio methods.

The blocking methods (``acquire``, ``try_acquire``, ``release``, ``with``) are
native. An async wait runs on a Rust thread that never touches Python and
reports through a socket the event loop watches, so it neither blocks the
loop nor occupies a thread of the loop's executor.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Optional, Type, TypeVar

from . import _lockfolder

__all__ = ["LockFolder"]

_L = TypeVar("_L", bound="LockFolder")


class LockFolder(_lockfolder.LockFolder):
    """An inter-process mutex that needs nothing but a folder.

    ``LockFolder(path, *, timeout=None, label=None, shared=False, slots=1,
    create=True, lease=None, fencing=False, allow_filesystem=None)``:
    ``path`` (``str`` or any ``os.PathLike``) is the lock
    folder, created (with its parents) if missing unless ``create=False``,
    which raises ``FileNotFoundError`` instead; ``timeout`` is the default for
    ``acquire()``, ``with`` and ``async with`` (None: wait as long as it
    takes); ``label`` is stored in the bid and shown by ``holders()`` and
    ``lockfolder status``.

    ``shared=True`` makes a shared (reader) lock: shared holders run together,
    never with an exclusive one. ``slots=N`` makes a counting semaphore that
    admits at most ``N`` holders; every contender of the folder must use the
    same ``N`` (``SlotsMismatch`` otherwise). ``slots=0``, or ``shared=True``
    with ``slots > 1``, raise ``ValueError``.

    ``lease=SECONDS`` holds every acquisition under a lease, for folders
    shared between machines: the bid is renewed in the background, and a
    machine that cannot judge our processes may remove it once it has not
    been renewed for the lease (by the file server's clock). ``lost`` turns
    True when the lease could not be renewed in time; stop and release.
    ``fencing=True`` (implied by a lease) gives each acquisition a
    ``fencing_token`` larger than every earlier holder's.
    ``allow_filesystem="name"`` (or a list) accepts a filesystem lockfolder
    has no evidence for (``filesystem`` names it); without it, acquiring
    there raises ``FilesystemRefused``.

    Concurrency contract:

    * Every acquisition is a bid of its own, so two objects on one folder,
      two threads, two asyncio tasks and two processes all exclude each
      other. One object may be shared by threads and tasks: each acquisition
      belongs to the caller that made it (the running asyncio task, else the
      thread), and every kind of lock keeps its promise among them (one
      holder of an exclusive lock, at most ``N`` of ``slots=N``, any number
      of readers); the others wait their turn.
    * ``is_locked`` (a property, no I/O), ``bid_path``, ``is_held()`` and
      ``release()`` are about the caller's own acquisition;
      ``held_by_anyone()`` reads the folder: whether anyone, this object
      included, holds the lock.
    * ``release()`` by a caller that holds nothing through this object raises
      ``RuntimeError`` (as ``threading.Lock`` does), also while another
      thread or task holds it: a release that silently did nothing would
      leave that lock held. Leaving ``with lock.acquire():`` releases the
      acquisition ``acquire()`` made, wherever the block ends.
    * A thread or task that ends holding the lock leaves an acquisition
      nobody else could release: the next caller that holds none through
      this object takes it over (so ``await asyncio.wait_for(
      lock.acquire_async(), t)`` works on Python < 3.12, where ``wait_for``
      runs the wait in a task of its own).
    * Not reentrant: acquiring an object again from the thread (or asyncio
      task) that holds it raises ``RuntimeError`` instead of deadlocking.
    * Waiters are served first come, first served, whatever their mode: a
      reader that arrives after a waiting writer queues behind it, so a
      stream of readers cannot starve a writer. A waiter that gives up
      (timeout, Ctrl-C, cancellation) leaves no bid behind.
    * A holder that crashes or is killed leaves a bid that the next contender
      recognises as stale (no process with that PID and start time) and
      removes; the lock is never stuck.
    * After ``os.fork()`` the child does not own the parent's lock:
      ``is_locked`` is False there, ``release()`` raises ``RuntimeError``,
      and the child's exit does not release it.
    """

    async def acquire_async(self: _L, timeout: Optional[float] = None) -> _L:
        """Waits for the lock without blocking the event loop.

        Raises ``LockTimeout`` after ``timeout`` seconds (default: the
        object's timeout). If the awaiting task is cancelled, the wait is
        withdrawn (and a lock obtained at that very moment is released)
        before ``CancelledError`` propagates: no bid is left behind.
        """
        token = _lockfolder.CancelToken()
        # The lock will belong to the running task (the native side asks
        # asyncio which one that is).
        pending = self._start_wait(timeout, token)
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not finished.done():
                finished.set_result(None)

        fd = pending.fileno()
        loop.add_reader(fd, wake)
        try:
            try:
                await finished
            finally:
                loop.remove_reader(fd)
        except BaseException:
            pending.abandon()
            raise
        self._finish_wait(pending)
        return self

    async def __aenter__(self: _L) -> _L:
        return await self.acquire_async()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.release()
