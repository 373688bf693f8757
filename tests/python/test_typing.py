"""The type stub is precise enough for mypy to catch mistakes: entry kinds
and states are `Literal` types, `is_locked` is a property."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

MISTAKES = """
    from lockfolder import LockFolder

    lock = LockFolder("x")
    for h in lock.holders():
        if h.state == "alive":  # no such state
            pass
        if h.kind == "json":  # no such kind
            pass
    if lock.is_locked():  # a property, not a method
        pass
"""


def test_mypy_catches_misuse(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    bad = tmp_path / "mistakes.py"
    bad.write_text(textwrap.dedent(MISTAKES))
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(bad)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    lines = [line for line in r.stdout.splitlines() if "error:" in line]
    assert r.returncode == 1, r.stdout + r.stderr
    assert any(":6: error: Non-overlapping equality check" in line for line in lines), lines
    assert any(":8: error: Non-overlapping equality check" in line for line in lines), lines
    assert any(":10: error:" in line and "not callable" in line for line in lines), lines
    assert len(lines) == 3, lines
