"""Load test of `edgekit serve`: throughput, latency percentiles, errors by status, server memory.

    python benchmarks/serve_load.py ARTIFACT [--data dev.tsv] [--requests 3000] [--concurrency 16]
        [--texts-per-request 1] [--threads 1] [--workers 1] [--queue-size 16] [--out-dir benchmarks/results]
        [--max-batch N --max-delay-ms D]

--max-batch turns on the server's dynamic batching (batch-invariant artifacts only);
benchmarks/serve_batching.py compares throughput with and without it.

ARTIFACT is an artifact folder or a multi-variant folder (from `edgekit convert` or `edgekit quickstart`).
The script starts `python -m edgekit serve ARTIFACT --port 0` on loopback (the startup line names the
port), sends 50 warm-up requests, then --requests `POST /v1/predict` requests from --concurrency client
threads, each on its own keep-alive connection (`http.client`: no client library to install, and little
client CPU). Texts cycle through the TSV/CSV/JSONL given by --data (its `text` column), else through
`edgekit.data.PROBE_TEXTS`. Latency is measured by the client, from sending a request to having read the
whole response; the server's own queue and inference times (in each answer) say how much of it was
waiting for a worker. The server's resident memory (VmRSS in /proc/PID/status) is read after the warm-up,
every 50 ms during the load (peak) and 1 s after it; growth of more than 10% and 8 MiB is flagged.
The server is then stopped with SIGTERM and its exit status recorded.

Writes serve_load.json and serve_load.md to --out-dir. Client and server share the machine's cores,
so on a small box the client's own CPU use lowers the throughput measured.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date
from importlib.metadata import version
from pathlib import Path

import numpy as np

from edgekit.data import PROBE_TEXTS, read_text_dataset
from edgekit.targets.host import detect_host

REPO = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"listening on http://([\d.]+):(\d+)")
GROWTH_FLAG = (0.10, 8.0)  # relative and MiB: both must be exceeded to flag the RSS growth
WARMUP = 50


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Server:
    """`edgekit serve` in a child process, with its log in a temporary file."""

    def __init__(self, artifact: Path, options: list[str]):
        self.log = Path(tempfile.mkstemp(prefix="serve-load-", suffix=".log")[1])
        command = [sys.executable, "-m", "edgekit", "serve", str(artifact), "--port", "0", *options]
        print("+", " ".join(command), flush=True)
        with self.log.open("w") as sink:
            self.process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 120
        while not (match := LISTENING.search(self.log.read_text())):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                sys.exit(f"edgekit serve did not start:\n{self.log.read_text()}")
            time.sleep(0.1)
        self.host, self.port = match.group(1), int(match.group(2))
        self.startup_line = next(line for line in self.log.read_text().splitlines() if "listening on" in line)

    def stop(self) -> tuple[int, float]:
        """SIGTERM; the exit status and the seconds it took to exit."""
        start = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=60)
        return status, time.perf_counter() - start


class Client:
    """One keep-alive connection; reconnects after a transport error."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.connection = http.client.HTTPConnection(host, port, timeout=60)

    def call(self, method: str, path: str, payload: object | None = None) -> tuple[int | str, bytes]:
        body = None if payload is None else json.dumps(payload).encode()
        try:
            self.connection.request(method, path, body, {"Content-Type": "application/json"})
            response = self.connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.connection.close()
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            return type(exc).__name__, b""


def run_load(server: Server, payloads: list[dict], concurrency: int) -> tuple[np.ndarray, Counter, float, float]:
    """Send every payload once from ``concurrency`` threads.

    Returns one row per 200 answer (client latency, the server's queue and inference ms), the count
    of each status, the wall time in s and the server's peak RSS in MiB.
    """
    next_index = itertools.count()  # next() on a count is atomic under the GIL: no lock needed
    latencies: list[tuple[float, float, float]] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    peak = [rss_mib(server.process.pid)]
    done = threading.Event()

    def sample_memory() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], rss_mib(server.process.pid))

    def worker() -> None:
        client = Client(server.host, server.port)
        mine: list[tuple[int | str, float, bytes]] = []
        while (index := next(next_index)) < len(payloads):
            start = time.perf_counter()
            status, body = client.call("POST", "/v1/predict", payloads[index])
            mine.append((status, (time.perf_counter() - start) * 1e3, body))
        answered = [(ms, json.loads(body)) for status, ms, body in mine if status == 200]  # parsed after timing
        with lock:
            statuses.update(status for status, _, _ in mine)
            latencies.extend((ms, answer["queue_ms"], answer["inference_ms"]) for ms, answer in answered)

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    return np.array(latencies).reshape(-1, 3), statuses, wall, peak[0]


def build_payloads(texts: list[str], requests: int, per_request: int) -> list[dict]:
    cycle = itertools.cycle(texts)
    if per_request == 1:
        return [{"text": next(cycle)} for _ in range(requests)]
    return [{"texts": [next(cycle) for _ in range(per_request)]} for _ in range(requests)]


