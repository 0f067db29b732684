"""What one server accepts: request size limits, the bound on queued work and on open connections."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edgekit.errors import EdgekitError

# Connections beyond one per admitted request, so that health checks (and 503 answers) still get through
# when every admitted request holds a connection.
CONNECTION_HEADROOM = 4


class ServeError(EdgekitError):
    """The server cannot start: the ``serve`` extra is missing or a setting is invalid."""


@dataclass(frozen=True)
class ServeLimits:
    """Limits of ``edgekit serve``; each is a CLI option of the same name.

    At most ``workers + queue_size`` predict requests are admitted at once (running or
    waiting for a worker); the next one gets 503 with Retry-After rather than a growing queue.
    At most ``max_connections`` connections are served at once, each of which may be reading a
    body of up to ``max_body_bytes``: that bounds the memory of uploads, admitted or not.
    """

    workers: int = 1  # inferences that run at once, each on its own thread
    queue_size: int = 16  # admitted requests that may wait for a free worker
    max_texts: int = 64  # texts in one request
    max_text_chars: int = 10_000  # characters in one text (longer inputs are truncated in tokens anyway)
    max_body_bytes: int = 1_048_576  # request body, enforced while reading, whatever Content-Length says
    max_connections: int = 64  # open connections (uvicorn's limit_concurrency): beyond, uvicorn answers 503

    def __post_init__(self) -> None:
        positive = {"workers": self.workers, "max_texts": self.max_texts, "max_text_chars": self.max_text_chars,
                    "max_body_bytes": self.max_body_bytes}  # fmt: skip
        for name, value in positive.items():
            if value < 1:
                raise ServeError(f"{name} must be at least 1, not {value}.")
        if self.queue_size < 0:
            raise ServeError(f"queue_size must be 0 (no waiting) or more, not {self.queue_size}.")
        least = self.capacity + CONNECTION_HEADROOM
        if self.max_connections < least:
            raise ServeError(
                f"max_connections must be at least workers + queue_size + {CONNECTION_HEADROOM} = {least}, not "
                f"{self.max_connections}: each admitted request holds a connection, and health checks need a few "
                f"more. Pass --max-connections {least} or more, or a smaller --queue-size."
            )

    @property
    def capacity(self) -> int:
        """Predict requests admitted at once (running + waiting)."""
        return self.workers + self.queue_size

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "capacity": self.capacity}
