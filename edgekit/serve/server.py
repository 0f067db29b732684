"""Run the app under uvicorn: one startup line, graceful shutdown on SIGTERM/SIGINT, exit 0."""

from __future__ import annotations

import functools
import ipaddress
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from edgekit.artifact import load_artifact
from edgekit.runtime import EdgeModel
from edgekit.runtime.settings import with_providers
from edgekit.serve.app import ModelInfo, create_app
from edgekit.serve.connections import ConnectionGate
from edgekit.serve.inference import Runner
from edgekit.serve.limits import ServeError, ServeLimits
from edgekit.serve.protocol import EdgeH11Protocol

log = logging.getLogger("edgekit.serve")
GRACEFUL_SHUTDOWN_S = 30  # after this, requests still running are cancelled so the process can exit
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this, freeing its place under --max-connections
BACKLOG = 2048  # clients beyond --max-connections wait here, in the kernel (capped by net.core.somaxconn)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """uvicorn's server, accepting through ``gate``, reporting the address it bound (``--port 0``) and its stop."""

    def __init__(self, config: uvicorn.Config, gate: ConnectionGate, on_started: Callable[[str], None],
                 on_stopping: Callable[[], None]):  # fmt: skip
        super().__init__(config)
        self._gate = gate
        self._on_started = on_started
        self._on_stopping = on_stopping

    async def startup(self, sockets: list | None = None) -> None:
        await super().startup(sockets)
        if self.started and sockets:
            make = functools.partial(self.config.http_protocol_class, config=self.config,
                                     server_state=self.server_state, app_state=self.lifespan.state)  # fmt: skip
            self._gate.install(sockets, make)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            self._on_started(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")

    async def shutdown(self, sockets: list | None = None) -> None:
        self._on_stopping()
        await super().shutdown(sockets)


def run_server(artifact: Path, host: str, port: int, threads: int | None, limits: ServeLimits,
               access_log: bool, engine_options: dict | None = None) -> None:  # fmt: skip
    _configure_logging(access_log)
    loading = time.perf_counter()
    target = None
    if engine_options:  # --provider: the chosen providers/devices over the artifact's own runtime defaults
        _, manifest = load_artifact(artifact, verify=False)  # EdgeModel.load verifies every file just below
        target = with_providers(manifest.runtime or {}, engine_options)
    model = EdgeModel.load(artifact, target=target, threads=threads, max_batch_tokens=limits.max_batch_tokens)
    load_s = time.perf_counter() - loading
    threads = model.settings.threads  # the caller's, else the artifact's target's (None: the engine's)
    info = ModelInfo.describe(artifact, model, threads, load_s)
    gate = ConnectionGate(limits.max_connections)
    app = create_app(model, limits, info, gate)
    pool: Runner = app.state.pool
    limits = app.state.limits  # max_text_chars resolved from the model's max_length

    def started(url: str) -> None:
        if model.manifest.preprocessing is not None:  # an image model: its own per-request bounds
            per_request = f"at most {limits.max_images} images of {limits.max_image_bytes} bytes each"
        else:
            per_request = (f"at most {limits.max_texts} texts, {limits.max_text_chars} chars per text, "
                           f"{limits.max_request_chars} chars per request")  # fmt: skip
        log.info(
            "edgekit serve listening on %s: %s; %d worker(s) x %s thread(s), queue %d; %s, %d bytes per body, "
            "%d requests in flight, %d connections",
            url, info.summary(model), limits.workers, threads or "default", limits.queue_size, per_request,
            limits.max_body_bytes, limits.max_in_flight, limits.max_connections,
        )  # fmt: skip
        if limits.max_batch is not None:
            log.info("dynamic batching: up to %d inputs per engine call, waiting at most %g ms for batch-mates",
                     limits.max_batch, limits.max_delay_ms)  # fmt: skip
        log.info("also serving the Open Inference Protocol (KServe v2) as model %r, and Prometheus metrics at "
                 "/metrics", info.name)  # fmt: skip
        if not _is_loopback(host):
            log.warning("listening beyond this machine (%s): the API has no authentication; keep it behind a "
                        "firewall or a proxy that has.", host)  # fmt: skip

    def stopping() -> None:
        stats = pool.stats()
        depth = stats.running + stats.waiting
        log.info("stopping: no new connections; finishing %d admitted request(s) (at most %d s)", depth,
                 GRACEFUL_SHUTDOWN_S)  # fmt: skip

    # No limit_concurrency: uvicorn's counts open connections and answers every request beyond it with a
    # plain-text 503, so more clients than the limit were all refused. Connections are bounded by the gate
    # (beyond, clients wait in the listen backlog), bodies by --max-in-flight x --max-body-bytes, a request's
    # headers by h11 (16 KiB) and a header timeout, and uvicorn buffers at most 64 KiB of a body no one reads.
    # Our h11 protocol and the asyncio loop are chosen, not "auto": httptools or uvloop, if installed,
    # would bypass the JSON protocol errors and the gate. No WebSockets: the API has none.
    config = uvicorn.Config(app, host=host, port=port, lifespan="on", log_config=None, access_log=access_log,
                            server_header=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                            timeout_keep_alive=KEEP_ALIVE_S, http=EdgeH11Protocol, loop="asyncio", ws="none",
                            backlog=BACKLOG)  # fmt: skip
    server = _Server(config, gate, started, stopping)
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown through the handlers in place
    # before it ran (SIGTERM's default kills the process with status 143, SIGINT's raises
    # KeyboardInterrupt). A graceful stop is a success, so those handlers are no-ops meanwhile.
    previous = {sig: signal.signal(sig, _stopped_gracefully) for sig in _STOP_SIGNALS}
    listening = _bind(host, port)  # ours, so that the gate can accept on it
    try:
        server.run(sockets=[listening])
    except SystemExit:  # uvicorn exits when it cannot bind; say it as a user error with the fix
        if server.started:
            raise
        raise ServeError(f"Could not listen on {host}:{port} (the line above says why); choose another --port "
                         "(0: any free one) or --host.") from None  # fmt: skip
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket for ``host:port``, or the reason in one line."""
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(address[0], socket.SOCK_STREAM)
    except OSError as exc:
        raise ServeError(f"Could not listen on {host}:{port}: {exc}; pass an address of this machine.") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
        sock.bind(address[4])
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise ServeError(f"Could not listen on {host}:{port}: {reason}; choose another --port (0: any free one) "
                         "or --host.") from None  # fmt: skip
    return sock


def _stopped_gracefully(sig: int, frame: FrameType | None) -> None:
    pass


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _configure_logging(access_log: bool) -> None:
    """Our lines and uvicorn's warnings on stderr; uvicorn's chatty start/stop lines are ours instead."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    levels = {"edgekit.serve": logging.INFO, "uvicorn.error": logging.WARNING,
              "uvicorn.access": logging.INFO if access_log else logging.WARNING}  # fmt: skip
    for name, level in levels.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