def markdown(document: dict) -> str:
    s, r, m = document["settings"], document["results"], document["rss_mib"]
    errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "none"
    flag = " **(grew: check for a leak)**" if m["flagged"] else ""
    return "\n".join([
        f"# edgekit serve under load ({document['date']})", "",
        f"Artifact: `{document['artifact']}`  ",
        f"Server: `{document['startup_line']}`  ",
        f"Host: {document['environment']['cpu_model']}, {document['environment']['usable_cores']} usable cores "
        "(client and server share them)", "",
        f"{s['requests']} requests ({s['texts_per_request']} text(s) each) from {s['concurrency']} concurrent "
        f"keep-alive clients; texts from {s['texts_from']}.", "",
        "| throughput | p50 ms | p95 ms | p99 ms | max ms | 200 | errors | RSS before | RSS peak | RSS after |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {r['throughput_rps']:.0f} req/s | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f} | "
        f"{r['max_ms']:.2f} | {r['ok']} | {errors} | {m['before']:.0f} MiB | {m['peak']:.0f} MiB | "
        f"{m['after']:.0f} MiB{flag} |", "",
        f"Client latency includes the wait for a worker: medians of the server's own figures are "
        f"{r['server_queue_p50_ms']:.2f} ms waiting and {r['server_inference_p50_ms']:.2f} ms inference.", "",
        f"Server stopped by SIGTERM in {document['shutdown']['seconds']:.2f} s with exit status "
        f"{document['shutdown']['exit_status']}.", "",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--data", type=Path, help="TSV/CSV/JSONL with a text column (default: built-in probes)")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="engine threads per inference")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--queue-size", type=int, default=16)
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--max-batch", type=int, help="dynamic batching: inputs per engine call (default: off)")
    parser.add_argument("--max-delay-ms", type=float, default=5.0, help="dynamic batching: longest wait")
    args = parser.parse_args()
    if not args.artifact.exists():
        sys.exit(f"{args.artifact} does not exist: pass an artifact folder (edgekit convert / edgekit quickstart).")
    texts = read_text_dataset(args.data, label_column=None).texts if args.data else list(PROBE_TEXTS)
    payloads = build_payloads(texts, args.requests, args.texts_per_request)
    options = ["--threads", str(args.threads), "--workers", str(args.workers), "--queue-size", str(args.queue_size),
               "--max-texts", str(max(64, args.texts_per_request))]  # fmt: skip
    if args.max_batch:
        options += ["--max-batch", str(args.max_batch), "--max-delay-ms", str(args.max_delay_ms)]
    server = Server(args.artifact, options)
    try:
        warm = Client(server.host, server.port)
        for payload in payloads[:WARMUP]:
            warm.call("POST", "/v1/predict", payload)
        before = rss_mib(server.process.pid)
        latencies, statuses, wall, peak = run_load(server, payloads, args.concurrency)
        time.sleep(1.0)
        after = rss_mib(server.process.pid)
        health = json.loads(Client(server.host, server.port).call("GET", "/v1/health")[1])  # warm one timed out
    finally:
        exit_status, stop_seconds = server.stop()
    ok, queue_ms, inference_ms = latencies.T if len(latencies) else np.full((3, 1), np.nan)
    growth = after - before
    document = {
        "schema": "edgekit.serve-load/1",
        "date": date.today().isoformat(),
        "artifact": str(args.artifact),
        "startup_line": server.startup_line.split(" INFO ", 1)[-1],
        "settings": {"requests": args.requests, "concurrency": args.concurrency,
                     "texts_per_request": args.texts_per_request, "threads": args.threads, "workers": args.workers,
                     "queue_size": args.queue_size, "warmup": WARMUP, "max_batch": args.max_batch,
                     "max_delay_ms": args.max_delay_ms if args.max_batch else None,
                     "texts_from": str(args.data) if args.data else "edgekit.data.PROBE_TEXTS"},
        "environment": {**{k: v for k, v in detect_host().to_dict().items() if k != "isa_features"},
                        **{name: version(name) for name in ("fastapi", "uvicorn", "onnxruntime")}},
        "results": {"wall_s": round(wall, 3), "ok": statuses[200], "throughput_rps": statuses[200] / wall,
                    "p50_ms": float(np.percentile(ok, 50)), "p95_ms": float(np.percentile(ok, 95)),
                    "p99_ms": float(np.percentile(ok, 99)), "max_ms": float(ok.max()), "mean_ms": float(ok.mean()),
                    "server_queue_p50_ms": float(np.median(queue_ms)),
                    "server_inference_p50_ms": float(np.median(inference_ms)),
                    "statuses": {str(k): v for k, v in statuses.items()},
                    "errors": {str(k): v for k, v in statuses.items() if k != 200}, "server_health": health},
        "rss_mib": {"before": round(before, 1), "peak": round(peak, 1), "after": round(after, 1),
                    "growth": round(growth, 1),
                    "flagged": growth > GROWTH_FLAG[0] * before and growth > GROWTH_FLAG[1]},
        "shutdown": {"exit_status": exit_status, "seconds": round(stop_seconds, 3)},
    }  # fmt: skip
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "serve_load.json").write_text(json.dumps(document, indent=2) + "\n")
    summary = markdown(document)
    (args.out_dir / "serve_load.md").write_text(summary)
    print(summary)
    server.log.unlink()


if __name__ == "__main__":
    main()
