"""The FastAPI app: ``POST /v1/predict``, ``GET /v1/health`` and ``GET /v1/model`` over one loaded model,
plus the KServe v2 routes (``v2.py``) and ``GET /metrics`` (``metrics.py``).

Requests are parsed and checked on the event loop (cheap); inference runs on the bounded pool's
threads, so a slow batch never stalls health checks, and overload is answered with 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from edgekit.artifact import is_bundle, read_summary
from edgekit.artifact.task_fields import DEFAULT_MAX_IMAGE_BYTES, image_input_shape
from edgekit.errors import InputError
from edgekit.runtime import EdgeModel, Prediction
from edgekit.serve.body import REFUSED_BEFORE_INFERENCE, read_capped_body, refusal
from edgekit.serve.connections import ConnectionGate
from edgekit.serve.dynamic_batching import DynamicBatcher, check_batching
from edgekit.serve.image_payload import parse_image_body
from edgekit.serve.inference import PooledInference, Runner
from edgekit.serve.inflight import InFlightLimit
from edgekit.serve.limits import ServeLimits
from edgekit.serve.metrics import ServeMetrics
from edgekit.serve.payload import parse_predict_body
from edgekit.serve.v2 import ROUTES as V2_ROUTES
from edgekit.serve.v2 import V2Model, add_v2_routes, model_name
from edgekit.serve.v2_codec import Kind

ROUTES = f"POST /v1/predict, GET /v1/health, GET /v1/model, GET /metrics, {V2_ROUTES}"


@dataclass(frozen=True)
class ModelInfo:
    """What was asked for and what was loaded, for ``/v1/model`` and the startup line."""

    artifact: Path  # the artifact folder loaded
    bundle: Path | None  # the multi-variant folder it came from, if one was given
    variant: str | None  # the bundle's recommended variant
    threads: int | None
    load_s: float | None = None  # how long EdgeModel.load took (for /metrics)

    @classmethod
    def describe(cls, requested: Path, model: EdgeModel, threads: int | None, load_s: float | None = None) -> ModelInfo:
        if is_bundle(requested):
            recommended = read_summary(requested)["recommended"]
            return cls(model.root.resolve(), requested.resolve(), recommended, threads, load_s)
        return cls(model.root.resolve(), None, None, threads, load_s)

    @property
    def name(self) -> str:
        """The model's name in ``/v2/models/{name}``."""
        return model_name(self.artifact, self.bundle)

    def summary(self, model: EdgeModel) -> str:
        what = f"variant {self.variant} of {self.bundle}" if self.bundle else str(self.artifact)
        manifest = model.manifest
        return f"{what} ({manifest.engine}, {manifest.precision}, {len(manifest.labels)} labels)"


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def model_max_length(model: EdgeModel) -> int:
    """Tokens per text the model reads (the manifest's truncation length)."""
    return int(model.manifest.tokenizer["max_length"])


Parser = Callable[[bytes, Request], Any]  # (body, request) -> PredictRequest | ImageRequest, or PayloadError


