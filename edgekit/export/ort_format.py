"""ONNX → ORT format (ONNX Runtime Mobile) with the required-operators config for a reduced build.

Uses ONNX Runtime's own converter (``onnxruntime.tools.convert_onnx_models_to_ort``, the module
behind ``python -m onnxruntime.tools.convert_onnx_models_to_ort``) in a scratch folder, and keeps
only the ``.ort`` graph and its ``.config``: no ``.onnx`` intermediate reaches the artifact.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from edgekit.errors import ExportError

OptimizationStyle = Literal["fixed", "runtime"]
ORT_MODEL = "model.ort"
OPERATORS_CONFIG = "required_operators.config"


def onnx_to_ort(
    source: Path, folder: Path, style: OptimizationStyle, target_platform: Literal["arm", "amd64"]
) -> dict[str, str]:
    """Write ``folder/model.ort`` and ``folder/required_operators.config`` from ``source``.

    ``fixed`` bakes every optimisation (level "all") into the graph, so what is gated here is
    what a phone's CPU EP runs; ``runtime`` keeps basic optimisations and saves the rest to be
    replayed on the device only for nodes a compiling EP (NNAPI, Core ML) did not take.
    ``target_platform`` "arm" allows int8 QDQ kernels and leaves out x86-only layouts (NCHWc).
    Returns the files written: {"model": ..., "config": ...}.
    """
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle as OrtStyle
    from onnxruntime.tools.convert_onnx_models_to_ort import convert_onnx_models_to_ort

    chosen = OrtStyle.Runtime if style == "runtime" else OrtStyle.Fixed
    suffix = ".with_runtime_opt" if style == "runtime" else ""
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".ort-convert-") as scratch:
        work = Path(scratch)
        shutil.copy2(source, work / "model.onnx")  # the converter writes beside its input
        log = io.StringIO()
        # It also logs "Created config in <scratch path>" at INFO: a build-machine path, and noise.
        logging.getLogger("ort_format_model.utils").setLevel(logging.WARNING)
        try:
            with contextlib.redirect_stdout(log):  # it prints progress; keep the CLI output ours
                convert_onnx_models_to_ort(work / "model.onnx", output_dir=work / "out", optimization_styles=[chosen],
                                           target_platform=target_platform)  # fmt: skip
        except Exception as exc:  # the converter raises whatever ONNX Runtime raised
            tail = log.getvalue().strip().splitlines()[-3:]
            raise ExportError(f"ORT format conversion failed: {exc} ({' | '.join(tail)})") from exc
        model = work / "out" / f"model{suffix}.ort"
        config = work / "out" / f"model.required_operators{suffix}.config"  # named after a single input file
        if not model.is_file() or not config.is_file():
            found = sorted(p.name for p in (work / "out").glob("*"))
            raise ExportError(f"The ORT converter wrote {found}, not {model.name} and {config.name}; "
                              "check the onnxruntime version (edgekit expects 1.20 or later).")  # fmt: skip
        shutil.move(str(model), folder / ORT_MODEL)
        _write_config(config, folder / OPERATORS_CONFIG, style)
    return {"model": ORT_MODEL, "config": OPERATORS_CONFIG}


def _write_config(generated: Path, target: Path, style: OptimizationStyle) -> None:
    """The operator lines only: the converter's header comments name its scratch paths (build-machine
    paths have no place in an artifact); build.sh ignores '#' lines, so a neutral header replaces them."""
    import onnxruntime

    lines = [line for line in generated.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    header = (f"# Operators used by {ORT_MODEL} (ONNX Runtime {onnxruntime.__version__} "
              f"convert_onnx_models_to_ort, {style} optimization style), for --include_ops_by_config")  # fmt: skip
    target.write_text("\n".join([header, *(line for line in lines if line.strip())]) + "\n", encoding="utf-8")


def reduced_build_command(platform: Literal["android", "ios"]) -> str:
    """ONNX Runtime's documented build.sh line for a minimal build with only these operators."""
    # "extended" minimal build: ORT format only, with compiling EPs and saved runtime optimisations.
    # Not run by edgekit's tests (it needs an ONNX Runtime checkout and the SDKs): docs/mobile.md.
    common = (
        "./build.sh --config MinSizeRel --build_shared_lib --minimal_build extended --disable_ml_ops "
        "--skip_tests --include_ops_by_config <artifact>/required_operators.config"
    )
    if platform == "ios":
        return (common + " --ios --use_xcode --apple_sysroot iphoneos --osx_arch arm64 "
                "--apple_deploy_target 16.0 --use_coreml --use_xnnpack --build_apple_framework")  # fmt: skip
    return (common + " --android --android_sdk_path $ANDROID_HOME --android_ndk_path $ANDROID_NDK_HOME "
            "--android_abi arm64-v8a --android_api 29 --use_nnapi --use_xnnpack --build_java")  # fmt: skip
