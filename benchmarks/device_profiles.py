"""Device-profile benchmark: the quickstart artifacts and the SST-2 MiniLM artifacts on `host`
and on two emulated profiles, through `edgekit bench` exactly as a user runs it.

    python benchmarks/device_profiles.py [--rounds 3] [--runs 300]

Artifacts:
- quickstart: `edgekit quickstart --out ~/.cache/edgekit-benchmarks/quickstart` (built when
  missing, about 3 minutes): the intent teacher's passing variants and the 3-layer student's,
  timed on the demo's held-out split (131 utterances).
- SST-2: the MiniLM SST-2 teacher's variants (see quantization_sst2.py; converted once and
  cached), timed on all of SST-2 dev (872 sentences).

Profiles: `host` (measured-on-device), `x86-avx2-box` (emulated: 2 threads pinned, address
space capped, OpenVINO's oneDNN capped at AVX2) and `raspberry-pi-5` (emulated: another
architecture, so latency is shown but not judged). `host` runs twice, and the second run is
compared with the first by `edgekit bench compare`, to show the spread between repeated runs.

Writes every results JSON, Markdown and HTML report to ~/.cache/edgekit-benchmarks/device-profiles
and the committed summary to benchmarks/results/device-profiles.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from common import CACHE, REPO, SST2, SST2_TEACHER, require, sst2_bundle
from quantization_sst2 import EDGEKIT_VARIANTS

from edgekit.bench.results import read_results
from edgekit.quickstart import DEMO_TEST, demo_data_path

PROFILES = ["host", "x86-avx2-box", "raspberry-pi-5"]
WORK = CACHE / "device-profiles"
EDGEKIT = [sys.executable, "-m", "edgekit"]


def quickstart_bundles() -> list[Path]:
    out = CACHE / "quickstart"
    if not (out / "artifacts" / "summary.json").is_file():
        subprocess.run([*EDGEKIT, "quickstart", "--out", str(out), "--rounds", "1", "--runs", "50"], check=True)
    return [out / "artifacts", out / "student"]


def bench(name: str, artifacts: list[Path], data: Path, run: str, args: argparse.Namespace) -> Path:
    """One `edgekit bench` run (``run``: a profile, or ``host-repeat``); exit code 4 (a budget
    broken) is a finding, not a failure."""
    out = WORK / f"{name}-{run}.json"
    target = run.removesuffix("-repeat")
    command = [*EDGEKIT, "bench", *map(str, artifacts), "--data", str(data), "--target", target,
               "--rounds", str(args.rounds), "--runs", str(args.runs), "--warmup", "30", "--out", str(out),
               "--report", str(out.with_suffix(".md")), "--html", str(out.with_suffix(".html"))]  # fmt: skip
    print("+", " ".join(command), flush=True)
    proc = subprocess.run(command, stdout=subprocess.DEVNULL)
    if proc.returncode not in (0, 4):
        sys.exit(f"edgekit bench failed with exit code {proc.returncode}")
    return out


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def summary_table(path: Path) -> list[str]:
    document = read_results(path)
    target = document["target"]
    broken = {}
    for verdict in document["budgets"]:
        if not verdict["passed"]:
            broken.setdefault(verdict["variant"], []).append(verdict["budget"])
    label = target["mode"] + (f" ({', '.join(target['emulated'])})" if target.get("emulated") else "")
    lines = [f"### {path.stem}", "", f"Target `{target['name']}`: {label}.", ""]
    lines += [f"Caveat: {caveat}." for caveat in target.get("caveats", [])]
    header = ["variant", "accuracy", "p50 ms", "p95 ms", "p99 ms", "spread %", "16 / 64 / 128 tok p50 ms",
              "batch-8 texts/s", "cold start s", "peak RSS MB", "budgets broken"]  # fmt: skip
    lines += ["", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for v in document["variants"]:
        lat = v["latency_ms"]
        shapes = " / ".join(_fmt(s["latency_ms"]["median"], 1) for s in v.get("by_sequence_length", [])) or "—"
        batch8 = next((b for b in v.get("batches", []) if b["batch_size"] == 8), None)
        cells = [v["name"], _fmt(v["accuracy"], 4), _fmt(lat["median"]), _fmt(lat["p95"]), _fmt(lat["p99"]),
                 _fmt(v["round_spread_pct"], 0), shapes, _fmt(batch8 and batch8["throughput_per_s"], 0),
                 _fmt(v["cold_start"]["total_s"]), _fmt(v["peak_rss_mb"], 0),
                 ", ".join(broken.get(v["name"], [])) or "none"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def compare_lines(name: str, old: Path, new: Path) -> list[str]:
    proc = subprocess.run([*EDGEKIT, "bench", "compare", str(old), str(new)], capture_output=True, text=True)
    verdict = "no regression flagged" if proc.returncode == 0 else f"exit code {proc.returncode}"
    return [f"### {name}: the host run repeated (`edgekit bench compare {old.name} {new.name}`)", "",
            f"Verdict: {verdict}.", "", "```", proc.stdout.rstrip(), "```", ""]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "device-profiles.md")
    parser.add_argument("--render-only", action="store_true", help="rewrite the summary from the last run's JSON")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)

    names = ["quickstart", "sst2"]
    if not args.render_only:
        dev = require(SST2 / "dev.tsv", "SST-2 dev")
        sets = {
            "quickstart": (quickstart_bundles(), demo_data_path(DEMO_TEST)),
            "sst2": ([sst2_bundle(require(SST2_TEACHER, "SST-2 teacher"), dev, EDGEKIT_VARIANTS)], dev),
        }
        for target in [*PROFILES, "host-repeat"]:
            for name, (artifacts, data) in sets.items():
                bench(name, artifacts, data, target, args)
    sections: list[str] = []
    for target in PROFILES:
        sections += [line for name in names for line in summary_table(WORK / f"{name}-{target}.json")]
    for name in names:
        sections += compare_lines(name, WORK / f"{name}-host.json", WORK / f"{name}-host-repeat.json")

    host = read_results(WORK / "sst2-host.json")["environment"]["host"]
    intro = [
        "# Device profiles: quickstart and SST-2 artifacts on host and two emulated targets",
        "",
        f"`python benchmarks/device_profiles.py --rounds {args.rounds} --runs {args.runs}` on {host['cpu_model']}, "
        f"{host['usable_cores']} cores. Batch 1 on the data (tokenization included), each variant in its own "
        "process, alternating over rounds; shapes are synthetic texts of the profile's token lengths; batch 8 "
        "only where the profile lists it (host); cold start is a fresh process's interpreter start + imports + "
        "load + first inference (median over rounds); peak RSS is the worker's VmHWM. Spread = (max − min) / min "
        "of the per-round medians. Full reports (Markdown, HTML) are written next to the JSON in "
        "~/.cache/edgekit-benchmarks/device-profiles.",
        "",
    ]
    args.out.write_text("\n".join(intro + sections))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
