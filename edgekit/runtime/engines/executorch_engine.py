"""ExecuTorch: runs ``model.pte`` (XNNPACK delegate baked in) through ``executorch.runtime``.

The Python bindings take and return ``torch.Tensor`` only (numpy arrays are refused), and
importing them imports torch: this engine is the optional ``executorch`` extra, for checking
a ``.pte`` on a workstation before it ships to the Android/iOS runtime. The base runtime
still imports no torch: this module imports executorch only inside the engine.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ArtifactError
from edgekit.runtime.engines.base import EngineSpec

# Must match edgekit.export.executorch.positional_order (the runtime may not import export/).
_CANONICAL = ("input_ids", "attention_mask", "token_type_ids")


def _positional(names: list[str]) -> list[str]:
    return [n for n in _CANONICAL if n in names] + [n for n in names if n not in _CANONICAL]


class ExecutorchEngine:
    """One loaded ``forward`` method, run under a lock.

    A lock, not a method per thread: a program's host-memory methods share one planned arena,
    and the XNNPACK delegate's runtime is not documented as re-entrant; XNNPACK parallelises
    each call on its own thread pool, so concurrent calls would only contend for the cores.
    """

    def __init__(self, model_path: Path, threads: int | None, backends: list[str] | None = None):
        try:
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime, Verification
        except ImportError:
            raise ArtifactError(
                f"This artifact runs on ExecuTorch, which is not installed. Install it with {SPEC.install_hint()}."
            ) from None
        runtime = Runtime.get()
        missing = [b for b in (backends or list(SPEC.default_option)) if not runtime.backend_registry.is_available(b)]
        if missing:
            raise ArtifactError(
                f"This ExecuTorch build lacks the backend(s) {missing} the artifact was lowered for "
                f"(it has {runtime.backend_registry.registered_backend_names}); install the executorch wheel from PyPI."
            )
        if threads is not None:
            # Process-wide: XNNPACK's one thread pool is shared by every loaded ExecuTorch program.
            portable_lib._unsafe_reset_threadpool(int(threads))
        try:
            # InternalConsistency: the loader checks the flatbuffer's offsets and sizes before use
            # (a truncated or foreign file is refused); the manifest's sha256 was checked before this.
            program = runtime.load_program(Path(model_path), verification=Verification.InternalConsistency)
            self._method = program.load_method("forward")
            meta = self._method.metadata
        except Exception as exc:  # the bindings raise RuntimeError with an error code only
            raise ArtifactError(
                f"ExecuTorch could not load {model_path} ({exc}): the file is not a valid .pte for this runtime. "
                "Rebuild the artifact with the same executorch version as the one installed."
            ) from exc
        self._program = program  # the method borrows from the program: keep it alive
        inputs = [meta.input_tensor_meta(i).sizes() for i in range(meta.num_inputs())]
        self._max_batch, self._max_length = (int(inputs[0][0]), int(inputs[0][1])) if inputs else (1, 0)
        self._num_inputs = len(inputs)
        output = meta.output_tensor_meta(0).sizes() if meta.num_outputs() else ()
        self.output_width = int(output[-1]) if output else None
        self._lock = threading.Lock()
        self.providers = ["ExecuTorch:XnnpackBackend"]

    def _tensors(self, feed: dict[str, np.ndarray]) -> list[Any]:
        import torch

        if len(feed) != self._num_inputs:
            raise ArtifactError(
                f"The model takes {self._num_inputs} inputs but the manifest feeds {sorted(feed)}: the manifest "
                "does not belong to this .pte. Rebuild the artifact rather than editing its manifest."
            )
        width = next(iter(feed.values())).shape[1]
        if width > self._max_length:
            raise ArtifactError(
                f"An input of {width} tokens is longer than the {self._max_length} this .pte accepts: the manifest's "
                "tokenizer.max_length does not match the program. Rebuild the artifact."
            )
        return [torch.from_numpy(np.ascontiguousarray(feed[name], dtype=np.int64)) for name in _positional(list(feed))]

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        tensors = self._tensors(feed)
        rows = int(tensors[0].shape[0]) if tensors else 0
        parts = []
        # The program accepts at most max_batch rows (its memory plan): bigger feeds go in slices.
        for start in range(0, max(rows, 1), self._max_batch):
            chunk = [t[start : start + self._max_batch] for t in tensors]
            with self._lock:
                try:
                    out = self._method.execute(chunk)[0]
                except RuntimeError as exc:  # 0x10 InvalidArgument: a shape outside the exported range
                    raise ArtifactError(
                        f"ExecuTorch refused the input ({exc}): shape {[tuple(t.shape) for t in chunk]} is outside "
                        f"what the program accepts (batch <= {self._max_batch}, length <= {self._max_length})."
                    ) from exc
            parts.append(out.detach().numpy().copy())
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


SPEC = EngineSpec(
    name="executorch",
    title="ExecuTorch",
    suffixes=(".pte",),
    module="executorch",
    extra="executorch",
    option="backends",
    default_option=("XnnpackBackend",),  # baked into the .pte at lowering; checked present at load
    factory=ExecutorchEngine,
)
