"""Prometheus metrics for ``GET /metrics`` (prometheus-client, in the ``serve`` extra).

Each app has its own registry (several apps in one process, as in tests, must not share counters).
Requests are counted by route *template* (``/v2/models/{name}/infer``), never by the raw path: a
client sending random paths must not grow the metric set without bound. Requests answered below
the app (malformed HTTP, refused by h11) are not seen here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from edgekit.serve.admission import PoolStats

# Latency buckets from 1 ms to 10 s: edge models answer in milliseconds, an overloaded server in seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNROUTED = "unrouted"  # no route matched (404), or refused before routing (503 of --max-in-flight)


class ServeMetrics:
    def __init__(self, stats: Callable[[], PoolStats], load_seconds: float | None, info: dict[str, str],
                 batches: Callable[[], int] | None = None):  # fmt: skip
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("edgekit_requests", "HTTP requests answered, by route template, method and status",
                                ["route", "method", "status"], registry=self.registry)  # fmt: skip
        self.latency = Histogram("edgekit_request_duration_seconds", "Time from request start to the last byte of "
                                 "the answer, by route template", ["route", "method"], buckets=BUCKETS,
                                 registry=self.registry)  # fmt: skip
        self.overloaded = Counter("edgekit_overloaded", "Requests answered 503 (queue full or too many in flight)",
                                  ["route"], registry=self.registry)  # fmt: skip
        depth = Gauge("edgekit_queue_depth", "Admitted requests running or waiting for a worker",
                      registry=self.registry)  # fmt: skip
        depth.set_function(lambda: _depth(stats()))
        capacity = Gauge("edgekit_queue_capacity", "Requests admitted at once (workers + queue size)",
                         registry=self.registry)  # fmt: skip
        capacity.set_function(lambda: stats().capacity)
        load = Gauge("edgekit_model_load_seconds", "Seconds EdgeModel.load took at startup (verify, session)",
                     registry=self.registry)  # fmt: skip
        load.set(load_seconds if load_seconds is not None else float("nan"))
        if batches is not None:  # dynamic batching: requests / batches is the mean batch size
            batched = Gauge("edgekit_dynamic_batches", "Engine batches run by dynamic batching since start",
                            registry=self.registry)  # fmt: skip
            batched.set_function(batches)
        labels = Gauge("edgekit_model_info", "The loaded model (value 1)", sorted(info), registry=self.registry)
        labels.labels(**info).set(1)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def middleware(self, app: Any) -> Any:
        """For ``app.add_middleware(metrics.middleware)``: counts and times every HTTP request of ``app``."""

        async def measured(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = [500]  # if the app raises before answering, Starlette's error answer is a 500

            async def send_seen(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status[0] = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, send_seen)
            finally:
                self._observe(scope, status[0], time.perf_counter() - start)

        return measured

    def _observe(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        route = scope.get("route")  # FastAPI sets the matched route in the scope
        template = getattr(route, "path", None) or UNROUTED
        method = scope.get("method", "")
        self.requests.labels(template, method, str(status)).inc()
        self.latency.labels(template, method).observe(seconds)
        if status == 503:
            self.overloaded.labels(template).inc()


def _depth(stats: PoolStats) -> int:
    return stats.running + stats.waiting
