"""The repository stands on its own: nothing a user reads points at files only the build machine has.

Device facts live in docs/devices.md and measured stack findings in docs/stack-findings.md; the
code, docs and target profiles cite those, never the notes they were compiled from
(STACK-NOTES.md, DEVICES.md, DESIGN.md in a sibling `shared` folder) nor an absolute path on
a build machine. Real test data and models may still live beside the repository: the README
and the example recipe may name `../shared/data` and `../shared/models`, and nothing else there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ["edgekit", "docs", "targets", "examples", "README.md"]
SKIPPED_DIRS = {"__pycache__", "node_modules", ".pytest_cache", ".ruff_cache"}
FORBIDDEN = ["STACK-NOTES", "DEVICES.md", "DESIGN.md", "/work/", "/root/", "../shared/"]
# Where the data and models of the integration tests live, as a path: allowed only in these files.
DATA_PATHS = re.compile(r"\.\./shared/(?:data|models)\b")
MAY_NAME_DATA = {"README.md", "examples/sst2-minilm.yaml"}

DEVICES_DOC = ROOT / "docs" / "devices.md"
# "docs/devices.md §2.2, §3 and §5" -> the run of section numbers after one mention.
CITATION = re.compile(r"docs/devices\.md((?:[\s,;/&]*(?:and\s+)?§\d+(?:\.\d+)*)+)")
SECTION = re.compile(r"§(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{1,6}\s+§?(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)


def _scanned_files() -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            files.append(path)
            continue
        for file in sorted(path.rglob("*")):
            relative = file.relative_to(ROOT)
            if file.is_file() and not SKIPPED_DIRS.intersection(relative.parts):
                files.append(file)
    return files


def _text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def test_scanned_set_is_not_empty():
    relative = {f.relative_to(ROOT).as_posix() for f in _scanned_files()}
    assert "README.md" in relative and "docs/devices.md" in relative
    assert any(p.startswith("targets/") for p in relative) and any(p.startswith("edgekit/") for p in relative)


@pytest.mark.parametrize("path", _scanned_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_reference_outside_the_repository(path: Path):
    relative = path.relative_to(ROOT).as_posix()
    text = _text(path)
    if relative in MAY_NAME_DATA:
        text = DATA_PATHS.sub("<data>", text)
    found = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for needle in FORBIDDEN:
            if needle in line:
                found.append(f"{relative}:{lineno}: {needle!r} in {line.strip()[:120]!r}")
    assert not found, (
        "cite docs/devices.md or docs/stack-findings.md instead of files users do not have:\n" + "\n".join(found)
    )


def _devices_sections() -> set[str]:
    return set(HEADING.findall(_text(DEVICES_DOC)))


def test_devices_doc_has_numbered_sections():
    sections = _devices_sections()
    assert {"1", "1.1", "2", "3"} <= sections, sorted(sections)


def _citations() -> list[tuple[str, int, str]]:
    """(file, line, section) for each docs/devices.md section cited.

    Target profiles cite no other document by section, so there every "§N" counts; elsewhere
    only the sections right after a "docs/devices.md" mention do.
    """
    cited = []
    for path in _scanned_files():
        if path == DEVICES_DOC:
            continue
        relative = path.relative_to(ROOT).as_posix()
        in_targets = relative.startswith("targets/")
        for lineno, line in enumerate(_text(path).splitlines(), 1):
            runs = [line] if in_targets else [m.group(1) for m in CITATION.finditer(line)]
            for run in runs:
                cited.extend((relative, lineno, section) for section in SECTION.findall(run))
    return cited


def test_every_target_cites_devices_doc_sections():
    targets_cited = {path for path, _, _ in _citations() if path.startswith("targets/")}
    profiles = {p.relative_to(ROOT).as_posix() for p in (ROOT / "targets").glob("*.yaml")}
    assert targets_cited, "no target profile cites a docs/devices.md section"
    # host.yaml takes its facts from the machine; every other profile cites its sources.
    assert profiles - targets_cited <= {"targets/host.yaml"}, sorted(profiles - targets_cited)


def test_devices_doc_citations_name_existing_sections():
    sections = _devices_sections()
    missing = [f"{path}:{lineno}: §{section}" for path, lineno, section in _citations() if section not in sections]
    assert not missing, "docs/devices.md has no such section heading:\n" + "\n".join(missing)
