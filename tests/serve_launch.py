"""Start `edgekit serve` in a child process for a test and stop it afterwards (shared by the serve tests)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The startup line names the bound address: with --port 0 it is the only way to learn the port.
LISTENING = re.compile(r"listening on (http://([\d.]+):(\d+)):")
# serve_artifact, not the CLI: for tests whose limits are ServeLimits' own (whatever the CLI passes).
LAUNCH = (
    "import json, sys; from edgekit.serve import ServeLimits, serve_artifact; "
    "serve_artifact(sys.argv[1], port=0, threads=1, limits=ServeLimits(**json.loads(sys.argv[2])))"
)


def limits_command(artifact: Path, limits: dict) -> list[str]:
    return [sys.executable, "-c", LAUNCH, str(artifact), json.dumps(limits)]


@contextmanager
def launched(command: list[str], log: Path, stop_timeout: float = 15) -> Iterator[tuple[subprocess.Popen, re.Match]]:
    """Run ``command``, wait (60 s at most) for its startup line, yield (process, its match); SIGTERM at exit."""
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not (match := LISTENING.search(log.read_text())):
            assert process.poll() is None, f"the server exited with {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no startup line after 60 s:\n{log.read_text()}"
            time.sleep(0.05)
        yield process, match
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
