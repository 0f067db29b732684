"""``edgekit serve``: an artifact behind a small, bounded HTTP JSON API (FastAPI + uvicorn).

FastAPI and uvicorn come with the ``serve`` extra. This module and ``limits``, ``admission``
and ``payload`` import only the standard library, so ``edgekit --help`` and the base install
never load them; ``serve_artifact`` checks they are installed before loading anything.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from edgekit.serve.limits import ServeError, ServeLimits

__all__ = ["ServeError", "ServeLimits", "require_serve_extra", "serve_artifact"]

_EXTRA_MODULES = ("fastapi", "uvicorn", "prometheus_client")


def require_serve_extra() -> None:
    """Fail with the install command when the ``serve`` extra is missing."""
    missing = []
    for name in _EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ServeError(
            f"edgekit serve needs {' and '.join(missing)}, which the base install leaves out: "
            "pip install 'edgekit[serve]'"
        )


def serve_artifact(
    artifact: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int | None = None,
    limits: ServeLimits | None = None,
    access_log: bool = False,
    engine_options: dict[str, dict[str, list[str]]] | None = None,
) -> None:
    """Load ``artifact`` (or a bundle's recommended variant) and serve it until SIGTERM/SIGINT.

    ``engine_options``: execution providers / devices per engine (``--provider``), layered over the
    artifact's own ``runtime`` settings."""
    require_serve_extra()  # before loading the model: a missing extra should fail in milliseconds
    from edgekit.serve.server import run_server

    run_server(Path(artifact), host, port, threads, limits or ServeLimits(), access_log, engine_options)
