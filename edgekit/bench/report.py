"""Render benchmark results (the JSON document only) as a terminal table or Markdown."""

from __future__ import annotations

from typing import Any

COLUMNS = [
    "variant", "engine", "precision", "size MB", "accuracy", "agreement",
    "p50 ms", "p90 ms", "p99 ms", "tokenize p50 ms", "speed-up", "peak RSS MB", "load s",
]  # fmt: skip


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def rows(document: dict[str, Any]) -> list[list[str]]:
    variants = document["variants"]
    baseline = variants[0]["latency_ms"]["median"]
    table = []
    for v in variants:
        lat = v["latency_ms"]
        table.append(
            [
                v["name"],
                v["engine"],
                v["precision"],
                _fmt(v["model_size_mb"], 1),
                _fmt(v["accuracy"], 4),
                _fmt(v["agreement_with_reference"], 4),
                _fmt(lat["median"]),
                _fmt(lat["p90"]),
                _fmt(lat["p99"]),
                _fmt(v["tokenize_ms"]["median"], 3),
                f"{baseline / lat['median']:.2f}x",
                _fmt(v["peak_rss_mb"], 0),
                _fmt(v["cold_start"]["load_s"]),
            ]
        )
    return table


def caption(document: dict[str, Any]) -> str:
    s, env, target = document["settings"], document["environment"], document["target"]
    host = env["host"]
    return (
        f"batch 1, {s['threads']} threads, {s['runs']} timed runs x {s['rounds']} round(s) per variant "
        f"after {s['warmup']} warm-up, tokenization included; data: {s['data']}; "
        f"target {target['name']} ({target['mode']}); {host['cpu_model']}, {host['usable_cores']} cores. "
        f"Speed-up is relative to the first row; agreement is with {document['variants'][0]['name']}."
    )


# The terminal table leaves out what the Markdown report and the JSON still carry.
TERMINAL_COLUMNS = ["variant", "engine", "precision", "size MB", "accuracy", "p50 ms", "p90 ms", "p99 ms",
                    "speed-up", "peak RSS MB"]  # fmt: skip


def rich_table(document: dict[str, Any]):
    from rich.table import Table

    table = Table(title="edgekit bench", caption=caption(document), caption_justify="left")
    keep = [COLUMNS.index(name) for name in TERMINAL_COLUMNS]
    for name in TERMINAL_COLUMNS:
        table.add_column(
            name, justify="left" if name in {"variant", "engine", "precision"} else "right", no_wrap=name == "variant"
        )
    for row in rows(document):
        table.add_row(*(row[i] for i in keep))
    return table


def markdown(document: dict[str, Any], title: str = "Benchmark results") -> str:
    lines = [f"# {title}", "", caption(document), ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join("---" for _ in COLUMNS) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows(document)]
    lines += ["", "Spread between rounds (max/min of per-round medians):", ""]
    for v in document["variants"]:
        medians = ", ".join(f"{m:.2f}" for m in v["round_medians_ms"])
        lines.append(f"- {v['name']}: {v['round_spread_pct']:.1f}% (round medians {medians} ms)")
    floor = document["variants"][0].get("bare_interpreter_rss_mb")
    if floor:
        lines += [
            "",
            f"Peak RSS is the kernel's VmHWM of each worker process; a bare interpreter peaks at {floor:.0f} MB.",
        ]
    libs = ", ".join(f"{k} {v}" for k, v in document["environment"]["libraries"].items())
    lines += ["", f"Libraries: {libs}. Created {document['created_at']}.", ""]
    return "\n".join(lines)
