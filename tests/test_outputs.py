"""Output folders (edgekit.outputs): never a user's folder, never an input, atomic, locked, no leaks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit.artifact import Manifest, TensorSpec, load_manifest
from edgekit.outputs import (
    MARKER_FORMAT,
    MARKER_NAME,
    OutputError,
    atomic_directory,
    check_destination,
    read_marker,
    seal,
    temp_folders,
)

REPO = Path(__file__).resolve().parents[1]


def _manifest() -> Manifest:
    return Manifest(
        task="text-classification",
        labels=["a", "b"],
        engine="onnxruntime",
        precision="fp32",
        model_file="model.onnx",
        inputs=[TensorSpec("input_ids", "int64", ["batch", "sequence"])],
        outputs=[TensorSpec("logits", "float32", ["batch", 2])],
        tokenizer={"file": "tokenizer.json", "max_length": 8, "pad_id": 0, "pad_token": "[PAD]"},
        source={"kind": "test"},
        recipe_hash="0" * 64,
        edgekit_version="test",
    )


def _artifact(folder: Path, payload: bytes = b"weights") -> Path:
    with atomic_directory(folder) as staging:
        (staging / "model.onnx").write_bytes(payload)
        (staging / "tokenizer.json").write_text("{}")
        seal(staging, _manifest())
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- item 1: replace only what edgekit provably wrote ------------------------------------------


def test_user_folder_with_a_summary_json_is_never_replaced(tmp_path):
    user = tmp_path / "notes"
    user.mkdir()
    (user / "summary.json").write_text('{"my": "summary"}')
    (user / "notes.txt").write_text("precious")
    with pytest.raises(OutputError, match="not written by edgekit"):
        _artifact(user)
    assert (user / "notes.txt").read_text() == "precious"


def test_web_app_folder_with_a_manifest_json_is_never_replaced(tmp_path):
    app = tmp_path / "webapp"
    app.mkdir()
    (app / "index.html").write_text("<html></html>")
    (app / "manifest.json").write_text('{"name": "My PWA", "start_url": "/"}')  # a web app manifest
    with pytest.raises(OutputError, match="Refusing to replace"):
        _artifact(app)
    assert (app / "index.html").is_file()


def test_own_output_gets_a_marker_and_is_replaced(tmp_path):
    out = _artifact(tmp_path / "art", b"v1")
    marker = read_marker(out)
    assert marker is not None and marker["format"] == MARKER_FORMAT and marker["kind"] == "artifact"
    assert set(marker["contents"]) == {"manifest.json", "model.onnx", "tokenizer.json"}
    _artifact(out, b"v2")
    assert (out / "model.onnx").read_bytes() == b"v2"
    load_manifest(out)  # the marker does not disturb verification
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"], "no lock or temporary folder left"


def test_own_output_holding_a_users_file_is_not_replaced(tmp_path):
    out = _artifact(tmp_path / "art")
    (out / "my-notes.md").write_text("added by hand")
    with pytest.raises(OutputError, match="my-notes.md"):
        _artifact(out)
    assert (out / "my-notes.md").is_file()


def test_a_forged_or_damaged_marker_does_not_make_a_folder_replaceable(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "data.txt").write_text("x")
    (folder / MARKER_NAME).write_text(json.dumps({"format": "something-else", "kind": "artifact", "contents": []}))
    with pytest.raises(OutputError):
        _artifact(folder)
    (folder / MARKER_NAME).write_text("{not json")
    with pytest.raises(OutputError):
        _artifact(folder)
    assert (folder / "data.txt").is_file()


def test_outputs_written_before_the_marker_are_still_replaced(tmp_path):
    legacy = _artifact(tmp_path / "art", b"old")
    (legacy / MARKER_NAME).unlink()  # as edgekit 0.2.0 wrote it
    _artifact(legacy, b"new")
    assert (legacy / "model.onnx").read_bytes() == b"new"

    (legacy / MARKER_NAME).unlink()
    (legacy / "extra.txt").write_text("not listed in the manifest")
    with pytest.raises(OutputError):
        _artifact(legacy)


def test_legacy_checkpoint_with_a_training_record_is_replaced_but_not_with_other_files(tmp_path):
    checkpoint = tmp_path / "teacher"
    checkpoint.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt"):
        (checkpoint / name).write_text("x")
    (checkpoint / "training.json").write_text(json.dumps({"cache_key": "k", "labels": ["a"]}))
    check_destination(checkpoint)
    (checkpoint / "thesis.tex").write_text("mine")
    with pytest.raises(OutputError):
        check_destination(checkpoint)


@pytest.mark.parametrize("where", ["same", "inside", "containing"])
def test_the_output_may_not_overlap_an_input(tmp_path, where):
    model = tmp_path / "models" / "bert"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"weights")
    out = {"same": model, "inside": model / "onnx", "containing": tmp_path / "models"}[where]
    with pytest.raises(OutputError, match="an input of this run"):
        check_destination(out, [model])
    assert (model / "model.safetensors").read_bytes() == b"weights"


def test_special_destinations_are_refused_with_one_clear_line(tmp_path):
    file = tmp_path / "file.txt"
    file.write_text("x")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    cases = {file: "is a file", tmp_path / "link": "symbolic link", Path("/"): "filesystem root",
             Path.home(): "home folder"}  # fmt: skip
    for path, message in cases.items():
        with pytest.raises(OutputError, match=message):
            check_destination(path)
    mount = next((p for p in (Path("/dev/shm"), Path("/proc"), Path("/sys")) if os.path.ismount(p)), None)
    if mount is not None:
        with pytest.raises(OutputError, match="mount point"):
            check_destination(mount)


def test_read_only_location_is_refused_before_any_work(tmp_path):
    read_only = _read_only_folder(tmp_path)
    with pytest.raises(OutputError, match="does not accept new folders"):
        check_destination(read_only / "out")


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder even root cannot write: a chmod 555 folder for other users, else /sys (read-only in containers)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() != 0:
        return folder
    try:
        Path("/sys/.edgekit-test-probe").mkdir()
    except OSError:
        return Path("/sys")
    Path("/sys/.edgekit-test-probe").rmdir()
    pytest.skip("running as root with a writable /sys: no read-only location to test against")


# --- convert, finetune and quickstart check before the long work ------------------------------


def test_convert_refuses_out_equal_to_the_model_before_loading_it(tmp_path, tiny_model_dir, monkeypatch):
    import edgekit.convert.pipeline as pipeline
    from edgekit.convert.recipe import build_recipe

    model = tmp_path / "teacher"
    shutil.copytree(tiny_model_dir, model)
    (model / "training.json").write_text(json.dumps({"cache_key": "k", "labels": ["a"]}))  # as the quickstart's
    before = _snapshot(model)
    monkeypatch.setattr("edgekit.convert.sources.load_text_classifier", _must_not_run)
    with pytest.raises(OutputError, match="an input of this run"):
        pipeline.convert(build_recipe({"model": str(model), "out": str(model)}))
    with pytest.raises(OutputError, match="an input of this run"):
        pipeline.convert(build_recipe({"model": str(model), "out": str(tmp_path)}))
    assert _snapshot(model) == before


def test_convert_refuses_a_user_folder_before_loading(tmp_path, tiny_model_dir, monkeypatch):
    import edgekit.convert.pipeline as pipeline
    from edgekit.convert.recipe import build_recipe

    user = tmp_path / "mine"
    user.mkdir()
    (user / "summary.json").write_text("{}")
    (user / "notes.txt").write_text("keep")
    monkeypatch.setattr("edgekit.convert.sources.load_text_classifier", _must_not_run)
    with pytest.raises(OutputError, match="Refusing to replace"):
        pipeline.convert(build_recipe({"model": str(tiny_model_dir), "out": str(user)}))
    assert (user / "notes.txt").read_text() == "keep"


def test_finetune_refuses_to_write_over_its_base_model(tmp_path, tiny_model_dir, tiny_data):
    from edgekit.data import read_text_dataset
    from edgekit.train.finetune import finetune_classifier

    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    before = _snapshot(base)
    with pytest.raises(OutputError, match="an input of this run"):
        finetune_classifier(base, read_text_dataset(tiny_data), base / "finetuned")
    assert _snapshot(base) == before


def _must_not_run(*args, **kwargs):
    raise AssertionError("the output folder must be checked before the model is loaded")


# --- item 2: one writer at a time, and no temporary folder left behind -------------------------

_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from edgekit.outputs import atomic_directory
    with atomic_directory(sys.argv[1], "results") as staging:
        (staging / "big.bin").write_bytes(b"x" * 1_000_000)
        print("writing", flush=True)
        time.sleep(float(sys.argv[2]))
    print("done", flush=True)
    """
)


