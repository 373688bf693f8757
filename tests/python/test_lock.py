"""The LockFolder API against real processes."""

from __future__ import annotations

import os
import pickle
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

import lockfolder
from lockfolder import LockError, LockFolder, LockLost, LockTimeout

from conftest import HOLDER, Children, bids, check_typed, finish, read_line

WORKER = """
    import os, sys, time
    from lockfolder import LockFolder
    folder, marker, counter, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    lock = LockFolder(folder)
    overlaps = 0
    for _ in range(rounds):
        with lock.acquire(timeout=50):
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(fd)
            except FileExistsError:
                overlaps += 1
            n = int(open(counter).read())
            time.sleep(0.0005)
            with open(counter, "w") as f:
                f.write(str(n + 1))
            try:
                os.unlink(marker)
            except FileNotFoundError:
                overlaps += 1
    print("overlaps", overlaps, flush=True)
"""


def test_contention_between_processes(tmp_path: Path, children: Children) -> None:
    folder, marker, counter = tmp_path / "lock", tmp_path / "inside", tmp_path / "count"
    counter.write_text("0")
    procs, rounds = 4, 40
    ps = [
        children.python(WORKER, str(folder), str(marker), str(counter), str(rounds))
        for _ in range(procs)
    ]
    for p in ps:
        rc, out, err = finish(p)
        assert rc == 0, err
        assert out.split() == ["overlaps", "0"]
    # A lost update would show in the counter even if the marker missed it.
    assert int(counter.read_text()) == procs * rounds
    assert bids(folder) == []


