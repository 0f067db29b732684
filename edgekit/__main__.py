"""``python -m edgekit …`` is ``edgekit …`` (and lets ``torchrun -m edgekit distill`` work)."""

from edgekit.cli import main

main()
