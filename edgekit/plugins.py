"""Plug-ins from entry-point groups, loaded once, where a broken one is named when it is asked for.

Shared by the variant and task registries (the engine registry keeps its own lazier copy, since
the slim runtime imports nothing outside ``edgekit.runtime``/``artifact``/``errors``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any


class PluginGroup:
    def __init__(self, group: str, register: Callable[[Any], Any]):
        self.group = group
        self._register = register
        self._loaded = False
        self.broken: dict[str, str] = {}  # plug-in name -> why it failed to load

    def load(self) -> None:
        """Register every plug-in of the group (once); a failing one is recorded, never fatal to the others."""
        if self._loaded:
            return
        self._loaded = True
        for entry in entry_points(group=self.group):
            try:
                self._register(entry.load())
            except Exception as exc:  # a broken plug-in must not take the built-in entries down with it
                self.broken[entry.name] = f"{entry.value}: {type(exc).__name__}: {exc}"

    def failure(self, name: str) -> str | None:
        """Why the plug-in called ``name`` failed to load, if it did."""
        return self.broken.get(name)
