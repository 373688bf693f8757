"""lockfolder 1.0.2 under wine, with the Windows CPython of wine/python.sh.

Checks, each with real processes: a lock is taken in an empty folder and its
bid names this process; unlock empties the folder; a live holder (a child
process) keeps the lock from us; after the child is ended with TerminateProcess
(psutil's kill) its bid is left behind, and our next lock() challenges it away
and takes the lock. Exits 0 only if every check held; prints one line per check.

    python lockfolder102_demo.py            # the demo
    python lockfolder102_demo.py child DIR  # (the child: lock DIR, then wait)
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import psutil
from lockfolder import lockfolder

failed = 0


def check(ok: bool, what: str) -> None:
    global failed
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failed += 1


def child(folder: pathlib.Path) -> int:
    lockfolder.setup()
    if not lockfolder.lock(folder):
        print("refused", flush=True)
        return 2
    print("locked", flush=True)
    time.sleep(120)  # the parent ends us long before
    return 0


def demo(folder: pathlib.Path) -> None:
    lockfolder.setup()
    check(lockfolder.lock(folder), "lock() in an empty folder")
    check(lockfolder.have_lock(folder), "have_lock() after lock()")
    bids = list(folder.iterdir())
    check(len(bids) == 1, f"one bid in the folder ({[b.name for b in bids]})")
    data = json.loads(bids[0].read_text("utf-8"))
    me = psutil.Process()
    check(data.get("PID") == os.getpid(), f"the bid names our PID ({data})")
    check(
        data.get("CREATED") == int(me.create_time()),
        f"the bid carries our start time (psutil create_time {me.create_time():.3f})",
    )
    lockfolder.unlock(folder)
    check(not any(folder.iterdir()), "unlock() empties the folder")

    holder = subprocess.Popen(
        [sys.executable, __file__, "child", str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = holder.stdout.readline().strip() if holder.stdout else ""
        check(line == "locked", f"a child process took the lock (said {line!r})")
        theirs = list(folder.iterdir())
        check(len(theirs) == 1, "the child's bid is in the folder")
        check(not lockfolder.lock(folder), "lock() refused while the child lives")
        check(len(list(folder.iterdir())) == 1, "our withdrawn bid is gone again")

        psutil.Process(holder.pid).kill()  # TerminateProcess on Windows
        code = holder.wait(timeout=30)
        check(code != 0, f"the child was ended by TerminateProcess (exit code {code})")
        check(psutil.pid_exists(holder.pid) is False, "psutil sees the child's PID gone")
        check(all(b.exists() for b in theirs), "its bid was left behind (stale)")
        check(lockfolder.lock(folder), "lock() challenged the stale bid away and took the lock")
        check(not any(b.exists() for b in theirs), "the stale bid was removed")
        check(len(list(folder.iterdir())) == 1, "only our bid is left")
        lockfolder.unlock(folder)
        check(not any(folder.iterdir()), "unlock() empties the folder again")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        return child(pathlib.Path(sys.argv[2]))
    print(f"Python {sys.version.split()[0]} on {sys.platform}, psutil {psutil.__version__}", flush=True)
    root = pathlib.Path(tempfile.mkdtemp(prefix="lockfolder102-"))
    try:
        folder = root / "lock"
        folder.mkdir()
        demo(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{failed} failed" if failed else "all checks passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
