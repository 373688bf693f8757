"""Helpers for the Python tests: child interpreters with deadlines, cleaned up
whatever happens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence, Set

import pytest

if TYPE_CHECKING:
    import lockfolder

# Every child gets a deadline; a test that would hang fails instead.
DEADLINE = 60.0


class Children:
    """Starts child processes and ends the ones still running at teardown
    (by PID, only those started here)."""

    def __init__(self) -> None:
        self.procs: List[subprocess.Popen[str]] = []

    def python(
        self,
        code: str,
        *args: str,
        python: Optional[str] = None,
        cwd: Optional[Path] = None,
        stdout: int = subprocess.PIPE,
        stdin: int = subprocess.DEVNULL,
    ) -> subprocess.Popen[str]:
        argv = [python or sys.executable, "-u", "-c", textwrap.dedent(code), *args]
        return self.start(argv, cwd=cwd, stdout=stdout, stdin=stdin)

    def start(
        self,
        argv: Sequence[str],
        cwd: Optional[Path] = None,
        stdout: int = subprocess.PIPE,
        stdin: int = subprocess.DEVNULL,
    ) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        self.procs.append(p)
        return p

    def cleanup(self) -> None:
        for p in self.procs:
            if p.stdin is not None:
                try:
                    p.stdin.close()
                except OSError:
                    pass
            if p.poll() is None:
                p.kill()
            try:
                p.communicate(timeout=10)
            except (subprocess.TimeoutExpired, ValueError):
                pass


@pytest.fixture
def children() -> Iterator[Children]:
    c = Children()
    try:
        yield c
    finally:
        c.cleanup()


def read_line(p: "subprocess.Popen[str]", timeout: float = DEADLINE) -> str:
    """The next line the child prints, or a failure naming what it said."""
    assert p.stdout is not None
    deadline = time.monotonic() + timeout
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            if sel.select(timeout=0.1):
                line = p.stdout.readline()
                if line:
                    return line.strip()
                break
        p.kill()
        _, err = p.communicate(timeout=10)
        raise AssertionError(f"child printed no line in time; stderr:\n{err}")
    finally:
        sel.close()


def finish(p: "subprocess.Popen[str]", timeout: float = DEADLINE) -> "tuple[int, str, str]":
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=10)
        raise AssertionError(f"child still running after {timeout}s; stderr:\n{err}")
    return p.returncode, out, err


def bids(folder: Path) -> List[str]:
    return sorted(os.listdir(folder))


def legacy_python() -> Optional[str]:
    """The interpreter of the virtualenv holding lockfolder 1.0.2 (set by
    scripts/test-python.sh)."""
    return os.environ.get("LOCKFOLDER_LEGACY_PYTHON")


# A child that takes the lock, prints "held <pid> <bid path>", keeps it for
# argv[2] seconds (default 60), releases it and prints "released".
HOLDER = """
    import os, sys, time
    from lockfolder import LockFolder
    label = sys.argv[3] if len(sys.argv) > 3 else None
    lock = LockFolder(sys.argv[1], label=label)
    lock.acquire(timeout=30)
    print("held", os.getpid(), lock.bid_path, flush=True)
    time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 60.0)
    lock.release()
    print("released", flush=True)
"""


def sigint(p: "subprocess.Popen[str]") -> None:
    os.kill(p.pid, signal.SIGINT)


def stub_literal(name: str) -> Set[str]:
    """The strings of the `Literal` alias `name` in the installed type stub
    of the native module (so a value the stub does not list fails a test)."""
    import ast

    import lockfolder

    stub = Path(lockfolder.__file__).parent / "_lockfolder.pyi"
    for node in ast.parse(stub.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == name
            and isinstance(node.value, ast.Subscript)
        ):
            elts = node.value.slice
            items = elts.elts if isinstance(elts, ast.Tuple) else [elts]
            return {e.value for e in items if isinstance(e, ast.Constant)}
    raise AssertionError(f"{stub} has no Literal alias {name}")


def check_typed(h: "lockfolder.Holder") -> None:
    """`h.kind`, `h.state` and `h.mode` are among the stub's literals."""
    assert h.kind in stub_literal("_EntryKind"), h.kind
    assert h.state in stub_literal("_EntryState"), h.state
    assert h.mode is None or h.mode in stub_literal("_LockMode"), h.mode
