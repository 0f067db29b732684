"""A fixed pool of inference threads with a hard bound on admitted work.

``ThreadPoolExecutor`` alone queues without limit; under overload that turns into unbounded
memory and latency. ``BoundedPool`` counts what it has admitted (waiting + running) and
refuses more at once, so the server can answer 503 while it still has room to answer at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    """Every worker is busy and the queue is full: answer 503 and let the client retry."""


@dataclass(frozen=True)
class PoolStats:
    running: int
    waiting: int
    capacity: int
    completed: int
    rejected: int


class BoundedPool:
    """Run calls on ``workers`` threads; at most ``workers + queue_size`` admitted at once."""

    def __init__(self, workers: int, queue_size: int, thread_name: str = "edgekit-infer"):
        self.capacity = workers + queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name)
        self._lock = threading.Lock()
        self._admitted = 0  # waiting + running; released by the future's done callback
        self._running = 0
        self._completed = 0
        self._rejected = 0

    def submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        """Admit ``fn(*args)`` or raise ``QueueFull`` at once; never blocks."""
        with self._lock:
            if self._admitted >= self.capacity:
                self._rejected += 1
                raise QueueFull(f"{self._admitted} requests are already running or waiting (limit {self.capacity}).")
            self._admitted += 1
        try:
            future = self._executor.submit(self._run, fn, *args)
        except BaseException:  # shut down: give the slot back before telling the caller
            self._release()
            raise
        # Also fires for a waiting call that is cancelled (client gone), so its slot comes back.
        future.add_done_callback(lambda _: self._release(completed=True))
        return future

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(self._running, self._admitted - self._running, self.capacity, self._completed,
                             self._rejected)  # fmt: skip

    def shutdown(self) -> None:
        """Finish everything admitted, then stop the threads."""
        self._executor.shutdown(wait=True)

    def _run(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            self._running += 1
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._running -= 1

    def _release(self, completed: bool = False) -> None:
        with self._lock:
            self._admitted -= 1
            self._completed += completed
