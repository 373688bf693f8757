"""lockfolder: a crash-safe inter-process mutex that needs nothing but a folder.

::

    from lockfolder import LockFolder

    with LockFolder("/tmp/nightly-backup.lock", timeout=60):
        ...  # only one process at a time runs here

A contender checks the folder, bids by publishing ``<token>.json`` (its PID,
process start time and host), checks again, and withdraws if it sees a rival;
the bid is the lock until it is deleted. A bid whose process is provably gone
is removed by the next contender, so a crash never leaves the lock stuck.
``LockFolder(path, shared=True)`` is a shared (reader) lock and
``LockFolder(path, slots=N)`` a counting semaphore, on the same bids.
Processes running lockfolder 1.0.2 can share a folder with this version, and
``from lockfolder import lockfolder`` keeps the 1.x functions.
"""

from ._errors import (
    FilesystemRefused,
    LockCancelled,
    LockError,
    LockLost,
    LockTimeout,
    RemovalRefused,
    SlotsMismatch,
)
from ._lock import LockFolder
from ._lockfolder import CancelToken, Filesystem, Holder, Status, __version__

__all__ = [
    "CancelToken",
    "Filesystem",
    "FilesystemRefused",
    "Holder",
    "RemovalRefused",
    "Status",
    "LockCancelled",
    "LockError",
    "LockFolder",
    "LockLost",
    "LockTimeout",
    "SlotsMismatch",
    "__version__",
]
