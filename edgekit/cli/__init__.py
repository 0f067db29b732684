"""The ``edgekit`` command line: one module per command, assembled in ``main.py``.

Heavy libraries (torch, transformers, optimum) are imported inside the commands that
need them, so ``edgekit bench`` and ``edgekit targets`` work with the runtime install only.
"""

from edgekit.cli.main import app, main

__all__ = ["app", "main"]
