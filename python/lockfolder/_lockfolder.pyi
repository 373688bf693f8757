"""Type stubs of the native module ``lockfolder._lockfolder`` (PyO3)."""

import os
import pathlib
from types import TracebackType
from typing import Generic, Literal, TypeVar, final

__version__: str
RECHECK_SECONDS: float
WAIT_SLICE_SECONDS: float

_Self = TypeVar("_Self", bound="LockFolder")
_StrPath = str | os.PathLike[str]

# What ``Holder.kind``, ``Holder.state`` and ``Holder.mode`` can be.
_EntryKind = Literal[
    "bid", "legacy-bid", "temporary", "queue-marker", "artefact", "fence", "other"
]
_EntryState = Literal["live", "stale", "foreign", "not-a-bid"]
_EntryRole = Literal["holder", "waiter", "none"]
_LockMode = Literal["exclusive", "shared"]
_FsKind = Literal["local", "network", "cluster", "fuse", "unknown"]

@final
class CancelToken:
    """Cancels a wait from another thread."""

    def __init__(self) -> None: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

@final
class Holder:
    """One entry of a lock folder, as ``holders()`` and ``clean()`` report it."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def kind(self) -> _EntryKind:
        """``"bid"``, ``"legacy-bid"`` (lockfolder 1.0.2), ``"temporary"``,
        ``"queue-marker"``, ``"artefact"`` (``.nfsXXXX``, ``.fuse_hidden...``),
        ``"fence"`` or ``"other"``."""
    @property
    def role(self) -> _EntryRole:
        """``"holder"``, ``"waiter"`` (a queue marker, or the bid a waiter
        keeps while first in line) or ``"none"``."""
    @property
    def stopped(self) -> bool:
        """Its process is alive but stopped (SIGSTOP, a debugger...)."""
    @property
    def os(self) -> str | None:
        """The platform the bid was written on."""
    @property
    def group(self) -> int | None:
        """A process group that keeps the bid alive after its owner exits."""
    @property
    def lease(self) -> float | None:
        """The lease the bid is held under, in seconds."""
    @property
    def renewed(self) -> float | None:
        """When its lease was last renewed (file server's clock), Unix seconds."""
    @property
    def allowed_fs(self) -> str | None:
        """A filesystem its owner accepted by explicit opt-in."""
    @property
    def state(self) -> _EntryState:
        """``"live"``, ``"stale"``, ``"foreign"`` or ``"not-a-bid"``."""
    @property
    def note(self) -> str | None: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def host(self) -> str | None: ...
    @property
    def started(self) -> float | None:
        """When the holder's process started, in Unix seconds."""
    @property
    def acquired(self) -> float | None:
        """When the bid was published, in Unix seconds."""
    @property
    def waiting_since(self) -> float | None: ...
    @property
    def mode(self) -> _LockMode | None:
        """The bid's mode (1.0.2 bids are ``"exclusive"``); None for entries
        that are not bids."""
    @property
    def slots(self) -> int | None:
        """The slot count recorded in the bid (1 for plain and shared locks);
        None for entries that are not bids."""
    @property
    def label(self) -> str | None: ...
    @property
    def command(self) -> str | None: ...
    @property
    def blocks(self) -> bool:
        """Whether this entry keeps others from taking the lock."""
    @property
    def description(self) -> str: ...

@final
class Filesystem:
    """The filesystem a lock folder lives on, and lockfolder's policy for it."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> _FsKind: ...
    @property
    def source(self) -> str | None: ...
    @property
    def options(self) -> list[str]: ...
    @property
    def accepted(self) -> bool: ...
    @property
    def opted_in(self) -> bool: ...
    @property
    def reason(self) -> str: ...

@final
class Status:
    """A lock folder at one moment (``LockFolder.status()``)."""

    @property
    def entries(self) -> list[Holder]: ...
    @property
    def would_wait(self) -> bool:
        """Whether a new blocking acquisition would wait now."""
    @property
    def blockers(self) -> list[Holder]:
        """What it would wait for: entries that keep it out, then the
        waiters queued ahead of it."""
    @property
    def held(self) -> bool: ...
    @property
    def filesystem(self) -> Filesystem: ...

@final
class Acquired(Generic[_Self]):
    """What ``acquire()`` returns: ``with lock.acquire(timeout=5):`` releases
    the acquisition ``acquire()`` made at the end of the block, wherever the
    block ends."""

    @property
    def lock(self) -> _Self: ...
    def __enter__(self) -> _Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

@final
class PendingAcquire:
    """An asynchronous wait in progress (used by ``LockFolder.acquire_async``)."""

    def fileno(self) -> int: ...
    def done(self) -> bool: ...
    def abandon(self) -> None: ...

class LockFolder:
    def __init__(
        self,
        path: _StrPath,
        *,
        timeout: float | None = None,
        label: str | None = None,
        shared: bool = False,
        slots: int = 1,
        create: bool = True,
        lease: float | None = None,
        fencing: bool = False,
        allow_filesystem: str | list[str] | None = None,
        _per_process: bool = False,
    ) -> None: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def label(self) -> str | None: ...
    @property
    def shared(self) -> bool: ...
    @property
    def slots(self) -> int: ...
    @property
    def is_locked(self) -> bool:
        """Whether the caller (this thread, or the running asyncio task) holds
        the lock through this object. No I/O."""
    @property
    def bid_path(self) -> pathlib.Path | None:
        """The caller's bid, while the caller holds the lock."""
    def acquire(
        self: _Self, timeout: float | None = None, *, cancel: CancelToken | None = None
    ) -> Acquired[_Self]: ...
    def try_acquire(self) -> bool: ...
    def release(self) -> None:
        """Releases the caller's acquisition; ``RuntimeError`` if the caller
        holds none through this object."""
    def is_held(self) -> bool:
        """Whether the caller's bid is still in the folder."""
    def held_by_anyone(self) -> bool:
        """Whether anyone, this object included, holds the lock (reads the
        folder)."""
    @property
    def fencing_token(self) -> int | None:
        """The caller's acquisition's fencing token (``fencing=True`` or a
        lease), larger than every earlier holder's."""
    @property
    def lost(self) -> bool:
        """Whether the caller's lease could not be renewed in time."""
    @property
    def filesystem(self) -> Filesystem: ...
    def status(self) -> Status: ...
    def would_wait(self) -> bool:
        """Whether a new blocking acquisition would wait now."""
    def remove_forced(self, name: str) -> Holder:
        """Removes an entry no proof can settle; ``RemovalRefused`` for
        anything not named like a bid and for live local bids."""
    def holders(self) -> list[Holder]: ...
    def clean(self) -> list[Holder]: ...
    def challenge(self, name: str) -> bool: ...
    def __enter__(self: _Self) -> _Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...
    def _start_wait(self, timeout: float | None, cancel: CancelToken) -> PendingAcquire: ...
    def _finish_wait(self, pending: PendingAcquire) -> None: ...

def cli_main(argv: list[str]) -> int: ...
