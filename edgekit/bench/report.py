"""Render benchmark results (the JSON document only) as a terminal table or Markdown."""

from __future__ import annotations

from typing import Any

COLUMNS = [
    "variant", "engine", "precision", "size MB", "accuracy", "agreement",
    "p50 ms", "p90 ms", "p99 ms", "tokenize p50 ms", "speed-up", "CPU util", "peak RSS MB", "load s",
]  # fmt: skip


_TIMED = {"p50 ms", "p90 ms", "p99 ms", "tokenize p50 ms", "speed-up", "CPU util", "load s"}


def header(document: dict[str, Any], names: list[str]) -> list[str]:
    """Column names; with estimates, every timed column says it is this host's, not the device's."""
    if "estimated" not in document:
        return names
    return [f"this host {name}" if name in _TIMED else name for name in names]


def headline(document: dict[str, Any]) -> str:
    """The title: with estimates it says the timings are this host's and names the device they are not."""
    target = document["target"]
    if "estimated" not in document:
        return "edgekit bench"
    return f"edgekit bench: measured on {target['host_label']}; {target['name']} figures are estimated"


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
                _cpu(v),
                _fmt(v["peak_rss_mb"], 0),
                _fmt(v["cold_start"]["load_s"]),
            ]
        )
    return table


def _cpu(variant: dict[str, Any]) -> str:
    """Busy cores during the timed runs (process CPU s / wall s); results files before it: —."""
    usage = variant.get("usage") or {}
    return "—" if usage.get("cpu_utilisation") is None else f"{usage['cpu_utilisation']:.2f}"


def caption(document: dict[str, Any]) -> str:
    s, env, target = document["settings"], document["environment"], document["target"]
    host = env["host"]
    where = f"Timings measured on {target['host_label']}: " if "estimated" in document else ""
    return where + (
        f"batch 1, {s['threads']} threads, {s['runs']} timed runs x {s['rounds']} round(s) per variant "
        f"after {s['warmup']} warm-up, tokenization included; data: {s['data']}; "
        f"target {target['name']} ({target['mode']}); {host['cpu_model']}, {host['usable_cores']} cores. "
        f"Speed-up is relative to the first row; agreement is with {document['variants'][0]['name']}. "
        "CPU util: cores kept busy during the timed runs (process CPU time / wall time)."
        + (f" Throughput mode: {s['concurrency']} requests at once." if s.get("mode") == "throughput" else "")
    )


# The terminal table leaves out what the Markdown report and the JSON still carry.
TERMINAL_COLUMNS = ["variant", "engine", "precision", "size MB", "accuracy", "p50 ms", "p90 ms", "p99 ms",
                    "speed-up", "CPU util", "peak RSS MB"]  # fmt: skip


def rich_table(document: dict[str, Any]):
    from rich.table import Table

    table = Table(title=headline(document), caption=caption(document), caption_justify="left")
    keep = [COLUMNS.index(name) for name in TERMINAL_COLUMNS]
    for name, shown in zip(TERMINAL_COLUMNS, header(document, TERMINAL_COLUMNS), strict=True):
        table.add_column(
            shown, justify="left" if name in {"variant", "engine", "precision"} else "right", no_wrap=name == "variant"
        )
    for row in rows(document):
        table.add_row(*(row[i] for i in keep))
    return table


def markdown(document: dict[str, Any], title: str = "Benchmark results") -> str:
    if "estimated" in document:
        title = f"{title}: measured on {document['target']['host_label']}"
    lines = [f"# {title}", "", caption(document), ""]
    lines.append("| " + " | ".join(header(document, COLUMNS)) + " |")
    lines.append("|" + "|".join("---" for _ in COLUMNS) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows(document)]
    lines += ["", "Spread between rounds (max/min of per-round medians):", ""]
    for v in document["variants"]:
        medians = ", ".join(f"{m:.2f}" for m in v["round_medians_ms"])
        lines.append(f"- {v['name']}: {v['round_spread_pct']:.1f}% (round medians {medians} ms)")
    lines += _shape_lines(document["variants"]) + _cold_start_lines(document["variants"])
    lines += estimate_lines(document)
    lines += [f"Not run here: {s['name']}: {s['reason']}" for s in document.get("skipped", [])]
    target = document["target"]
    if emulated := emulated_items(document):
        lines += ["", f"Emulated: {', '.join(emulated)}."]
    lines += [f"Did not fit the emulated memory: {m['name']}: {m['reason']}" for m in document.get("did_not_fit", [])]
    for mechanism in memory_caps(document["variants"]):  # e.g. "Memory capped at 4096 MB (cgroup v1 …)."
        lines.append(f"{mechanism[0].upper()}{mechanism[1:]}.")
    lines += [f"Caveat: {caveat}." for caveat in target.get("caveats", [])]
    floor = document["variants"][0].get("bare_interpreter_rss_mb")
    if floor:
        lines += [
            "",
            f"Peak RSS is the kernel's VmHWM of each worker process; a bare interpreter peaks at {floor:.0f} MB.",
        ]
    libs = ", ".join(f"{k} {v}" for k, v in document["environment"]["libraries"].items())
    lines += ["", f"Libraries: {libs}. Created {document['created_at']}.", ""]
    return "\n".join(lines)


