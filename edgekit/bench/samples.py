"""What a results file keeps beside the statistics: the raw latency samples (bounded), CPU use
and the throughput of the timed runs, pooled over rounds from the workers' raw figures."""

from __future__ import annotations

from typing import Any

# At most this many raw samples per variant in a results file (all rounds together). The default
# 200 runs x a few rounds stays far below; beyond it, each round keeps an evenly spaced subset
# (its order kept, so drift over time still shows), and the file says so (`samples_kept`).
MAX_RAW_SAMPLES = 20_000


def raw_samples(rounds: list[dict[str, Any]], limit: int = MAX_RAW_SAMPLES) -> dict[str, Any]:
    """``{"unit": "ms", "rounds": [[...], ...], "samples_total", "samples_kept"}``; rounded to 0.1 µs."""
    total = sum(len(r["latency_ms"]) for r in rounds)
    per_round = max(1, limit // max(1, len(rounds)))
    kept_rounds = []
    for r in rounds:
        values = r["latency_ms"]
        if len(values) > per_round:
            step = len(values) / per_round
            values = [values[int(i * step)] for i in range(per_round)]
        kept_rounds.append([round(v, 4) for v in values])
    return {"unit": "ms", "rounds": kept_rounds, "samples_total": total,
            "samples_kept": sum(len(r) for r in kept_rounds), "limit": limit}  # fmt: skip


def usage_summary(rounds: list[dict[str, Any]]) -> dict[str, Any] | None:
    """CPU use and throughput over all rounds' timed runs: sums of wall and CPU time, then ratios.

    ``cpu_utilisation`` is process CPU seconds per wall second (1.0 = one core busy throughout),
    ``cpu_utilisation_pct_of_threads`` the same against the threads the variant was given.
    """
    usages = [r["usage"] for r in rounds if r.get("usage")]
    if not usages:
        return None
    wall = sum(u["wall_s"] for u in usages)
    cpu = sum(u["cpu_s"] for u in usages)
    requests = sum(u["requests"] for u in usages)
    threads = rounds[0].get("threads") or 1
    utilisation = cpu / wall if wall > 0 else None
    return {
        "mode": usages[0]["mode"],
        "concurrency": usages[0]["concurrency"],
        "requests": requests,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_utilisation": utilisation,
        "cpu_utilisation_pct_of_threads": None if utilisation is None else 100.0 * utilisation / threads,
        "inferences_per_s": requests / wall if wall > 0 else None,
    }
