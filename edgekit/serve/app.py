"""The FastAPI app: ``POST /v1/predict``, ``GET /v1/health`` and ``GET /v1/model`` over one loaded model.

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
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from edgekit.artifact import is_bundle, read_summary
from edgekit.artifact.task_fields import DEFAULT_MAX_IMAGE_BYTES, image_input_shape
from edgekit.errors import InputError
from edgekit.runtime import EdgeModel, Prediction
from edgekit.serve.admission import BoundedPool, QueueFull
from edgekit.serve.connections import ConnectionGate
from edgekit.serve.image_payload import parse_image_body
from edgekit.serve.inflight import RETRY_AFTER_S, InFlightLimit
from edgekit.serve.limits import ServeLimits
from edgekit.serve.payload import PayloadError, parse_predict_body

BODY_TIMEOUT_S = 30.0  # a body still arriving after this gets 408: a stalled upload must not hold its place
ROUTES = "POST /v1/predict, GET /v1/health and GET /v1/model"


@dataclass(frozen=True)
class ModelInfo:
    """What was asked for and what was loaded, for ``/v1/model`` and the startup line."""

    artifact: Path  # the artifact folder loaded
    bundle: Path | None  # the multi-variant folder it came from, if one was given
    variant: str | None  # the bundle's recommended variant
    threads: int | None

    @classmethod
    def describe(cls, requested: Path, model: EdgeModel, threads: int | None) -> ModelInfo:
        if is_bundle(requested):
            return cls(model.root.resolve(), requested.resolve(), read_summary(requested)["recommended"], threads)
        return cls(model.root.resolve(), None, None, threads)

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


def create_app(model: EdgeModel, limits: ServeLimits, info: ModelInfo, gate: ConnectionGate | None = None) -> FastAPI:
    limits, rows_per_call, parse_body = request_parser(model, limits)
    pool = BoundedPool(limits.workers, limits.queue_size)
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

    @app.post("/v1/predict")
    async def predict(request: Request) -> JSONResponse:
        try:
            parsed = parse_body(await read_capped_body(request, limits.max_body_bytes), request)
            # From here, not before the body is read: a slow upload is the client's time, not queueing.
            future = pool.submit(_timed_predict, model, parsed.inputs, rows_per_call, time.perf_counter())
        except PayloadError as exc:
            return error_response(exc.status, exc.message)
        except QueueFull as exc:
            message = f"The server is busy: {exc} Retry after {RETRY_AFTER_S} s."
            return error_response(503, message, {"Retry-After": str(RETRY_AFTER_S)})
        except TimeoutError:
            return error_response(408, f"The request body did not arrive within {BODY_TIMEOUT_S:.0f} s; send it "
                                       "at once, or check the network.", {"Connection": "close"})  # fmt: skip
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


async def read_capped_body(request: Request, limit: int, timeout_s: float = BODY_TIMEOUT_S) -> bytes:
    """The body, refused as soon as it passes ``limit`` bytes; ``TimeoutError`` if it takes over ``timeout_s``.

    Content-Length is only a hint: a chunked upload has none, so the bytes are counted as they arrive.
    """
    too_large = PayloadError(413, f"The request body is over this server's limit of {limit:,} bytes "
                                  "(--max-body-bytes); send fewer or smaller inputs per request.")  # fmt: skip
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    deadline = time.monotonic() + timeout_s
    stream = request.stream().__aiter__()
    try:
        while True:
            try:  # wait_for, not asyncio.timeout: Python 3.10 is supported
                chunk = await asyncio.wait_for(stream.__anext__(), max(0.0, deadline - time.monotonic()))
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:  # an alias of TimeoutError from 3.11 only
                raise TimeoutError from None
            body += chunk
            if len(body) > limit:
                raise too_large
    except ClientDisconnect:  # gone mid-upload: nobody reads the answer, but no traceback in the log
        raise PayloadError(400, "The client closed the connection before the whole body arrived.") from None
    return bytes(body)


def prediction_json(prediction: Prediction, labels: Sequence[str]) -> dict[str, Any]:
    return {"label": prediction.label, "label_id": prediction.label_id, "confidence": prediction.confidence,
            "scores": dict(zip(labels, prediction.scores, strict=True))}  # fmt: skip


def _timed_predict(model: EdgeModel, texts: list[Any], rows_per_call: int,
                   submitted: float) -> tuple[list[Prediction], float, float]:  # fmt: skip
    """Runs on a pool thread: the predictions, the time from admission to a worker starting, and inference time.

    The texts go through the model ``rows_per_call`` at a time: one padded batch of 64 texts of 512
    tokens peaked at 2.3 GB (and kept it); calls of at most ``--max-batch-tokens`` padded tokens bound it.
    """
    start = time.perf_counter()
    predictions: list[Prediction] = []
    for first in range(0, len(texts), rows_per_call):
        predictions += model.predict_batch(texts[first : first + rows_per_call])
    return predictions, start - submitted, time.perf_counter() - start