def _start_writer(tmp_path: Path, out: Path, sleep: float) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, str(script), str(out), str(sleep)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert process.stdout is not None and process.stdout.readline().strip() == "writing", process.stderr.read()
    return process


def test_a_second_writer_to_the_same_output_fails_clearly(tmp_path):
    out = tmp_path / "out"
    first = _start_writer(tmp_path, out, sleep=2.0)
    try:
        with pytest.raises(OutputError, match=rf"Another edgekit run is writing out \(pid {first.pid}\)"):
            _artifact(out)
        with pytest.raises(OutputError, match="Another edgekit run"):
            check_destination(out)  # the early check sees it too
    finally:
        assert first.wait(timeout=30) == 0
    assert (out / "big.bin").is_file() and not temp_folders(out)
    _artifact(out)  # free again once the first one is done


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_run_leaves_the_previous_output_and_no_temp_folder_for_long(tmp_path, how):
    out = _artifact(tmp_path / "out", b"previous")
    before = _snapshot(out)
    writer = _start_writer(tmp_path, out, sleep=60)
    writer.send_signal(how)
    writer.wait(timeout=30)
    assert _snapshot(out) == before
    if how == signal.SIGTERM:
        assert writer.returncode == 128 + signal.SIGTERM
        assert not temp_folders(out), "SIGTERM runs the cleanup"
    else:
        assert temp_folders(out), "SIGKILL cannot be handled: the folder stays until the next run"
    _artifact(out, b"next")
    assert not temp_folders(out), "the next run removes what a killed run left"
    assert (out / "model.onnx").read_bytes() == b"next"