def test_threads_and_objects_exclude_each_other(tmp_path: Path) -> None:
    inside = 0
    overlaps = 0
    shared = LockFolder(tmp_path)

    def work(lock: LockFolder) -> None:
        nonlocal inside, overlaps
        for _ in range(25):
            with lock.acquire(timeout=30):
                inside += 1
                if inside != 1:
                    overlaps += 1
                time.sleep(0.0005)
                inside -= 1

    threads = [threading.Thread(target=work, args=(LockFolder(tmp_path),)) for _ in range(2)]
    threads += [threading.Thread(target=work, args=(shared,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    assert overlaps == 0
    assert bids(tmp_path) == []


def test_kill9_holder_then_next_acquires(tmp_path: Path, children: Children) -> None:
    holder = children.python(HOLDER, str(tmp_path), "60")
    word, pid, bid = read_line(holder).split()
    assert (word, int(pid)) == ("held", holder.pid)
    lock = LockFolder(tmp_path)
    assert not lock.try_acquire()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    start = time.monotonic()
    lock.acquire(timeout=10)
    took = time.monotonic() - start
    assert lock.is_locked
    assert not os.path.exists(bid)  # the stale bid was removed
    assert bids(tmp_path) == [os.path.basename(str(lock.bid_path))]
    lock.release()
    assert took < 2.0, f"taking over from a killed holder took {took:.3f}s"


def test_timeout_is_a_timeout_error(tmp_path: Path, children: Children) -> None:
    holder = children.python(HOLDER, str(tmp_path), "60", "nightly")
    _, pid, bid = read_line(holder).split()
    lock = LockFolder(tmp_path)
    start = time.monotonic()
    with pytest.raises(LockTimeout) as info:
        lock.acquire(timeout=0.3)
    waited = time.monotonic() - start
    e = info.value
    assert isinstance(e, TimeoutError) and isinstance(e, LockError)
    assert e.path == str(tmp_path)
    assert f"PID {pid}" in e.holder and "nightly" in e.holder
    assert str(tmp_path) in str(e) and e.holder in str(e)
    assert 0.3 <= waited < 3.0
    assert bids(tmp_path) == [os.path.basename(bid)]  # the waiter left no bid
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is LockTimeout
    assert (back.path, back.holder, str(back)) == (e.path, e.holder, str(e))
    # The object's default timeout is used by `with` too.
    with pytest.raises(TimeoutError):
        with LockFolder(tmp_path, timeout=0.1):
            pass
    assert not lock.is_locked


def test_try_acquire_is_one_attempt(tmp_path: Path, children: Children) -> None:
    holder = children.python(HOLDER, str(tmp_path), "60")
    read_line(holder)
    lock = LockFolder(tmp_path)
    start = time.monotonic()
    assert lock.try_acquire() is False
    assert time.monotonic() - start < 1.0
    assert not lock.is_locked and lock.bid_path is None
    assert len(bids(tmp_path)) == 1


def test_not_reentrant_and_misuse(tmp_path: Path) -> None:
    lock = LockFolder(tmp_path)
    with lock:
        with pytest.raises(RuntimeError, match="not reentrant"):
            lock.acquire(timeout=1)
        with pytest.raises(RuntimeError):
            lock.try_acquire()
        other = LockFolder(tmp_path)
        assert other.try_acquire() is False  # a second object is a rival
    with pytest.raises(RuntimeError, match="not held"):
        lock.release()
    with pytest.raises(ValueError):
        lock.acquire(timeout=-1)


def test_lock_lost_when_bid_vanished(tmp_path: Path) -> None:
    lock = LockFolder(tmp_path)
    lock.acquire()
    assert lock.bid_path is not None
    os.unlink(lock.bid_path)
    assert lock.is_held() is False
    with pytest.raises(LockLost) as info:
        lock.release()
    assert info.value.path.endswith(".json")
    assert not lock.is_locked


def test_os_errors_keep_their_class(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("not a folder")
    with pytest.raises(NotADirectoryError) as info:
        LockFolder(afile)
    assert info.value.filename == str(afile)
    with pytest.raises(FileNotFoundError) as missing:
        LockFolder(tmp_path / "absent", create=False)
    assert missing.value.errno == 2 and missing.value.filename == str(tmp_path / "absent")
    with pytest.raises(NotADirectoryError):
        LockFolder(afile / "below")


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_removed_or_replaced_folder_is_file_not_found(tmp_path: Path, how: str) -> None:
    """The core reports a folder that is gone from its path with an
    `ErrorKind` but no errno: it is a FileNotFoundError like any other."""
    import errno
    import shutil

    folder = tmp_path / "lock"
    lock = LockFolder(folder)
    shutil.rmtree(folder)
    if how == "replaced":
        folder.mkdir()
    for op in (lock.holders, lock.clean, lock.held_by_anyone):
        with pytest.raises(FileNotFoundError) as info:
            op()
        e = info.value
        assert (e.errno, e.filename) == (errno.ENOENT, str(folder)), op
        assert "removed or replaced" in e.strerror
        assert str(folder) in str(e)
    with pytest.raises(FileNotFoundError):
        lock.try_acquire()
    assert not lock.is_locked


def test_is_locked_is_the_callers_held_by_anyone_the_folders(
    tmp_path: Path, children: Children
) -> None:
    lock = LockFolder(tmp_path)
    assert lock.is_locked is False and lock.held_by_anyone() is False
    holder = children.python(HOLDER, str(tmp_path), "60")
    read_line(holder)
    assert lock.is_locked is False and lock.held_by_anyone() is True
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    assert lock.held_by_anyone() is False  # a stale bid holds nothing
    with lock:
        assert lock.is_locked is True and lock.held_by_anyone() is True
        other = LockFolder(tmp_path)
        assert other.is_locked is False and other.held_by_anyone() is True
    assert lock.is_locked is False and lock.held_by_anyone() is False
    (tmp_path / "notes.txt").write_text("not a bid")
    assert lock.held_by_anyone() is True  # it blocks every acquisition
    # A reader asks the same question: someone holds the folder.
    assert LockFolder(tmp_path, shared=True).held_by_anyone() is True


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_permission_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            LockFolder(tmp_path / "sub")
    finally:
        tmp_path.chmod(0o700)


def test_path_like_and_str(tmp_path: Path) -> None:
    class Custom:
        def __fspath__(self) -> str:
            return str(tmp_path / "custom")

    for p in (tmp_path / "a", str(tmp_path / "b"), Custom()):
        lock = LockFolder(p)
        assert lock.try_acquire()
        assert isinstance(lock.path, Path) and lock.path.is_dir()
        lock.release()


def test_holders_content(tmp_path: Path, children: Children) -> None:
    before = time.time()
    holder = children.python(HOLDER, str(tmp_path), "60", "job-7")
    _, pid, bid = read_line(holder).split()
    after = time.time()
    (tmp_path / "README.txt").write_text("not a bid")
    lock = LockFolder(tmp_path)
    hs = {h.name: h for h in lock.holders()}
    assert set(hs) == {os.path.basename(bid), "README.txt"}
    h = hs[os.path.basename(bid)]
    assert (h.state, h.kind, h.pid, h.label) == ("live", "bid", int(pid), "job-7")
    assert h.host == socket.gethostname()
    assert h.path == Path(bid) and h.blocks
    assert h.started is not None and before - 2 <= h.started <= after + 1
    assert h.acquired is not None and h.started <= h.acquired <= after + 1
    assert h.command is not None and "python" in h.command
    junk = hs["README.txt"]
    assert (junk.state, junk.kind, junk.pid) == ("not-a-bid", "other", None)
    for entry in hs.values():
        check_typed(entry)
    assert junk.blocks and junk.note
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    states = {h.name: h.state for h in lock.holders()}
    assert states == {os.path.basename(bid): "stale", "README.txt": "not-a-bid"}
    for entry in lock.holders():
        check_typed(entry)
    removed = lock.clean()
    assert [r.name for r in removed] == [os.path.basename(bid)]
    assert bids(tmp_path) == ["README.txt"]  # never touch what is not a bid


def test_fork_child_does_not_own_the_lock(tmp_path: Path) -> None:
    lock = LockFolder(tmp_path)
    lock.acquire()
    bid = lock.bid_path
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: inspect, try to release, drop the object, exit
        code = 0
        try:
            if lock.is_locked or lock.bid_path is not None:
                code |= 1
            try:
                lock.release()
                code |= 2
            except RuntimeError:
                pass
            del lock  # runs the native destructor in the child
            import gc

            gc.collect()
        except BaseException:
            code |= 4
        os.write(w, bytes([code]))
        os._exit(0)
    os.close(w)
    status = os.read(r, 1)
    os.waitpid(pid, 0)
    os.close(r)
    assert status == bytes([0])
    assert lock.is_locked and lock.is_held()
    assert bid is not None and bid.exists()
    lock.release()


def test_multiprocessing_fork_child(tmp_path: Path) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    lock = LockFolder(tmp_path)
    lock.acquire()
    q = ctx.Queue()
    p = ctx.Process(target=_report_in_child, args=(lock, q))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    assert q.get(timeout=5) == (False, "RuntimeError")
    assert lock.is_held()  # the child's exit (and its finalizers) left it alone
    lock.release()


def _report_in_child(lock: LockFolder, q: "object") -> None:
    try:
        lock.release()
        outcome = "released"
    except RuntimeError:
        outcome = "RuntimeError"
    q.put((lock.is_locked, outcome))  # type: ignore[attr-defined]


def test_docstring_shows_every_keyword() -> None:
    """The class docstring's signature names each public keyword of the
    constructor, with its default."""
    import inspect
    import re

    doc = LockFolder.__doc__ or ""
    shown = " ".join(doc.split("``:", 1)[0].split())  # the signature, unwrapped
    public = [
        p for p in inspect.signature(lockfolder._lockfolder.LockFolder).parameters.values()
        if p.kind is p.KEYWORD_ONLY and not p.name.startswith("_")
    ]
    assert "create" in [p.name for p in public]
    for p in public:
        assert re.search(rf"\b{p.name}={p.default!r}", shown), (p.name, shown)


def test_version() -> None:
    """The native module's version (the crate's) is the Python package's, so
    a release bumps both (docs/releasing.md)."""
    import importlib.metadata
    import re

    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", lockfolder.__version__)
    assert lockfolder.__version__ == importlib.metadata.version("lockfolder")
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    declared = re.search(r'(?m)^version = "([^"]+)"', pyproject.read_text())
    assert declared is not None and declared.group(1) == lockfolder.__version__
