"""The ``lockfolder`` console script: the Rust command line tool, run in
this process through the native module (there is no second implementation)."""

from __future__ import annotations

import signal
import sys
from typing import List, Optional

from ._lockfolder import cli_main


def main(argv: Optional[List[str]] = None) -> None:
    """Runs ``lockfolder`` with ``argv`` (default: ``sys.argv[1:]``) and exits
    with its status."""
    args = sys.argv[1:] if argv is None else argv
    # Behave like the native binary: Ctrl-C ends the tool rather than waiting
    # for Python to look at its signal flag after the tool has returned.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(cli_main(["lockfolder", *args]))