def request_parser(model: EdgeModel, limits: ServeLimits) -> tuple[ServeLimits, int, Parser]:
    """The limits resolved for this model, inputs per inference call, and the body parser of its task."""
    preprocessing = model.manifest.preprocessing
    if model.manifest.tokenizer is None and isinstance(preprocessing, dict) and preprocessing.get("type") == "image":
        limits = limits.for_images(int(preprocessing.get("max_image_bytes", DEFAULT_MAX_IMAGE_BYTES)))
        channels, height, width = image_input_shape(preprocessing)
        units = -(-channels * height * width // 1024)  # what max_batch_tokens counts for an image
        image_bytes = int(limits.max_image_bytes or DEFAULT_MAX_IMAGE_BYTES)

        def parse_images(body: bytes, request: Request) -> Any:
            return parse_image_body(body, request.headers.get("content-type", ""), limits, image_bytes)

        return limits, max(1, limits.max_batch_tokens // units), parse_images
    max_length = model_max_length(model)
    limits = limits.for_model(max_length)
    return limits, limits.rows_per_call(max_length), lambda body, request: parse_predict_body(body, limits)


def make_runner(model: EdgeModel, limits: ServeLimits, rows_per_call: int) -> Runner:
    """Each request alone on the bounded pool, or, with ``max_batch``, grouped by the dynamic batcher."""
    if limits.max_batch is None:
        return PooledInference(model, limits.workers, limits.queue_size, rows_per_call)
    check_batching(model, limits.max_batch)
    return DynamicBatcher(model, limits.workers, limits.queue_size, rows_per_call, limits.max_batch,
                          limits.max_delay_ms)  # fmt: skip


def v2_kind(model: EdgeModel, limits: ServeLimits) -> Kind:
    """What ``/v2`` infer takes: texts, or encoded images within the same bound as ``/v1``."""
    if model.manifest.tokenizer is None and limits.max_image_bytes is not None:
        return Kind("image", limits, int(limits.max_image_bytes))
    return Kind("text", limits)


def create_app(model: EdgeModel, limits: ServeLimits, info: ModelInfo, gate: ConnectionGate | None = None) -> FastAPI:
    limits, rows_per_call, parse_body = request_parser(model, limits)
    pool = make_runner(model, limits, rows_per_call)
    in_flight = InFlightLimit(limits.max_in_flight, gate)
    started = time.monotonic()
    labels = model.labels
    model_document = {
        "artifact": str(info.artifact), "bundle": info.bundle and str(info.bundle), "variant": info.variant,
        "engine": model.manifest.engine, "precision": model.manifest.precision, "labels": labels,
        "threads": info.threads, "limits": limits.to_dict(), "manifest": asdict(model.manifest),
    }  # fmt: skip

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()  # uvicorn gets here once in-flight requests are answered

    # No /docs, /redoc or /openapi.json: the pages load scripts from a CDN an edge box may not
    # reach, and docs/runtime.md describes the API.
    app = FastAPI(title="edgekit serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.pool = pool
    app.state.in_flight = in_flight
    app.state.limits = limits  # with max_text_chars resolved
    app.add_middleware(in_flight.wrapping)  # type: ignore[arg-type]  # any callable(app) -> ASGI app
    metrics = ServeMetrics(pool.stats, info.load_s, {"model": info.name, "engine": model.manifest.engine,
                                                     "precision": model.manifest.precision},
                           getattr(pool, "batches_run", None))  # fmt: skip
    app.add_middleware(metrics.middleware)  # type: ignore[arg-type]  # outermost: sees the 503s of --max-in-flight
    add_v2_routes(app, V2Model(info.name, v2_kind(model, limits), labels, model.manifest.engine, pool))

    @app.post("/v1/predict")
    async def predict(request: Request) -> JSONResponse:
        try:
            parsed = parse_body(await read_capped_body(request, limits.max_body_bytes), request)
            # From here, not before the body is read: a slow upload is the client's time, not queueing.
            future = pool.submit(parsed.inputs)
        except REFUSED_BEFORE_INFERENCE as exc:
            return refusal(exc, error_response)
        try:
            predictions, queue_s, inference_s = await asyncio.wrap_future(future)
        except InputError as exc:  # the payload checks should have caught it; still the client's input
            return error_response(422, str(exc))
        rows = [prediction_json(p, labels) for p in predictions]
        key, value = ("prediction", rows[0]) if parsed.single else ("predictions", rows)  # mirrors predict(_batch)
        timing = {"queue_ms": round(queue_s * 1e3, 3), "inference_ms": round(inference_s * 1e3, 3)}
        return JSONResponse({key: value, **timing})

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        stats = pool.stats()
        queue = {"running": stats.running, "waiting": stats.waiting, "depth": stats.running + stats.waiting,
                 "capacity": stats.capacity, "workers": limits.workers}  # fmt: skip
        return {"status": "ok", "model_loaded": True, "queue": queue, "in_flight": in_flight.in_flight,
                "completed": stats.completed, "rejected": stats.rejected + in_flight.refused,
                "connections": gate.open if gate else None,
                "uptime_s": round(time.monotonic() - started, 1)}  # fmt: skip

    @app.get("/v1/model")
    async def model_info() -> dict[str, Any]:
        return model_document

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        content, media_type = metrics.exposition()
        return Response(content, media_type=media_type)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # Routing errors (404, 405) in the same JSON shape as ours, saying what exists.
        if exc.status_code == 404:
            message = f"No such endpoint: {request.method} {request.url.path}. This server has {ROUTES}."
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"{request.url.path} does not take {request.method}; it takes {allowed}."
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, message, exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: Starlette re-raises after this answer, and uvicorn logs the traceback.
        return error_response(500, "Internal error while answering this request; the server log has the details.")

    return app


def prediction_json(prediction: Prediction, labels: Sequence[str]) -> dict[str, Any]:
    return {"label": prediction.label, "label_id": prediction.label_id, "confidence": prediction.confidence,
            "scores": dict(zip(labels, prediction.scores, strict=True))}  # fmt: skip
