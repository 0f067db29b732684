"""Throughput of `edgekit serve` with and without dynamic batching, on the SST-2 teacher (MiniLM-L6).

    python benchmarks/serve_batching.py --build-only     # convert once (cached); time nothing
    python benchmarks/serve_batching.py [--concurrency 16] [--requests 2000] [--max-batch 16] [--max-delay-ms 5]

The build converts the teacher (common.SST2_TEACHER, with SST-2 dev for the gate) into onnx-fp32, ort-int8-static and
ort-int8-dynamic, cached under ~/.cache/edgekit-benchmarks/serve-batching/. The run serves each
variant with and without `--max-batch` and loads it with benchmarks/serve_load.py's client
(--concurrency keep-alive clients, one SST-2 dev sentence per request), then with `wrk` (an existing
load tool; a Lua script cycles the same bodies) when it is installed. Before each load, 64 dev
sentences are sent concurrently and their scores compared with the unbatched server's: dynamic batching
must not change an answer. ort-int8-dynamic is not batch-invariant, so the server must refuse
`--max-batch` for it; the refusal is recorded. Writes serve_load-batching.json and .md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
from common import CACHE, SST2, SST2_TEACHER, dump, require
from serve_load import WARMUP, Client, Server, build_payloads, run_load

from edgekit.data import read_text_dataset
from edgekit.targets.host import detect_host

REPO = Path(__file__).resolve().parents[1]
OUT = CACHE / "serve-batching" / "edgekit"
VARIANTS = ["onnx-fp32", "ort-int8-static", "ort-int8-dynamic"]
PROBES = 64


def build() -> Path:
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe
    from edgekit.progress import ConsoleReporter

    recipe = build_recipe({"model": str(require(SST2_TEACHER, "the SST-2 teacher")), "out": str(OUT),
                           "data": {"path": str(require(SST2 / "dev.tsv", "SST-2 dev"))}, "variants": VARIANTS,
                           "bench": {"enabled": False}})  # fmt: skip
    return convert(recipe, ConsoleReporter()).out


def variant_dir(name: str) -> Path:
    summary = json.loads((OUT / "summary.json").read_text())
    return OUT / summary["locations"][name]


def probe_scores(server: Server, texts: list[str]) -> list[list[float]]:
    """The texts sent at once from as many clients (so that a batching server groups them), in order."""
    scores: list[list[float]] = [[] for _ in texts]

    def one(i: int) -> None:
        status, body = Client(server.host, server.port).call("POST", "/v1/predict", {"text": texts[i]})
        assert status == 200, (status, body)
        scores[i] = list(json.loads(body)["prediction"]["scores"].values())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return scores


def engine_batches(server: Server) -> float | None:
    """The server's count of dynamic batches (``/metrics``), None without batching."""
    text = Client(server.host, server.port).call("GET", "/metrics")[1].decode()
    found = re.search(r"^edgekit_dynamic_batches ([\d.e+]+)$", text, re.M)
    return float(found.group(1)) if found else None


def wrk_run(server: Server, payloads: list[dict], seconds: int, connections: int) -> dict | None:
    if shutil.which("wrk") is None:
        return None
    bodies = ",\n".join(f"[==[{json.dumps(p)}]==]" for p in payloads[:500])
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"local bodies = {{{bodies}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n"
    )
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
               f"http://{server.host}:{server.port}/v1/predict"]  # fmt: skip
    print("+", " ".join(command), flush=True)
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    script.unlink()
    percent = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", text, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
            "p50": percent.get("50"), "p90": percent.get("90"), "p99": percent.get("99"),
            "non_2xx": int(errors.group(1)) if errors else 0, "connections": connections,
            "seconds": seconds}  # fmt: skip


def measure(name: str, batching: bool, args: argparse.Namespace, payloads: list[dict], probes: list[str],
            reference: dict[str, list]) -> dict:  # fmt: skip
    queue = max(2 * args.concurrency, PROBES)  # the probes arrive at once: none may be refused
    options = ["--threads", str(args.threads), "--workers", "1", "--queue-size", str(queue), "--max-in-flight",
               str(2 * queue)]  # fmt: skip
    if batching:
        options += ["--max-batch", str(args.max_batch), "--max-delay-ms", str(args.max_delay_ms)]
    server = Server(variant_dir(name), options)
    try:
        warm = Client(server.host, server.port)
        for payload in payloads[:WARMUP]:
            warm.call("POST", "/v1/predict", payload)
        scores = probe_scores(server, probes)
        reference.setdefault(name, scores)  # the unbatched run comes first
        diff = float(np.abs(np.array(scores) - np.array(reference[name])).max())
        batches_before = engine_batches(server)
        latencies, statuses, wall, _ = run_load(server, payloads, args.concurrency)
        batches = engine_batches(server)
        per_batch = statuses[200] / (batches - batches_before) if batches else None
        wrk = wrk_run(server, payloads, args.wrk_seconds, args.concurrency) if args.wrk_seconds else None
    finally:
        server.stop()
    ms = latencies[:, 0]
    return {"variant": name, "batching": batching, "throughput_rps": statuses[200] / wall, "ok": statuses[200],
            "errors": {str(k): v for k, v in statuses.items() if k != 200},
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "server_inference_p50_ms": float(np.median(latencies[:, 2])),
            "max_abs_score_diff_vs_unbatched": diff, "requests_per_engine_batch": per_batch, "wrk": wrk}  # fmt: skip


