"""Run the app under uvicorn: one startup line, graceful shutdown on SIGTERM/SIGINT, exit 0."""

from __future__ import annotations

import ipaddress
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from edgekit.runtime import EdgeModel
from edgekit.serve.admission import BoundedPool
from edgekit.serve.app import ModelInfo, create_app
from edgekit.serve.limits import ServeError, ServeLimits

log = logging.getLogger("edgekit.serve")
GRACEFUL_SHUTDOWN_S = 30  # after this, requests still running are cancelled so the process can exit
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this, freeing its place under --max-connections
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """uvicorn's server, reporting the address it really bound (``--port 0``) and when it stops."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[str], None], on_stopping: Callable[[], None]):
        super().__init__(config)
        self._on_started = on_started
        self._on_stopping = on_stopping

    async def startup(self, sockets: list | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            self._on_started(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")

    async def shutdown(self, sockets: list | None = None) -> None:
        self._on_stopping()
        await super().shutdown(sockets)


def run_server(artifact: Path, host: str, port: int, threads: int | None, limits: ServeLimits,
               access_log: bool) -> None:  # fmt: skip
    _configure_logging(access_log)
    model = EdgeModel.load(artifact, threads=threads)
    threads = model.settings.threads  # the caller's, else the artifact's target's (None: the engine's)
    info = ModelInfo.describe(artifact, model, threads)
    app = create_app(model, limits, info)
    pool: BoundedPool = app.state.pool

    def started(url: str) -> None:
        log.info(
            "edgekit serve listening on %s: %s; %d worker(s) x %s thread(s), queue %d; at most %d texts, "
            "%d chars per text, %d bytes per body, %d connections",
            url, info.summary(model), limits.workers, threads or "default", limits.queue_size, limits.max_texts,
            limits.max_text_chars, limits.max_body_bytes, limits.max_connections,
        )  # fmt: skip
        if not _is_loopback(host):
            log.warning("listening beyond this machine (%s): the API has no authentication; keep it behind a "
                        "firewall or a proxy that has.", host)  # fmt: skip

    def stopping() -> None:
        stats = pool.stats()
        depth = stats.running + stats.waiting
        log.info("stopping: no new connections; finishing %d admitted request(s) (at most %d s)", depth,
                 GRACEFUL_SHUTDOWN_S)  # fmt: skip

    # limit_concurrency bounds the memory of uploads: each open connection may be reading a body of up
    # to --max-body-bytes, admitted or not; a request arriving while that many connections are open (its
    # own included) gets uvicorn's plain-text 503. uvicorn has no timeout for reading a request's headers
    # or body (timeout_keep_alive applies only between requests), so a client that stalls mid-request
    # holds its connection until it goes away: this bound caps how many can, a proxy in front can time
    # them out.
    config = uvicorn.Config(app, host=host, port=port, lifespan="on", log_config=None, access_log=access_log,
                            server_header=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                            limit_concurrency=limits.max_connections, timeout_keep_alive=KEEP_ALIVE_S)  # fmt: skip
    server = _Server(config, started, stopping)
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown through the handlers in place
    # before it ran (SIGTERM's default kills the process with status 143, SIGINT's raises
    # KeyboardInterrupt). A graceful stop is a success, so those handlers are no-ops meanwhile.
    previous = {sig: signal.signal(sig, _stopped_gracefully) for sig in _STOP_SIGNALS}
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind; say it as a user error with the fix
        if server.started:
            raise
        raise ServeError(f"Could not listen on {host}:{port} (the line above says why); choose another --port "
                         "(0: any free one) or --host.") from None  # fmt: skip
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")


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
