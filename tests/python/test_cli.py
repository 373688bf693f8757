"""The `lockfolder` console script installed by `pip install` runs the Rust
command line tool."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lockfolder

from conftest import HOLDER, Children, finish, read_line


def _script() -> str:
    here = Path(sys.executable).parent / "lockfolder"
    found = str(here) if here.exists() else shutil.which("lockfolder")
    if found is None:
        pytest.fail("the lockfolder console script is not installed next to this Python")
    return found


def _run(*args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [_script(), *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_version() -> None:
    r = _run("--version")
    assert r.returncode == 0, r.stderr
    assert lockfolder.__version__ in r.stdout


def test_status_shows_the_holder(tmp_path: Path, children: Children) -> None:
    r = _run("status", str(tmp_path))
    assert r.returncode == 0, r.stderr  # free
    holder = children.python(HOLDER, str(tmp_path), "60", "cli-check")
    _, pid, bid = read_line(holder).split()
    r = _run("status", str(tmp_path), "--json")
    assert r.returncode == 1, r.stderr  # held
    doc = json.loads(r.stdout)
    assert doc["locked"] is True
    assert pid in r.stdout and os.path.basename(bid) in r.stdout


def test_run_under_the_lock(tmp_path: Path) -> None:
    r = _run("run", str(tmp_path), "--", sys.executable, "-c", "print('inside')")
    assert (r.returncode, r.stdout.strip()) == (0, "inside"), r.stderr
    assert os.listdir(tmp_path) == []


def test_python_dash_m(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "lockfolder", "status", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "free" in r.stdout
