"""Hugging Face ``Trainer`` output trimmed to a progress bar (no metric dicts on every log)."""

from __future__ import annotations

from typing import Any


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