def refusal(name: str, args: argparse.Namespace) -> str:
    """The server's answer to --max-batch on an artifact that is not batch-invariant (it must not start)."""
    command = [sys.executable, "-m", "edgekit", "serve", str(variant_dir(name)), "--port", "0", "--max-batch",
               str(args.max_batch)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    if done.returncode == 0:
        raise SystemExit(f"edgekit serve accepted --max-batch for {name}, which is not batch-invariant")
    return " ".join((done.stdout + done.stderr).split())[-400:]


def markdown(document: dict) -> str:
    s = document["settings"]
    rows = []
    for r in document["runs"]:
        wrk = r["wrk"] or {}
        rows.append(f"| {r['variant']} | {'on' if r['batching'] else 'off'} | {r['throughput_rps']:.0f} | "
                    f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
                    f"{r['max_abs_score_diff_vs_unbatched']:.1e} | {r['requests_per_engine_batch'] or 1:.1f} | "
                    f"{wrk.get('requests_per_s', 'n/a')} | "
                    f"{wrk.get('p50', 'n/a')} / {wrk.get('p99', 'n/a')} | "
                    f"{sum(r['errors'].values())} |")  # fmt: skip
    gains = ", ".join(f"{k}: x{v:.2f}" for k, v in document["gain"].items())
    return "\n".join([
        f"# edgekit serve: dynamic batching ({document['date']})", "",
        f"SST-2 teacher (MiniLM-L6) artifacts; host {document['environment']['cpu_model']}, "
        f"{document['environment']['usable_cores']} cores shared by client and server.  ",
        f"{s['requests']} requests of one SST-2 dev sentence from {s['concurrency']} concurrent keep-alive clients; "
        f"server: 1 worker x {s['threads']} threads; batching: --max-batch {s['max_batch']} --max-delay-ms "
        f"{s['max_delay_ms']}; wrk: {s['wrk_seconds']} s, same connections and bodies.", "",
        "| variant | batching | req/s | p50 ms | p95 ms | p99 ms | max Δscore vs unbatched | requests per engine call "
        "| wrk req/s | wrk p50 / p99 | errors |", "|---|---|---|---|---|---|---|---|---|---|---|", *rows, "",
        f"Throughput gain of batching (our client): {gains}.", "",
        f"ort-int8-dynamic with --max-batch (not batch-invariant) is refused: `{document['refused']}`", "",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-delay-ms", type=float, default=5.0)
    parser.add_argument("--wrk-seconds", type=int, default=15, help="0: skip wrk")
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--out-name", default="serve_load-batching", help="results file name, without suffix")
    args = parser.parse_args()
    build()
    if args.build_only:
        return
    texts = read_text_dataset(SST2 / "dev.tsv", label_column=None).texts
    payloads = build_payloads(texts, args.requests, 1)
    reference: dict[str, list] = {}
    runs = [measure(name, batching, args, payloads, texts[:PROBES], reference)
            for name in ("onnx-fp32", "ort-int8-static") for batching in (False, True)]  # fmt: skip
    runs.append(measure("ort-int8-dynamic", False, args, payloads, texts[:PROBES], reference))
    by = {(r["variant"], r["batching"]): r["throughput_rps"] for r in runs}
    document = {
        "schema": "edgekit.serve-batching/1", "date": date.today().isoformat(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out_dir", "out_name", "build_only")},
        "environment": {k: v for k, v in detect_host().to_dict().items() if k != "isa_features"},
        "runs": runs, "refused": refusal("ort-int8-dynamic", args),
        "gain": {name: by[(name, True)] / by[(name, False)] for name in ("onnx-fp32", "ort-int8-static")},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip
    dump(document, args.out_dir / f"{args.out_name}.json")
    summary = markdown(document)
    (args.out_dir / f"{args.out_name}.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
