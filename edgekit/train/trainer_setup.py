"""What the text and image fine-tuning share: the cache record and the ``Trainer`` settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TRAINING_RECORD = "training.json"  # cache key, settings and metrics, next to the checkpoint


def read_record(checkpoint: Path) -> dict | None:
    """The checkpoint's training record, or None when there is none (or it is damaged)."""
    try:
        record = json.loads((checkpoint / TRAINING_RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def training_arguments(
    output_dir: Path,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    warmup_ratio: float,
    seed: int,
) -> Any:
    """CPU training, no checkpoints or logs on disk (the caller writes the result atomically)."""
    import transformers

    return transformers.TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        warmup_ratio=warmup_ratio,
        lr_scheduler_type="linear",
        seed=seed,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=False,  # progress_bar_only() keeps the bar and drops the metric dicts
        dataloader_pin_memory=False,
    )