Table = tuple[list[str], list[list[str]]]  # header, rows


def memory_caps(variants: list[dict[str, Any]]) -> list[str]:
    """How memory was capped, once per distinct mechanism (a cgroup could fail for one worker)."""
    return sorted({v["memory_cap"] for v in variants if v.get("memory_cap")})


def shape_table(variants: list[dict[str, Any]]) -> Table | None:
    """Batch-1 latency at the profile's sequence lengths, and whole-batch latency above batch 1."""
    if not any(v.get("by_sequence_length") or v.get("batches") for v in variants):
        return None
    lengths = [s["tokens"] for s in variants[0].get("by_sequence_length", [])]
    sizes = [b["batch_size"] for b in variants[0].get("batches", [])]
    header = ["variant"] + [f"{n} tokens p50 ms" for n in lengths]
    header += [f"batch {n} p50 ms" for n in sizes] + [f"batch {n} texts/s" for n in sizes]
    table = []
    for v in variants:
        cells = [v["name"]] + [_fmt(s["latency_ms"]["median"]) for s in v.get("by_sequence_length", [])]
        cells += [_fmt(b["latency_ms"]["median"]) for b in v.get("batches", [])]
        cells += [_fmt(b["throughput_per_s"], 0) for b in v.get("batches", [])]
        table.append(cells)
    return header, table


def cold_start_table(variants: list[dict[str, Any]]) -> Table:
    header = ["variant", "interpreter s", "import s", "load s", "first inference ms", "total s",
              "peak RSS MB", "over bare MB"]  # fmt: skip
    table = []
    for v in variants:
        cold = v["cold_start"]
        table.append([v["name"], _fmt(cold.get("startup_s"), 3), _fmt(cold["import_s"], 3), _fmt(cold["load_s"], 3),
                      _fmt(cold["first_inference_ms"], 1), _fmt(cold.get("total_s"), 3), _fmt(v["peak_rss_mb"], 0),
                      _fmt(v.get("peak_rss_increment_mb"), 0)])  # fmt: skip
    return header, table


SHAPES_TITLE = "Latency by shape (synthetic texts of the profile's token lengths; batches of real texts)"
COLD_START_TITLE = "Cold start in a fresh process (median over rounds) and peak memory"


def _markdown_table(title: str, table: Table | None) -> list[str]:
    if table is None:
        return []
    header, body = table
    lines = ["", f"{title}:", "", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in body]


def _shape_lines(variants: list[dict[str, Any]]) -> list[str]:
    return _markdown_table(SHAPES_TITLE, shape_table(variants))


def _cold_start_lines(variants: list[dict[str, Any]]) -> list[str]:
    return _markdown_table(COLD_START_TITLE, cold_start_table(variants))


def estimate_table(document: dict[str, Any]) -> Table | None:
    """The device's estimated batch-1 latency per variant and length, with its band and basis."""
    section = document.get("estimated")
    if not section:
        return None
    target = section["target"]
    head = ["variant", "tokens", f"{target} estimated ms", "band ms (low-high)", "basis"]
    body = []
    for entry in section["variants"]:
        if "error" in entry:
            body.append([entry["name"], "—", "not estimated", "—", entry["error"]])
        for e in entry.get("estimates", []):
            body.append([entry["name"], str(e["tokens"]), _fmt(e["value_ms"]),
                         f"{_fmt(e['low_ms'])}-{_fmt(e['high_ms'])}", e["basis"]])  # fmt: skip
    return head, body


def estimate_title(document: dict[str, Any]) -> str:
    return f"Estimated on {document['estimated']['target']} (not measured; an estimate with its error band)"


def estimate_lines(document: dict[str, Any]) -> list[str]:
    table = estimate_table(document)
    if table is None:
        return []
    lines = _markdown_table(estimate_title(document), table)
    if note := document["estimated"].get("note"):
        lines.append(f"Note: {note}.")
    for entry in document["estimated"]["variants"]:
        if entry.get("estimates"):
            assumptions = entry["estimates"][0]["assumptions"]
            lines += ["", f"Assumptions for {entry['name']}:"] + [f"- {a}" for a in assumptions]
    return lines


def rich_estimates(document: dict[str, Any]):
    """The terminal table of the device's estimates, or None when the run has none."""
    from rich.table import Table

    table = estimate_table(document)
    if table is None:
        return None
    head, body = table
    rich = Table(*head[:4], title=estimate_title(document), caption=body[0][4] if body else None)
    for row in body:
        rich.add_row(*row[:4])
    return rich


def emulated_items(document: dict[str, Any]) -> list[str]:
    """What the emulation applied, less its plain "memory capped at N MB" when a line from the
    workers says how memory was capped (the same fact: printing both read as a duplicate)."""
    applied = document["target"].get("emulated", [])
    if not memory_caps(document["variants"]):
        return list(applied)
    return [item for item in applied if not item.startswith("memory capped")]
