"""Shared (reader/writer) locks and counting semaphores against real
processes: readers overlap and shut writers out, a writer is not starved by a
stream of readers, N slots are never exceeded (with kill -9 in the mix), and
contenders that disagree on N are refused."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import random
import signal
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import lockfolder
from lockfolder import LockError, LockFolder, LockTimeout, SlotsMismatch

from conftest import Children, bids, check_typed, finish, read_line

# A child that takes the lock opened with the JSON keyword arguments argv[2],
# prints "held <pid> <bid path>" and keeps it until killed (or 60 s).
HOLD = """
    import json, os, sys, time
    from lockfolder import LockFolder
    lock = LockFolder(sys.argv[1], **json.loads(sys.argv[2]))
    lock.acquire(timeout=30)
    print("held", os.getpid(), lock.bid_path, flush=True)
    time.sleep(60)
"""


def hold(children: Children, folder: Path, **kwargs: Any) -> Tuple[int, str]:
    """Starts a HOLD child; returns its PID and bid path once it holds."""
    p = children.python(HOLD, str(folder), json.dumps(kwargs))
    word, pid, bid = read_line(p).split()
    assert (word, int(pid)) == ("held", p.pid)
    return p.pid, bid


def process_stamp(pid: int) -> Optional[str]:
    """The start time of a running process (None if it is gone or a zombie),
    so that occupancy markers of dead or reused PIDs can be told apart."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if rest[0] in ("Z", "X"):
        return None
    return rest[19]  # field 22, starttime


# --------------------------------------------------- readers and writers ---

# A reader: takes the shared lock, then announces itself in argv[2] and waits
# until argv[3] readers have: that only ends if they all hold it at once.
# Leaves when the file argv[4] appears, removing its announcement first.
RENDEZVOUS = """
    import os, sys, time
    from lockfolder import LockFolder
    folder, meet, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    lock = LockFolder(folder, shared=True)
    lock.acquire(timeout=30)
    mine = os.path.join(meet, str(os.getpid()))
    open(mine, "w").close()
    deadline = time.monotonic() + 30
    while len(os.listdir(meet)) < n:
        if time.monotonic() > deadline:
            print("alone", flush=True)
            sys.exit(1)
        time.sleep(0.01)
    print("together", flush=True)
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.01)
    os.unlink(mine)
    lock.release()
"""

# A writer: takes the exclusive lock and reports how many readers are inside.
WRITER = """
    import os, sys
    from lockfolder import LockFolder
    lock = LockFolder(sys.argv[1])
    lock.acquire(timeout=30)
    print("held", len(os.listdir(sys.argv[2])), flush=True)
    lock.release()
"""


def test_readers_hold_together_and_exclude_a_writer(tmp_path: Path, children: Children) -> None:
    folder, meet, go = tmp_path / "lock", tmp_path / "meet", tmp_path / "go"
    meet.mkdir()
    n = 4
    args = (str(folder), str(meet), str(n), str(go))
    readers = [children.python(RENDEZVOUS, *args) for _ in range(n)]
    for r in readers:
        assert read_line(r) == "together"  # all n hold the shared lock at once
    live = [h for h in LockFolder(folder).holders() if h.state == "live"]
    assert sorted(h.pid or 0 for h in live) == sorted(r.pid for r in readers)
    assert {(h.mode, h.slots) for h in live} == {("shared", 1)}

    # A writer is shut out while they hold it; one more reader is not.
    writer = LockFolder(folder)
    assert writer.try_acquire() is False
    with pytest.raises(LockTimeout) as info:
        writer.acquire(timeout=0.3)
    assert any(f"PID {r.pid}" in info.value.holder for r in readers)
    extra = LockFolder(folder, shared=True)
    assert extra.try_acquire() is True
    extra.release()

    # A writer waiting now gets in once the readers leave, and finds none inside.
    waiting = children.python(WRITER, str(folder), str(meet))
    time.sleep(0.3)
    assert waiting.poll() is None
    go.touch()
    for r in readers:
        rc, _, err = finish(r)
        assert rc == 0, err
    rc, out, err = finish(waiting)
    assert rc == 0, err
    assert out.split() == ["held", "0"]
    # While a writer holds it, a reader is shut out.
    with writer:
        assert extra.try_acquire() is False
    assert bids(folder) == []


