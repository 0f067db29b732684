"""`edgekit serve`: an artifact over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.common import user_errors
from edgekit.cli.knobs import ConfigOption, ProviderOption


@user_errors
def serve(
    artifact: Annotated[Path, typer.Argument(help="Artifact folder, or a multi-variant folder (its recommended one).")],
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one, logged at start).")] = 8000,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Threads per inference (default: the artifact's target's).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Inferences that run at once.")] = 1,
    queue_size: Annotated[int, typer.Option(min=0, help="Requests that may wait for a worker; beyond: 503.")] = 16,
    max_texts: Annotated[int, typer.Option(min=1, help="Texts per request.")] = 64,
    max_text_chars: Annotated[
        int | None, typer.Option(min=1, help="Characters per text (default: 8 x the model's max_length).")
    ] = None,
    max_request_chars: Annotated[int, typer.Option(min=1, help="Characters of all texts in one request.")] = 32_768,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Request body size.")] = 1_048_576,
    max_in_flight: Annotated[
        int,
        typer.Option(
            min=1, help="Requests with a body being read or answered; beyond: 503. At least workers + queue-size."
        ),  # fmt: skip
    ] = 64,
    max_connections: Annotated[
        int, typer.Option(min=1, help="Open connections; beyond, new clients wait in the listen backlog.")
    ] = 512,
    max_batch_tokens: Annotated[
        int, typer.Option(min=1, help="Rows x padded tokens per inference call (bounds one request's memory).")
    ] = 2048,
    max_images: Annotated[int, typer.Option(min=1, help="Images per request (image models).")] = 16,
    max_image_bytes: Annotated[
        int | None,
        typer.Option(min=1, help="Encoded bytes per image (image models; default and ceiling: the manifest's)."),
    ] = None,
    max_batch: Annotated[
        int | None,
        typer.Option(min=1, help="Dynamic batching: inputs per engine call (default: off; batch-invariant only)."),
    ] = None,
    max_delay_ms: Annotated[
        float, typer.Option(min=0, max=1000, help="Dynamic batching: longest wait for batch-mates, in ms.")
    ] = 5.0,
    access_log: Annotated[bool, typer.Option(help="Log one line per request.")] = False,
    provider: ProviderOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve an artifact over HTTP: `POST /v1/predict`, `GET /v1/health`, `GET /v1/model` (JSON).

    Inference runs on `--workers` threads; when they are busy and `--queue-size` requests already
    wait, the next one gets a JSON 503 with Retry-After, and so does any upload beyond `--max-in-flight`;
    beyond `--max-connections`, new clients wait in the listen backlog instead of being refused. Oversized or
    malformed requests get a JSON 4xx with a message. SIGTERM or Ctrl+C finishes the requests in flight and
    exits 0. Also serves the Open Inference Protocol (KServe v2: `/v2/models/NAME/infer`, NAME the folder's
    name; Triton's client works) and Prometheus metrics (`GET /metrics`). Needs the `serve` extra:
    `pip install 'edgekit[serve]'`. API: docs/runtime.md.

    **Examples:**

    `edgekit serve artifacts/my-bert`

    `edgekit serve artifacts/my-bert --host 0.0.0.0 --port 8080 --threads 2 --workers 2 --queue-size 32`

    `curl -s localhost:8000/v1/predict -d '{"texts": ["turn off the lights", "play some jazz"]}'`

    `curl -s localhost:8000/v1/predict -F image=@cat.jpg -F image=@dog.png` (an image model)

    `EDGEKIT_SERVE_WORKERS=2 edgekit serve artifacts/ov-int8 --config serve.yaml --provider openvino:GPU`
    """
    from edgekit.bench.providers import parse_providers
    from edgekit.serve import ServeLimits, serve_artifact

    limits = ServeLimits(
        workers=workers, queue_size=queue_size, max_texts=max_texts, max_text_chars=max_text_chars,
        max_body_bytes=max_body_bytes, max_connections=max_connections, max_in_flight=max_in_flight,
        max_request_chars=max_request_chars, max_batch_tokens=max_batch_tokens, max_images=max_images,
        max_image_bytes=max_image_bytes, max_batch=max_batch, max_delay_ms=max_delay_ms,
    )  # fmt: skip
    serve_artifact(artifact, host, port, threads, limits, access_log, parse_providers(provider) or None)
