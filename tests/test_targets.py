from pathlib import Path

import pytest

from edgekit.errors import TargetError
from edgekit.targets.host import detect_host, parse_cpuinfo
from edgekit.targets.profiles import list_targets, load_target

REPO_TARGETS = Path(__file__).resolve().parents[1] / "targets"


def test_every_shipped_profile_is_valid():
    names = sorted(p.stem for p in REPO_TARGETS.glob("*.yaml"))
    assert {"host", "raspberry-pi-5", "x86-avx2-box"} <= set(names)
    assert set(names) <= set(list_targets())
    for name in names:
        profile = load_target(name)
        assert profile.name == name
        assert profile.threads <= profile.cores
        assert profile.is_host or profile.sources, f"{name} cites no sources"


def test_host_profile_describes_this_machine():
    host, info = load_target("host"), detect_host()
    assert host.cores == info.usable_cores
    assert host.arch == info.arch
    assert set(host.isa_features) <= set(info.isa_features)
    vnni = {"avx512_vnni", "avx_vnni", "amx_int8"} & set(info.isa_features)
    assert host.precision.quantization.reduce_range == (info.arch == "x86_64" and not vnni)


def _write_profile(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(body)
    return path


VALID = """
name: tiny-board
display_name: Tiny board
device_class: board
arch: aarch64
cpu: 4x Cortex-A53
cores: 4
isa_features: [neon]
ram_mb: 1024
engines: [{engine: onnxruntime}]
threads: 4
"""


def test_profile_by_path_and_by_env_dir(tmp_path, monkeypatch):
    path = _write_profile(tmp_path, "tiny-board", VALID)
    assert load_target(str(path)).cores == 4
    monkeypatch.setenv("EDGEKIT_TARGETS_DIR", str(tmp_path))
    assert "tiny-board" in list_targets()
    assert load_target("tiny-board").display_name == "Tiny board"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("threads: 4", "threads: 8"), "threads .8. cannot exceed cores"),
        (("isa_features: [neon]", "isa_features: [neon, warp-drive]"), "unknown names"),
        (("ram_mb: 1024", "ram_mb: lots"), "ram_mb"),
        (("engines: [{engine: onnxruntime}]", "engines: [{engine: tensorflow}]"), r"engines\.0\.engine"),
        (("cores: 4", "cores: 4\ncolour: red"), "colour"),
    ],
)
def test_broken_profile_names_the_field(tmp_path, change, message):
    path = _write_profile(tmp_path, "tiny-board", VALID.replace(*change))
    with pytest.raises(TargetError, match=message):
        load_target(str(path))


def test_name_must_match_file_and_unknown_target_lists_known(tmp_path):
    path = _write_profile(tmp_path, "other", VALID)
    with pytest.raises(TargetError, match="must match the file name"):
        load_target(str(path))
    with pytest.raises(TargetError, match="Known targets: .*raspberry-pi-5"):
        load_target("no-such-device")


def test_parse_cpuinfo_x86_and_arm():
    x86 = "model name\t: Some Xeon\nflags\t\t: fpu sse avx avx2 fma avx512f avx512_vnni amx_tile\n"
    model, features = parse_cpuinfo(x86)
    assert model == "Some Xeon"
    assert set(features) == {"avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx"}
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimddp i8mm\nCPU part\t: 0xd0b\n"
    assert set(parse_cpuinfo(arm)[1]) == {"neon", "dotprod", "i8mm"}


def test_every_package_is_listed_for_the_wheel():
    """setuptools takes an explicit package list: a new sub-package must be added to it."""
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads TOML from the standard library")
    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(root).parts) for p in (root / "edgekit").rglob("__init__.py")}
    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to [tool.setuptools] packages"