# A reader in a stream: takes the shared lock, marks itself inside
# (argv[2]/<monotonic ns>-<pid>) and keeps the lock until another reader has
# entered after it (or 1 s has passed), so that the readers' holds overlap
# and the lock is never free between them. Loops until argv[3] exists.
STREAM = """
    import os, sys, time
    from lockfolder import LockFolder
    folder, occ, stop = sys.argv[1], sys.argv[2], sys.argv[3]
    lock = LockFolder(folder, shared=True)
    me = str(os.getpid())
    entries = most = 0
    end = time.monotonic() + 40
    while not os.path.exists(stop) and time.monotonic() < end:
        lock.acquire(timeout=40)
        t = time.monotonic_ns()
        mine = os.path.join(occ, f"{t}-{me}")
        open(mine, "w").close()
        entries += 1
        entered = time.monotonic()
        while True:
            names = os.listdir(occ)
            most = max(most, len(names))
            later = [n for n in names if n.split("-")[1] != me and int(n.split("-")[0]) > t]
            now = time.monotonic()
            if (later and now > entered + 0.05) or now > entered + 1.0:
                break
            time.sleep(0.005)
        os.unlink(mine)
        lock.release()
    print("done", entries, most, flush=True)
"""


def test_writer_is_not_starved_by_a_reader_stream(tmp_path: Path, children: Children) -> None:
    folder, occ, stop = tmp_path / "lock", tmp_path / "occ", tmp_path / "stop"
    occ.mkdir()
    readers = [children.python(STREAM, str(folder), str(occ), str(stop)) for _ in range(3)]
    deadline = time.monotonic() + 30
    while len(os.listdir(occ)) < 2:  # the stream is flowing, holds overlap
        assert time.monotonic() < deadline, "readers never overlapped"
        time.sleep(0.01)
    time.sleep(1.0)
    writer = LockFolder(folder)
    assert writer.held_by_anyone()
    # With reader preference the stream would keep the writer out until it
    # ends (40 s); waiting is FIFO, so the writer gets in after the readers
    # inside when it started waiting (each leaves within 1 s).
    start = time.monotonic()
    writer.acquire(timeout=8)
    waited = time.monotonic() - start
    try:
        inside = []
        until = time.monotonic() + 0.5
        while time.monotonic() < until:  # the stream goes on, but not inside
            inside += os.listdir(occ)
            time.sleep(0.01)
        assert inside == [], f"readers inside with the writer: {inside}"
    finally:
        writer.release()
    time.sleep(0.5)  # readers resume after the writer
    stop.touch()
    results = []
    for r in readers:
        rc, out, err = finish(r)
        assert rc == 0, err
        word, entries, most = out.split()
        results.append((int(entries), int(most)))
    assert waited < 5.0, f"the writer waited {waited:.2f}s"
    assert max(most for _, most in results) >= 2, results
    assert all(entries >= 2 for entries, _ in results), results
    assert bids(folder) == []


# ------------------------------------------------------------ semaphores ---

# A semaphore worker: takes one of argv[4] slots, marks itself inside as
# argv[2]/<pid>-<start time>, counts the live holders inside (markers of dead
# processes are ignored: a killed holder leaves its marker), leaves. Loops
# until argv[3] exists; reports entries, the most it saw and the overflows.
SLOT_WORKER = """
    import os, random, sys, time
    from lockfolder import LockFolder
    folder, occ, stop, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    def stamp(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            return None
        return None if rest[0] in ("Z", "X") else rest[19]

    def inside():
        count = 0
        for name in os.listdir(occ):
            pid, start = name.split("-")
            if stamp(int(pid)) == start:
                count += 1
        return count

    lock = LockFolder(folder, slots=n)
    marker = os.path.join(occ, f"{os.getpid()}-{stamp(os.getpid())}")
    entries = most = over = 0
    deadline = time.monotonic() + 40
    while not os.path.exists(stop) and time.monotonic() < deadline:
        lock.acquire(timeout=40)
        open(marker, "w").close()
        entries += 1
        for _ in range(3):
            c = inside()
            most = max(most, c)
            over += c > n
            time.sleep(random.uniform(0.01, 0.04))
        os.unlink(marker)
        lock.release()
    print("done", entries, most, over, flush=True)
"""


def live_markers(occ: Path) -> int:
    count = 0
    for name in os.listdir(occ):
        pid, start = name.split("-")
        if process_stamp(int(pid)) == start:
            count += 1
    return count


