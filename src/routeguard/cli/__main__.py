"""``python -m routeguard.cli``: the same command as the ``routeguard`` script."""

from routeguard.cli import main

main()