def test_sigterm_handler_is_restored(tmp_path):
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    _artifact(tmp_path / "art")
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


# --- item 5: never a half-written output (property) ---------------------------------------


class Crash(Exception):
    pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.integers(min_value=0, max_value=4),
    crash_after=st.integers(min_value=0, max_value=4),
    step=st.sampled_from(["block", "marker", "rename-old", "rename-new"]),
)
def test_a_failure_anywhere_leaves_the_previous_output_byte_identical(tmp_path_factory, files, crash_after, step):
    import edgekit.outputs.atomic as outputs

    root = tmp_path_factory.mktemp("prop")
    out = _artifact(root / "art", b"previous")
    before = _snapshot(out)
    original_rename = Path.rename
    calls = {"rename": 0}

    def rename(self, target):
        calls["rename"] += 1
        if (step == "rename-old" and calls["rename"] == 1) or (step == "rename-new" and calls["rename"] == 2):
            raise Crash(step)
        return original_rename(self, target)

    def marker(staging, kind):
        raise Crash("marker")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "rename", rename)
        if step == "marker":
            patch.setattr(outputs, "_write_marker", marker)
        with pytest.raises(Crash), atomic_directory(out) as staging:
            for index in range(files):
                if step == "block" and index == crash_after:
                    raise Crash("block")
                (staging / f"file{index}.bin").write_bytes(os.urandom(16))
            if step == "block":
                raise Crash("block")
    assert _snapshot(out) == before
    assert not temp_folders(out)
    shutil.rmtree(root)


def test_the_lock_is_released_after_a_failure(tmp_path):
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "out"):
        raise RuntimeError("boom")
    started = time.perf_counter()
    _artifact(tmp_path / "out")
    assert time.perf_counter() - started < 5


def test_legacy_bundle_is_replaced_only_when_it_holds_just_its_variants(tmp_path):
    bundle = tmp_path / "bundle"
    for location in ("onnx-fp32", "rejected/ort-int8-static"):
        _artifact(bundle / location)
        (bundle / location / MARKER_NAME).unlink()
    summary = {"recipe_hash": "0" * 64, "variants": [],
               "locations": {"onnx-fp32": "onnx-fp32", "ort-int8-static": "rejected/ort-int8-static"}}  # fmt: skip
    (bundle / "summary.json").write_text(json.dumps(summary))
    (bundle / "summary.md").write_text("# summary")
    check_destination(bundle)
    (bundle / "rejected" / "keep-me.txt").write_text("mine")
    with pytest.raises(OutputError):
        check_destination(bundle)


def test_quickstart_never_overwrites_a_report_it_did_not_write(tmp_path, tiny_model_dir):
    from edgekit.quickstart import REPORT_FIRST_LINE, REPORT_NAME, check_quickstart_outputs

    (tmp_path / REPORT_NAME).write_text("# my own notes\n")
    with pytest.raises(OutputError, match="not written by `edgekit quickstart`"):
        check_quickstart_outputs(tmp_path, tiny_model_dir)
    (tmp_path / REPORT_NAME).write_text(REPORT_FIRST_LINE + "\n# Variants of ...\n")
    check_quickstart_outputs(tmp_path, tiny_model_dir)  # its own report from an earlier run: fine


def test_distillation_never_clears_a_checkpoints_folder_it_did_not_write(tmp_path):
    from edgekit.train.distill.stage import _clear_checkpoints

    folder = tmp_path / "checkpoints"
    (folder / "checkpoint-10").mkdir(parents=True)
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputError, match="thesis.tex"):
        _clear_checkpoints(folder)
    assert (folder / "thesis.tex").is_file()
    (folder / "thesis.tex").unlink()
    _clear_checkpoints(folder)
    assert not folder.exists()
