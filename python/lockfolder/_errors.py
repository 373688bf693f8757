"""The exceptions of lockfolder.

Contention is not an error (``try_acquire()`` returns False). Failures of the
operating system are raised as the usual ``OSError`` subclasses
(``PermissionError``, ``FileNotFoundError``, ``NotADirectoryError``, ...) with
``errno`` and ``filename`` set; the classes here are lockfolder's own.
All of them pickle, so they cross ``multiprocessing`` boundaries intact.
"""

from __future__ import annotations

import os
from typing import Any, Tuple, Union

__all__ = [
    "LockError",
    "LockTimeout",
    "LockLost",
    "LockCancelled",
    "SlotsMismatch",
    "FilesystemRefused",
    "RemovalRefused",
]


class LockError(Exception):
    """Base class of lockfolder's own errors. ``path`` is the lock folder (or
    the bid file, for ``LockLost`` and ``SlotsMismatch``)."""

    def __init__(self, message: str, path: Union[str, "os.PathLike[str]"]) -> None:
        super().__init__(message)
        self.message = message
        self.path = os.fspath(path)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.message, self.path))


class LockTimeout(LockError, TimeoutError):
    """The lock was not obtained within the timeout. ``holder`` describes
    who held it when we gave up. Also a builtin ``TimeoutError``."""

    def __init__(
        self, message: str, path: Union[str, "os.PathLike[str]"], holder: str
    ) -> None:
        super().__init__(message, path)
        self.holder = holder

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.message, self.path, self.holder))


class LockLost(LockError):
    """On release, our bid had vanished: someone deleted it (by hand, or the
    folder was removed), so another process may have held the lock too."""


class LockCancelled(LockError):
    """A wait was cancelled through a ``CancelToken``; no bid is left."""


class SlotsMismatch(LockError):
    """The folder holds a live bid made with another slot count: every
    contender of a counting semaphore must open it with the same ``slots``
    (a plain or shared lock counts as 1). ``path`` is the bid that disagrees,
    ``ours`` our count, ``theirs`` the bid's. The refused attempt leaves no
    bid behind."""

    def __init__(
        self, message: str, path: Union[str, "os.PathLike[str]"], ours: int, theirs: int
    ) -> None:
        super().__init__(message, path)
        self.ours = ours
        self.theirs = theirs

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.message, self.path, self.ours, self.theirs))


class FilesystemRefused(LockError):
    """The lock folder is on a filesystem lockfolder has no evidence is safe
    for it (its listings may be stale): an SMB share, an unknown FUSE
    filesystem, NFS mounted ``nocto``... ``filesystem`` is its name; opt in
    with ``LockFolder(path, allow_filesystem=filesystem)`` (or the
    ``LOCKFOLDER_ALLOW_FS`` environment variable) if you accept the risk."""

    def __init__(
        self, message: str, path: Union[str, "os.PathLike[str]"], filesystem: str
    ) -> None:
        super().__init__(message, path)
        self.filesystem = filesystem

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.message, self.path, self.filesystem))


class RemovalRefused(LockError, PermissionError):
    """``remove_forced`` refused: the entry is not named like a bid (never
    removed by lockfolder), or its process is alive on this machine. Also a
    builtin ``PermissionError``."""

    def __init__(self, message: str, path: Union[str, "os.PathLike[str]"]) -> None:
        LockError.__init__(self, message, path)

    def __str__(self) -> str:
        return self.message
