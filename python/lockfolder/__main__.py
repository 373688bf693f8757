"""``python -m lockfolder ...`` runs the ``lockfolder`` command."""

from ._cli import main

main()
