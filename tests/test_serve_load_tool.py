"""`edgekit serve` under an existing load tool (wrk): every request answered, none refused or failed,
and the server's own /metrics count agrees with what the tool sent. Throughput figures live in
benchmarks/serve_batching.py, never in a test."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import httpx
import pytest
from serve_launch import launched

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")

# The /v1/predict requests the server counted as answered 200 (prometheus text format).
ANSWERED = re.compile(r'^edgekit_requests_total\{[^}]*route="/v1/predict"[^}]*status="200"[^}]*\} ([\d.e+]+)$', re.M)
BODIES = [{"texts": [text]} for text in ("a good film", "a dull, long film", "great acting", "not for me")]


def test_wrk_load_is_all_answered_and_counted(tiny_artifact, tmp_path):
    script = tmp_path / "post.lua"
    bodies = ",\n".join(f"[==[{json.dumps(b)}]==]" for b in BODIES)
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"local bodies = {{{bodies}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n"
    )
    command = [sys.executable, "-m", "edgekit", "serve", str(tiny_artifact), "--port", "0", "--threads", "1",
               "--workers", "2", "--queue-size", "16"]  # fmt: skip
    with launched(command, tmp_path / "server.log") as (_, match):
        url = match.group(1)
        run = subprocess.run(["wrk", "-t1", "-c4", "-d2s", "-s", str(script), f"{url}/v1/predict"],
                             capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        metrics = httpx.get(f"{url}/metrics").text
    sent = int(re.search(r"(\d+) requests in", run.stdout).group(1))
    assert sent > 0, run.stdout
    assert "Non-2xx" not in run.stdout and "Socket errors" not in run.stdout, run.stdout
    answered = sum(float(n) for n in ANSWERED.findall(metrics))
    assert answered >= sent, (sent, metrics)  # wrk counts completed requests only; the server may have more
