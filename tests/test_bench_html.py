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


def _tied_emulated_document() -> dict:
    """The committed results with every accuracy tied and an emulated target whose memory cap
    is both in the emulation list and in the workers' mechanism line (it used to print twice)."""
    document = json.loads(RESULTS.read_text())
    for variant in document["variants"]:
        variant["accuracy"] = 0.9014
        variant["memory_cap"] = "memory capped at 4096 MB (cgroup v1 memory.limit_in_bytes)"
    document["target"].update(name="raspberry-pi-5", mode="emulated-on-host",
                              emulated=["4 threads", "memory capped at 4096 MB"], caveats=[])  # fmt: skip
    return document


def _svg_parts(page: str) -> dict[str, list[tuple[str, dict, str]]]:
    """Per svg id: (tag, attributes, text) of everything inside it."""

    class Parser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.current, self.found, self.open = None, {}, None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "svg":
                self.current = attrs["id"]
                self.found[self.current] = []
            elif self.current:
                self.open = [tag, attrs, ""]
                self.found[self.current].append(self.open)

        def handle_data(self, data):
            if self.open is not None:
                self.open[2] += data

        def handle_endtag(self, tag):
            if tag == "svg":
                self.current = None
            self.open = None

    parser = Parser()
    parser.feed(page)
    return {key: [tuple(item) for item in items] for key, items in parser.found.items()}


def test_tied_accuracies_get_ticks_a_zoomed_axis_and_labels_that_do_not_overlap():
    from edgekit.bench.svg import overlaps, text_box

    document = _tied_emulated_document()
    page = render_html(document)
    charts = _svg_parts(page)
    for chart, items in charts.items():  # every plot has tick labels and gridlines
        assert sum(attrs.get("class") == "tick-label" for _, attrs, _ in items) >= 2, chart
        assert any(attrs.get("class") == "grid" for _, attrs, _ in items), chart
    labels = [(text, attrs) for tag, attrs, text in charts["pareto"] if attrs.get("class") == "label"]
    assert len(labels) == len(document["variants"])
    boxes = [text_box(float(a["x"]), float(a["y"]), text, a["text-anchor"]) for text, a in labels]
    clashes = [
        (labels[i][0], labels[j][0]) for i in range(len(boxes)) for j in range(i) if overlaps(boxes[i], boxes[j])
    ]
    assert not clashes
    y_ticks = [float(text) for _, attrs, text in charts["pareto"] if attrs.get("class") == "tick-label"
               and attrs.get("text-anchor") == "end"]  # fmt: skip
    assert min(y_ticks) < 0.9014 < max(y_ticks) and min(y_ticks) > 0  # zoomed around the tie, not 0..1
    assert "accuracy axis zoomed: it starts at" in page
    assert page.count("memory capped at 4096 MB") == 1  # the caveat once
    from edgekit.bench.report import markdown

    assert markdown(document).lower().count("memory capped at 4096 mb") == 1  # in the Markdown report too
    assert page.count("<td>emulated on host</td>") == len(document["variants"])  # in the table itself


def test_tied_report_screenshot_in_headless_chromium(tmp_path):
    """A real browser renders the tied-accuracy report to a PNG that is not blank."""
    import shutil
    import subprocess

    import pytest
    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium) - the screenshot check is skipped")
    page, shot = tmp_path / "tied.html", tmp_path / "tied.png"
    page.write_text(render_html(_tied_emulated_document()))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,1600", f"--screenshot={shot}"]  # fmt: skip
    done = subprocess.run([browser, *flags, page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1100, 1600)
        grey = image.convert("L")
        colours = grey.getcolors(maxcolors=256) or []
        dark = sum(count for value, count in colours if value < 128)
    assert len(colours) > 8 and dark > 2000, "the screenshot is blank"
