"""The artifact directory: model file(s), tokenizer files and ``manifest.json``.

This module is shared by the conversion pipeline (which writes artifacts) and the slim
runtime (which loads them), so it must stay torch-free: standard library only.

Writing (atomic, locked output folders and ``seal``) lives in ``edgekit.outputs``.
"""

from edgekit.artifact.bundles import (
    MANIFEST_DIGESTS,
    bundle_variant_dir,
    expand_bundle,
    is_bundle,
    load_artifact,
    manifest_digests,
    read_summary,
    resolve_artifact_dir,
)
from edgekit.artifact.integrity import (
    hash_directory,
    load_manifest,
    model_size_mb,
    read_manifest,
    sha256_file,
    verify_files,
)
from edgekit.artifact.manifest import (
    FORMAT_VERSION,
    INPUT_NAMES,
    MANIFEST_NAME,
    SUMMARY_NAME,
    Manifest,
    TensorSpec,
    required_files,
    validate_manifest,
)
from edgekit.artifact.onnx_scan import onnx_external_data
from edgekit.artifact.paths import artifact_file, check_relative_path, confined_path, model_file_path

__all__ = [
    "FORMAT_VERSION", "INPUT_NAMES", "MANIFEST_DIGESTS", "MANIFEST_NAME", "SUMMARY_NAME", "Manifest", "TensorSpec",
    "artifact_file", "bundle_variant_dir", "check_relative_path", "confined_path", "expand_bundle", "hash_directory",
    "is_bundle", "load_artifact", "load_manifest", "manifest_digests", "model_file_path", "model_size_mb",
    "onnx_external_data", "read_manifest", "read_summary", "required_files", "resolve_artifact_dir", "sha256_file",
    "validate_manifest", "verify_files",
]  # fmt: skip
