"""The HTML report: self-contained, rendered from a results document only, with its plots."""

import json
from html.parser import HTMLParser
from pathlib import Path

from edgekit.bench.html import pareto_front, render_html

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "quantization-sst2.json"


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_pareto_front():
    points = [("slow-accurate", 3.0, 0.90), ("fast-ok", 1.0, 0.88), ("dominated", 2.0, 0.87), ("fastest", 0.5, 0.80)]
    assert set(pareto_front(points)) == {"slow-accurate", "fast-ok", "fastest"}


def test_report_from_a_committed_results_file():
    document = json.loads(RESULTS.read_text())
    page = render_html(document, "Quantization on SST-2")
    parser = _Collector()
    parser.feed(page)
    svgs = {attrs.get("id") for tag, attrs in parser.tags if tag == "svg"}
    assert svgs == {"latency", "pareto", "memory", "size"}
    tables = 2  # the results and the cold start; this older file has no shape figures, so no shape table
    assert sum(tag == "tr" for tag, _ in parser.tags) == tables * (len(document["variants"]) + 1)
    points = [attrs for tag, attrs in parser.tags if tag == "circle"]
    assert len(points) == len(document["variants"]), "one point per variant with an accuracy"
    on_front = {name for name in pareto_front([(v["name"], v["latency_ms"]["median"], v["accuracy"])
                                                for v in document["variants"]])}  # fmt: skip
    assert sum(p["fill"] == "#31a354" for p in points) == len(on_front)
    assert not any(k in ("src", "href") for _, attrs in parser.tags for k in attrs), "no external resources"
    assert "<script" not in page


def test_report_loads_in_headless_chromium(tmp_path):
    """The page loads in a real browser with no console errors and its plots in the DOM."""
    import shutil
    import subprocess

    import pytest

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium) - the browser check is skipped")
    page = tmp_path / "report.html"
    page.write_text(render_html(json.loads(RESULTS.read_text())))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]  # fmt: skip
    done = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for chart in ("latency", "pareto", "memory", "size"):
        assert f'id="{chart}"' in done.stdout
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
