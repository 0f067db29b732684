"""Hugging Face ``Trainer`` output trimmed to a progress bar (no metric dicts on every log)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def transformers_errors_only() -> Iterator[None]:
    """Only errors from transformers while training (its "newly initialized head" and Trainer
    notices are expected here); the caller's verbosity comes back afterwards. Also a decorator."""
    import transformers

    previous = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(previous)


def progress_bar_only(trainer: Any) -> None:
    """Swap Trainer's printing callbacks for a progress bar that does not print metrics.

    The metrics still reach ``trainer.state.log_history`` and any other callback.
    """
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class ProgressBarOnly(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass

    for noisy in (ProgressCallback, PrinterCallback):
        trainer.remove_callback(noisy)
    trainer.add_callback(ProgressBarOnly())
