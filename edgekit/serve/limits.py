"""What one server accepts: request size limits, the bounds on queued work, requests in flight and connections."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from edgekit.errors import EdgekitError

# Connections beyond one per request in flight, so that health checks get a connection (and an answer)
# when every request in flight holds one.
CONNECTION_HEADROOM = 4
# A text longer than this many characters per token of the model's max_length is refused: the model reads
# only its first max_length tokens (about 4-5 characters each in English), so the rest would be tokenized
# for nothing. 8 leaves room for scripts and texts that tokenize short.
CHARS_PER_TOKEN = 8


class ServeError(EdgekitError):
    """The server cannot start: the ``serve`` extra is missing or a setting is invalid."""


@dataclass(frozen=True)
class ServeLimits:
    """Limits of ``edgekit serve``; each is a CLI option of the same name.

    At most ``workers + queue_size`` predict requests are admitted at once (running or
    waiting for a worker); the next one gets 503 with Retry-After rather than a growing queue.
    At most ``max_in_flight`` requests with a body are being read or answered at once, each body at
    most ``max_body_bytes``: that bounds the memory of uploads; beyond, 503 with Retry-After before
    the body is read. At most ``max_connections`` connections are open; beyond, new clients wait in
    the kernel's listen backlog until one closes (never refused). One request's work is bounded by
    ``max_texts``, ``max_text_chars`` and ``max_request_chars``, and runs in inference calls of at
    most ``max_batch_tokens`` padded tokens, which bounds its memory whatever the model's max_length.
    For an image model: ``max_images`` per request, each at most ``max_image_bytes`` encoded (and at
    most the manifest's ``max_image_bytes`` and ``max_image_pixels``), in inference calls of at most
    ``max_batch_tokens`` units of 1024 input values (a 3x224x224 image is 147 units).
    """

    workers: int = 1  # inferences that run at once, each on its own thread
    queue_size: int = 16  # admitted requests that may wait for a free worker
    max_texts: int = 64  # texts in one request
    max_text_chars: int | None = None  # characters in one text; None: CHARS_PER_TOKEN x the model's max_length
    max_body_bytes: int = 1_048_576  # request body, enforced while reading, whatever Content-Length says
    max_connections: int = 512  # open connections; beyond, clients wait in the listen backlog
    max_in_flight: int = 64  # requests with a body being read or answered; beyond: 503 before reading
    max_request_chars: int = 32_768  # characters in all the texts of one request: bounds its time
    max_batch_tokens: int = 2048  # rows x padded tokens per inference call: bounds its memory
    max_images: int = 16  # images in one request (image models)
    max_image_bytes: int | None = None  # encoded bytes of one image; None: the manifest's max_image_bytes
    max_batch: int | None = None  # dynamic batching: inputs of concurrent requests per engine call; None: off
    max_delay_ms: float = 5.0  # dynamic batching: how long the oldest request waits for batch-mates

    def __post_init__(self) -> None:
        positive = {"workers": self.workers, "max_texts": self.max_texts, "max_body_bytes": self.max_body_bytes,
                    "max_request_chars": self.max_request_chars, "max_batch_tokens": self.max_batch_tokens,
                    "max_images": self.max_images}  # fmt: skip
        for name in ("max_text_chars", "max_image_bytes"):
            if getattr(self, name) is not None:
                positive[name] = getattr(self, name)
        for name, value in positive.items():
            if value < 1:
                raise ServeError(f"{name} must be at least 1, not {value}.")
        if self.max_batch is not None and self.max_batch < 1:
            raise ServeError(f"max_batch must be at least 1 (or None: no dynamic batching), not {self.max_batch}.")
        if not 0 <= self.max_delay_ms <= 1000:
            raise ServeError(f"max_delay_ms must be between 0 and 1000, not {self.max_delay_ms}: it is added to the "
                             "latency of a request that waits for batch-mates.")  # fmt: skip
        if self.queue_size < 0:
            raise ServeError(f"queue_size must be 0 (no waiting) or more, not {self.queue_size}.")
        if self.max_in_flight < self.capacity:
            raise ServeError(
                f"max_in_flight must be at least workers + queue_size = {self.capacity}, not {self.max_in_flight}: "
                f"each admitted request is in flight. Pass --max-in-flight {self.capacity} or more, or a smaller "
                "--queue-size."
            )
        least = self.capacity + CONNECTION_HEADROOM
        if self.max_connections < least:
            raise ServeError(
                f"max_connections must be at least workers + queue_size + {CONNECTION_HEADROOM} = {least}, not "
                f"{self.max_connections}: each admitted request holds a connection, and health checks need a few "
                f"more. Pass --max-connections {least} or more, or a smaller --queue-size."
            )

    def for_model(self, max_length: int) -> ServeLimits:
        """These limits with ``max_text_chars`` filled in from the model's max_length (in tokens)."""
        if self.max_text_chars is not None:
            return self
        return replace(self, max_text_chars=CHARS_PER_TOKEN * max_length)

    def for_images(self, manifest_max_image_bytes: int) -> ServeLimits:
        """These limits for an image model: ``max_image_bytes`` no more than the manifest allows.

        ``max_text_chars`` is filled too (with ``max_request_chars``) so that every limit has a number
        to report; an image model refuses text fields anyway.
        """
        own = self.max_image_bytes or manifest_max_image_bytes
        return replace(self, max_image_bytes=min(own, manifest_max_image_bytes),
                       max_text_chars=self.max_text_chars or self.max_request_chars)  # fmt: skip

    def rows_per_call(self, max_length: int) -> int:
        """Texts per inference call: a call pads to at most max_length tokens per row."""
        return max(1, self.max_batch_tokens // max_length)

    @property
    def capacity(self) -> int:
        """Predict requests admitted at once (running + waiting)."""
        return self.workers + self.queue_size

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "capacity": self.capacity}
