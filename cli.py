"""Thin shim: ``python cli.py …`` is the same as ``edgekit …``."""

from edgekit.cli import main

if __name__ == "__main__":
    main()