def test_slots_are_never_exceeded_with_kill9(tmp_path: Path, children: Children) -> None:
    folder, occ, stop = tmp_path / "lock", tmp_path / "occ", tmp_path / "stop"
    occ.mkdir()
    n = 3
    args = (str(folder), str(occ), str(stop), str(n))
    workers = [children.python(SLOT_WORKER, *args) for _ in range(6)]
    rng = random.Random()
    kills = 0
    seen_here = 0
    until = time.monotonic() + 4.0
    while time.monotonic() < until:
        for _ in range(15):  # sample the occupancy from outside too
            c = live_markers(occ)
            assert c <= n, f"{c} holders inside a {n}-slot semaphore"
            seen_here = max(seen_here, c)
            time.sleep(0.02)
        i = rng.randrange(len(workers))
        os.kill(workers[i].pid, signal.SIGKILL)
        workers[i].wait(10)
        kills += 1
        workers[i] = children.python(SLOT_WORKER, *args)
    stop.touch()
    results = []
    for w in workers:
        rc, out, err = finish(w)
        assert rc == 0, err
        _, entries, seen, over = out.split()
        results.append((int(entries), int(seen), int(over)))
    assert kills >= 8
    assert all(over == 0 for _, _, over in results), results
    most = max(max(m for _, m, _ in results), seen_here)
    assert 2 <= most <= n, results  # the slots were shared, never exceeded
    # Every marker left now belongs to a worker killed while it held a slot:
    # the kills did hit holders, and the others went on past their bids.
    left = os.listdir(occ)
    assert left and live_markers(occ) == 0
    lock = LockFolder(folder, slots=n)
    assert all(h.state == "stale" for h in lock.holders())
    lock.clean()
    assert bids(folder) == []


def test_mismatched_slots_are_refused(tmp_path: Path, children: Children) -> None:
    pid, bid = hold(children, tmp_path, slots=3)
    for kwargs, ours in (({"slots": 2}, 2), ({}, 1), ({"shared": True}, 1), ({"slots": 4}, 4)):
        lock = LockFolder(tmp_path, **kwargs)
        with pytest.raises(SlotsMismatch) as info:
            lock.try_acquire()
        e = info.value
        assert isinstance(e, LockError)
        assert (e.path, e.ours, e.theirs) == (bid, ours, 3)
        assert "slot" in str(e)
        start = time.monotonic()
        with pytest.raises(SlotsMismatch):  # refused, not waited on
            lock.acquire(timeout=5)
        with pytest.raises(SlotsMismatch):
            asyncio.run(lock.acquire_async(timeout=5))
        assert time.monotonic() - start < 2.0
        assert not lock.is_locked
        assert bids(tmp_path) == [os.path.basename(bid)]  # no bid, no queue marker
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is SlotsMismatch
    assert (back.path, back.ours, back.theirs, str(back)) == (e.path, e.ours, e.theirs, str(e))
    assert lockfolder.SlotsMismatch is SlotsMismatch and "SlotsMismatch" in lockfolder.__all__
    # Agreeing contenders are fine.
    same = LockFolder(tmp_path, slots=3)
    assert same.try_acquire()
    same.release()
    # Only live bids count: once the holder is killed, another count may start.
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    two = LockFolder(tmp_path, slots=2)
    assert two.try_acquire()
    assert bids(tmp_path) == [os.path.basename(str(two.bid_path))]
    with pytest.raises(SlotsMismatch) as plain:
        LockFolder(tmp_path).acquire(timeout=5)
    assert (plain.value.ours, plain.value.theirs) == (1, 2)
    two.release()
    assert bids(tmp_path) == []


