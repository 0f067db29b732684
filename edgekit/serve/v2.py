"""Open Inference Protocol (KServe v2 REST) beside ``/v1``: what Triton and KServe clients and gateways call.

``GET /v2`` (server metadata), ``/v2/health/live``, ``/v2/health/ready``, ``GET /v2/models/{name}``
(model metadata), ``/v2/models/{name}/ready`` and ``POST /v2/models/{name}/infer`` (also under
``/versions/1``). The same runner, limits and overload answers as ``/v1/predict``: a full queue is
a 503 with Retry-After, and errors are ``{"error": "..."}`` with 400 (bad request), 404 (no such
model) or 503. Bodies are in ``v2_codec``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from edgekit import __version__
from edgekit.errors import InputError
from edgekit.serve.body import REFUSED_BEFORE_INFERENCE, read_capped_body, refusal
from edgekit.serve.inference import Runner
from edgekit.serve.v2_codec import HEADER_LENGTH, OUTPUTS, Kind, encode_response, parse_infer

VERSION = "1"  # one model, one version: the artifact loaded
ROUTES = ("GET /v2, GET /v2/health/live, GET /v2/health/ready, GET /v2/models/{name}, "
          "GET /v2/models/{name}/ready and POST /v2/models/{name}/infer")  # fmt: skip


def model_name(artifact: Path, bundle: Path | None) -> str:
    """The name clients use in ``/v2/models/{name}``: the folder served (a bundle's own name), URL-safe."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", (bundle or artifact).name).strip("-.")
    return name or "model"


@dataclass(frozen=True)
class V2Model:
    name: str
    kind: Kind
    labels: Sequence[str]
    engine: str
    runner: Runner


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def add_v2_routes(app: FastAPI, served: V2Model) -> None:
    metadata = _model_metadata(served)

    def unknown(name: str, version: str | None) -> JSONResponse | None:
        if name != served.name:
            return error(404, f"No model named {name!r}; this server serves {served.name!r} "
                              f"(GET /v2/models/{served.name}).")  # fmt: skip
        if version is not None and version != VERSION:
            return error(404, f"Model {name!r} has no version {version!r}; its only version is {VERSION!r}.")
        return None

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "edgekit", "version": __version__, "extensions": ["binary_tensor_data"]}

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}  # the model is loaded before the server listens

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def model_metadata(name: str, version: str | None = None) -> Any:
        return unknown(name, version) or metadata

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_ready(name: str, version: str | None = None) -> Any:
        return unknown(name, version) or {"name": served.name, "ready": True}

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(request: Request, name: str, version: str | None = None) -> Response:
        refused = unknown(name, version)
        if refused is not None:
            return refused
        return await _infer(request, served)


async def _infer(request: Request, served: V2Model) -> Response:
    limits = served.kind.limits
    try:
        body = await read_capped_body(request, limits.max_body_bytes)
        parsed = parse_infer(body, request.headers.get(HEADER_LENGTH), served.kind)
        future = served.runner.submit(parsed.inputs)
    except REFUSED_BEFORE_INFERENCE as exc:
        return refusal(exc, error)
    try:
        predictions, _, _ = await asyncio.wrap_future(future)
    except InputError as exc:  # the codec's checks should have caught it; still the client's input
        return error(400, str(exc))
    content, headers = encode_response(served.name, parsed, predictions, served.labels)
    return Response(content, headers=headers)


def _model_metadata(served: V2Model) -> dict[str, Any]:
    shapes = {"label": [-1], "label_id": [-1], "probabilities": [-1, len(served.labels)]}
    datatypes = {"label": "BYTES", "label_id": "INT64", "probabilities": "FP32"}
    return {
        "name": served.name, "versions": [VERSION], "platform": f"edgekit_{served.engine}",
        "inputs": [{"name": served.kind.input_name, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": n, "datatype": datatypes[n], "shape": shapes[n]} for n in OUTPUTS],
    }  # fmt: skip
