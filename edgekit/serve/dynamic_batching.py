"""Dynamic batching: concurrent requests share one engine call (``--max-batch``, ``--max-delay-ms``).

A worker takes the oldest waiting request, waits at most ``max_delay_ms`` from that request's
arrival for others, and runs up to ``max_batch`` inputs (texts or images) in one call; each
request gets its own rows back. Requests are never split: one larger than ``max_batch`` runs
alone. Admission is bounded as without batching (``workers + queue_size`` requests), so overload
is still a 503 at once, never a growing queue.

Only for batch-invariant artifacts (the manifest's ``batch_invariant``): there a row's answer does
not depend on its batch-mates, so a batched answer is the unbatched one. Elsewhere (ONNX Runtime
dynamic INT8: activation scales are computed over the whole batch) the runtime runs every row
alone anyway, so batching could only add delay: ``check_batching`` refuses it at startup.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import InputError
from edgekit.runtime import EdgeModel
from edgekit.serve.admission import PoolStats, QueueFull
from edgekit.serve.inference import Result, predict_in_calls
from edgekit.serve.limits import ServeError


def check_batching(model: EdgeModel, max_batch: int | None) -> None:
    """Refuse dynamic batching for an artifact whose rows may not share an engine call."""
    if max_batch is None or model.settings.batch_invariant:
        return
    manifest = model.manifest
    raise ServeError(
        f"--max-batch needs a batch-invariant artifact, and this one ({manifest.engine} {manifest.precision}) is "
        f"not ({model.settings.batch_invariant_source} says batch_invariant is false): its rows run one by one, so "
        "grouping requests would only add delay, and a batched answer could differ from an unbatched one. Serve a "
        "batch-invariant variant (onnx-fp32, ort-int8-static, ov-int8, ...) or leave out --max-batch."
    )


@dataclass
class _Waiting:
    inputs: Sequence[Any]
    arrived: float  # time.perf_counter() at admission
    future: Future[Result] = field(default_factory=Future)


class DynamicBatcher:
    """``workers`` threads, each running batches of at most ``max_batch`` inputs; same face as ``PooledInference``."""

    def __init__(self, model: EdgeModel, workers: int, queue_size: int, rows_per_call: int, max_batch: int,
                 max_delay_ms: float):  # fmt: skip
        self.model = model
        self.rows_per_call = rows_per_call
        self.max_batch = max_batch
        self.max_delay_s = max_delay_ms / 1e3
        self.capacity = workers + queue_size
        self.batches = 0  # engine batches run (a request may take several calls; see predict_in_calls)
        self._queue: deque[_Waiting] = deque()
        self._ready = threading.Condition()
        self._forming = threading.Lock()  # one worker gathers a batch at a time, so batches are not split
        self._closed = False
        self._running = self._completed = self._rejected = 0
        self._threads = [threading.Thread(target=self._work, name=f"edgekit-batch-{i}", daemon=True)
                         for i in range(workers)]  # fmt: skip
        for thread in self._threads:
            thread.start()

    def submit(self, inputs: Sequence[Any]) -> Future[Result]:
        """Admit a request or raise ``QueueFull`` at once; never blocks."""
        with self._ready:
            if self._closed:
                raise RuntimeError("the server is shutting down")
            admitted = len(self._queue) + self._running
            if admitted >= self.capacity:
                self._rejected += 1
                raise QueueFull(f"{admitted} requests are already running or waiting (limit {self.capacity}).")
            waiting = _Waiting(inputs, time.perf_counter())
            self._queue.append(waiting)
            self._ready.notify_all()
        return waiting.future

    def batches_run(self) -> int:
        return self.batches

    def stats(self) -> PoolStats:
        with self._ready:
            return PoolStats(self._running, len(self._queue), self.capacity, self._completed, self._rejected)

    def shutdown(self) -> None:
        """Answer everything admitted, then stop the threads."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        while True:
            with self._forming:
                batch = self._gather()
            if not batch:
                return
            self._run(batch)

    def _gather(self) -> list[_Waiting]:
        """The next batch: the oldest request and those that arrive within its delay, up to ``max_batch`` inputs."""
        with self._ready:
            while not self._queue:
                if self._closed:
                    return []
                self._ready.wait()
            deadline = self._queue[0].arrived + self.max_delay_s
            while not self._closed and self._queued_rows() < self.max_batch:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._ready.wait(left)
            batch = [self._queue.popleft()]
            rows = len(batch[0].inputs)
            while self._queue and rows + len(self._queue[0].inputs) <= self.max_batch:
                rows += len(self._queue[0].inputs)
                batch.append(self._queue.popleft())
            self._running += len(batch)
            return batch

    def _queued_rows(self) -> int:
        return sum(len(w.inputs) for w in self._queue)

    def _run(self, batch: list[_Waiting]) -> None:
        start = time.perf_counter()
        inputs = [row for waiting in batch for row in waiting.inputs]
        try:
            predictions = predict_in_calls(self.model, inputs, self.rows_per_call)
        except InputError as exc:
            if len(batch) == 1:
                self._fail(batch, exc)
                return
            # One request's input the payload checks let through: run each alone, so only that one fails.
            for waiting in batch:
                self._run_alone(waiting)
            self._finish(batch)
            return
        except BaseException as exc:  # a bug or the engine's error: every request of the batch gets it (500)
            self._fail(batch, exc)
            return
        elapsed = time.perf_counter() - start
        self._finish(batch)
        first = 0
        for waiting in batch:
            rows = predictions[first : first + len(waiting.inputs)]
            first += len(waiting.inputs)
            waiting.future.set_result((rows, start - waiting.arrived, elapsed))

    def _run_alone(self, waiting: _Waiting) -> None:
        start = time.perf_counter()
        try:
            rows = predict_in_calls(self.model, waiting.inputs, self.rows_per_call)
        except BaseException as exc:
            waiting.future.set_exception(exc)
            return
        waiting.future.set_result((rows, start - waiting.arrived, time.perf_counter() - start))

    def _fail(self, batch: list[_Waiting], exc: BaseException) -> None:
        self._finish(batch)
        for waiting in batch:
            waiting.future.set_exception(exc)

    def _finish(self, batch: list[_Waiting]) -> None:
        with self._ready:
            self._running -= len(batch)
            self._completed += len(batch)
            self.batches += 1