def test_invalid_arguments(tmp_path: Path) -> None:
    target = tmp_path / "never-created"
    bad: List[Dict[str, Any]] = [
        {"slots": 0},
        {"slots": -1},
        {"slots": 2**32},
        {"shared": True, "slots": 2},
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            LockFolder(target, **kwargs)
    with pytest.raises(TypeError):
        LockFolder(target, slots="3")  # type: ignore[arg-type]
    assert not target.exists()
    plain = LockFolder(tmp_path / "a")
    assert (plain.shared, plain.slots) == (False, 1)
    reader = LockFolder(tmp_path / "b", shared=True)
    assert (reader.shared, reader.slots) == (True, 1)
    sem = LockFolder(tmp_path / "c", slots=5, shared=False)
    assert (sem.shared, sem.slots) == (False, 5)
    assert "shared" in repr(reader) and "slots=5" in repr(sem)


def test_holders_show_mode_and_slots(tmp_path: Path, children: Children) -> None:
    readers, sem = tmp_path / "readers", tmp_path / "sem"
    pid, bid = hold(children, readers, shared=True, label="reader")
    mine = LockFolder(readers, shared=True)
    with mine:
        hs = {h.pid: h for h in mine.holders()}
        assert set(hs) == {pid, os.getpid()}
        assert all((h.mode, h.slots, h.state) == ("shared", 1, "live") for h in hs.values())
        assert hs[pid].label == "reader" and str(hs[pid].path) == bid
        assert "mode='shared'" in repr(hs[pid]) or 'mode="shared"' in repr(hs[pid])
    spid, _ = hold(children, sem, slots=3)
    (sem / "notes.txt").write_text("not a bid")
    entries = {h.name: h for h in LockFolder(sem, slots=3).holders()}
    (holder,) = [h for h in entries.values() if h.pid == spid]
    assert (holder.mode, holder.slots, holder.kind) == ("exclusive", 3, "bid")
    junk = entries["notes.txt"]
    assert (junk.mode, junk.slots, junk.state) == (None, None, "not-a-bid")
    for entry in [*entries.values(), *hs.values()]:
        check_typed(entry)
    plain = LockFolder(tmp_path / "plain")
    with plain:
        (h,) = plain.holders()
        assert (h.mode, h.slots) == ("exclusive", 1)


# ------------------------------------------- one contention test, each kind ---

# A worker of the generic contention test: argv[5] is its role, argv[6] the
# keyword arguments of its LockFolder. Inside, it marks itself as
# argv[2]/<role>-<pid> and checks the rule of its role against the others
# inside; writers also bump a counter (a lost update shows an overlap even if
# the markers missed it).
GENERIC = """
    import json, os, sys, time
    from lockfolder import LockFolder
    folder, occ, counter, rounds, role = sys.argv[1:6]
    kwargs = json.loads(sys.argv[6])
    lock = LockFolder(folder, **kwargs)
    capacity = kwargs.get("slots", 1)
    name = f"{role}-{os.getpid()}"
    mine = os.path.join(occ, name)
    bad = most = 0
    for _ in range(int(rounds)):
        with lock.acquire(timeout=50):
            open(mine, "x").close()
            others = [n for n in os.listdir(occ) if n != name]
            most = max(most, len(others) + 1)
            if role == "writer" and others:
                bad += 1
            if role == "reader" and any(n.startswith("writer-") for n in others):
                bad += 1
            if role == "slot" and len(others) + 1 > capacity:
                bad += 1
            if role == "writer":
                with open(counter) as f:
                    n = int(f.read())
                time.sleep(0.001)
                with open(counter, "w") as f:
                    f.write(str(n + 1))
            else:
                time.sleep(0.002)
            os.unlink(mine)
    print("bad", bad, "most", most, flush=True)
"""

KINDS: Dict[str, List[Tuple[str, Dict[str, Any]]]] = {
    "exclusive": [("writer", {})] * 4,
    "slots=1": [("writer", {"slots": 1})] * 4,
    "shared+writers": [("writer", {}), ("writer", {"shared": False})]
    + [("reader", {"shared": True})] * 3,
    "slots=3": [("slot", {"slots": 3})] * 5,
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_generic_contention(kind: str, tmp_path: Path, children: Children) -> None:
    folder, occ, counter = tmp_path / "lock", tmp_path / "occ", tmp_path / "count"
    occ.mkdir()
    counter.write_text("0")
    rounds = 30
    args = (str(folder), str(occ), str(counter), str(rounds))
    procs = [children.python(GENERIC, *args, role, json.dumps(kw)) for role, kw in KINDS[kind]]
    for p in procs:
        rc, out, err = finish(p)
        assert rc == 0, err
        word, bad, _, most = out.split()
        assert (word, int(bad)) == ("bad", 0), out
    writers = sum(role == "writer" for role, _ in KINDS[kind])
    assert int(counter.read_text()) == writers * rounds
    assert bids(folder) == [] and os.listdir(occ) == []


def test_readme_example_runs(tmp_path: Path, children: Children) -> None:
    readme = Path(__file__).resolve().parents[2] / "python" / "README.md"
    section = readme.read_text().split("## Shared locks and semaphores", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "shared=True" in code and "slots=4" in code
    p = children.python(code.replace('"/tmp/', f'"{tmp_path}/') + "\nprint('ok')\n")
    rc, out, err = finish(p)
    assert (rc, out.strip()) == (0, "ok"), err
    assert sorted(os.listdir(tmp_path)) == ["cache.lock", "gpu.lock"]
    assert bids(tmp_path / "cache.lock") == [] and bids(tmp_path / "gpu.lock") == []
