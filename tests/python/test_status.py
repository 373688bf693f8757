"""status(), the filesystem and its policy, fencing tokens, leases and the
operator's forced removal, from Python."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest

import lockfolder
from conftest import Children, finish, read_line

HOLD = """
import sys
from lockfolder import LockFolder
lock = LockFolder(sys.argv[1])
with lock:
    print("IN", flush=True)
    sys.stdin.readline()
"""


def test_status_tells_holder_waiter_and_what_a_newcomer_waits_for(
    tmp_path: Path, children: Children
) -> None:
    holder = children.python(HOLD, str(tmp_path), stdin=-1)
    assert read_line(holder) == "IN"
    lock = lockfolder.LockFolder(tmp_path)
    st = lock.status()
    assert st.held and st.would_wait and lock.would_wait()
    assert [h.role for h in st.entries] == ["holder"]
    assert st.blockers[0].pid == holder.pid
    assert st.filesystem.accepted and st.filesystem.kind == "local"
    assert lock.filesystem.name == st.filesystem.name
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert finish(holder)[0] == 0
    st = lock.status()
    assert not st.would_wait and not st.held and st.entries == []


def test_fencing_tokens_grow_across_acquisitions(tmp_path: Path) -> None:
    lock = lockfolder.LockFolder(tmp_path, fencing=True)
    seen = []
    for _ in range(3):
        with lock:
            token = lock.fencing_token
            assert token is not None
            seen.append(token)
    assert seen == sorted(seen) and len(set(seen)) == 3
    assert lock.fencing_token is None, "nothing held now"
    assert lockfolder.LockFolder(tmp_path).acquire().lock.fencing_token is None


def test_a_lease_is_renewed_while_held(tmp_path: Path) -> None:
    lock = lockfolder.LockFolder(tmp_path, lease=1.0)
    with lock:
        assert lock.fencing_token is not None, "a lease implies fencing"
        bid = lock.bid_path
        assert bid is not None
        first = os.stat(bid).st_mtime
        time.sleep(1.5)
        assert not lock.lost
        assert os.stat(bid).st_mtime > first, "the bid was renewed"
        (h,) = [h for h in lock.holders() if h.kind == "bid"]
        assert h.lease == pytest.approx(1.0)
    with pytest.raises(ValueError):
        lockfolder.LockFolder(tmp_path, lease=0.1)


def test_allow_filesystem_takes_a_name_or_a_list(tmp_path: Path) -> None:
    for allow in ("*", ["fuse.rclone", "cifs"]):
        lock = lockfolder.LockFolder(tmp_path, allow_filesystem=allow)
        with lock:
            pass
    assert issubclass(lockfolder.FilesystemRefused, lockfolder.LockError)


def foreign_bid(folder: Path) -> str:
    """A bid of another machine (another kernel and machine id)."""
    name = f"{uuid.uuid4()}.json"
    bid = {
        "PID": 4242,
        "CREATED": 1,
        "lockfolder": 3,
        "host": "elsewhere",
        "owner": {
            "os": "linux",
            "boot_id": "00000000-0000-4000-8000-000000000000",
            "machine_id": "another-machine",
            "boot_time": 1,
            "pid_ns": 1,
            "start_ticks": 1,
            "clk_tck": 100,
        },
    }
    (folder / name).write_text(json.dumps(bid))
    return name


def test_remove_forced_removes_only_what_no_proof_settles(tmp_path: Path) -> None:
    lock = lockfolder.LockFolder(tmp_path, timeout=10)
    with lock:
        own = lock.bid_path
        assert own is not None
        with pytest.raises(lockfolder.RemovalRefused):
            lock.remove_forced(own.name)
    # A file that is not a bid (it also keeps everyone out, so it comes last).
    (tmp_path / "notes.txt").write_text("keep")
    with pytest.raises(lockfolder.RemovalRefused) as e:
        lock.remove_forced("notes.txt")
    assert isinstance(e.value, PermissionError)
    name = foreign_bid(tmp_path)
    assert lock.held_by_anyone()
    removed = lock.remove_forced(name)
    assert removed.state == "foreign" and removed.name == name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
