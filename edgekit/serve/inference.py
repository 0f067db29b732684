"""How admitted requests reach the model: each on its own (the bounded pool) or grouped (dynamic batching).

Both runners have the same face, ``submit(inputs) -> Future[(predictions, queue_s, inference_s)]``
(``QueueFull`` at once when the bound is reached), ``stats()`` and ``shutdown()``, so the routes
of ``/v1`` and ``/v2`` do not know which one runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from edgekit.runtime import EdgeModel, Prediction
from edgekit.serve.admission import BoundedPool, PoolStats

Result = tuple[list[Prediction], float, float]  # predictions, seconds queued, seconds of inference


class Runner(Protocol):
    def submit(self, inputs: Sequence[Any]) -> Future[Result]: ...
    def stats(self) -> PoolStats: ...
    def shutdown(self) -> None: ...


def predict_in_calls(model: EdgeModel, inputs: Sequence[Any], rows_per_call: int) -> list[Prediction]:
    """The inputs through the model ``rows_per_call`` at a time.

    One padded batch of 64 texts of 512 tokens peaked at 2.3 GB (and kept it); calls of at most
    ``--max-batch-tokens`` padded tokens bound it.
    """
    predictions: list[Prediction] = []
    for first in range(0, len(inputs), rows_per_call):
        predictions += model.predict_batch(list(inputs[first : first + rows_per_call]))
    return predictions


def timed_predict(model: EdgeModel, inputs: Sequence[Any], rows_per_call: int, submitted: float) -> Result:
    """Runs on a pool thread: the predictions, the time from admission to a worker starting, and inference time."""
    start = time.perf_counter()
    predictions = predict_in_calls(model, inputs, rows_per_call)
    return predictions, start - submitted, time.perf_counter() - start


class PooledInference:
    """Each request in its own engine calls, on ``workers`` threads, at most ``workers + queue_size`` admitted."""

    def __init__(self, model: EdgeModel, workers: int, queue_size: int, rows_per_call: int):
        self.model = model
        self.rows_per_call = rows_per_call
        self.pool = BoundedPool(workers, queue_size)

    def submit(self, inputs: Sequence[Any]) -> Future[Result]:
        return self.pool.submit(timed_predict, self.model, inputs, self.rows_per_call, time.perf_counter())

    def stats(self) -> PoolStats:
        return self.pool.stats()

    def shutdown(self) -> None:
        self.pool.shutdown()
