"""Fine-tune a pretrained encoder into a text classifier with Hugging Face ``Trainer``.

Used by the quickstart to make its teacher; the same function serves users who bring
their own labelled data. The checkpoint is written atomically, with a ``training.json``
that records the cache key (base weights, data and settings) and the metrics, so a
second run with the same inputs reuses it instead of training again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edgekit.convert.sources import weights_fingerprint
from edgekit.data import TextDataset
from edgekit.errors import DataError
from edgekit.metrics import accuracy
from edgekit.outputs import atomic_directory, check_destination
from edgekit.progress import Reporter, SilentReporter
from edgekit.train.hf_progress import progress_bar_only, transformers_errors_only
from edgekit.train.tokenized import TokenizedRows
from edgekit.train.trainer_setup import TRAINING_RECORD, read_record, training_arguments


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: float = 5.0
    batch_size: int = 16
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 64
    seed: int = 0


@dataclass(frozen=True)
class FinetuneResult:
    checkpoint: Path
    labels: list[str]
    eval_accuracy: float | None
    train_seconds: float
    steps: int
    reused: bool


def _cache_key(base_model: Path, train: TextDataset, labels: list[str], config: FinetuneConfig) -> str:
    digest = hashlib.sha256()
    digest.update((weights_fingerprint(base_model) or str(base_model.resolve())).encode())
    digest.update(json.dumps([train.texts, train.labels, labels, asdict(config)]).encode())
    return digest.hexdigest()


@transformers_errors_only()
def finetune_classifier(
    base_model: Path,
    train: TextDataset,
    out: Path,
    evaluation: TextDataset | None = None,
    config: FinetuneConfig | None = None,
    reporter: Reporter | None = None,
) -> FinetuneResult:
    """Train ``base_model`` (any HF encoder checkpoint) with a fresh classification head."""
    config = config or FinetuneConfig()
    reporter = reporter or SilentReporter()
    if not train.has_labels:
        raise DataError(f"{train.source} has no labels; fine-tuning needs a label column.")
    labels = train.label_names()
    if len(labels) < 2:
        raise DataError(f"{train.source} has only one label ({labels}); a classifier needs at least two.")
    inputs = [base_model] + [Path(d.source) for d in (train, evaluation) if d is not None and Path(d.source).exists()]
    check_destination(out, inputs)  # before training: never a folder edgekit did not write, nor an input
    key = _cache_key(base_model, train, labels, config)
    record = read_record(out)
    if record is not None and record.get("cache_key") == key:
        reporter.note(f"reusing the fine-tuned checkpoint in {out}")
        return FinetuneResult(out, labels, record.get("eval_accuracy"), record["train_seconds"], record["steps"], True)

    import numpy as np
    import transformers

    transformers.set_seed(config.seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_model, use_fast=True)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        base_model,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        # A base that already has a head for another label set gets a fresh one instead.
        ignore_mismatched_sizes=True,
    )
    train_set = TokenizedRows(tokenizer, train.texts, config.max_length, labels=train.label_ids(labels))
    eval_set = (
        TokenizedRows(tokenizer, evaluation.texts, config.max_length, labels=evaluation.label_ids(labels))
        if evaluation is not None
        else None
    )

    def eval_accuracy(prediction) -> dict[str, float]:
        return {"accuracy": accuracy(np.argmax(prediction.predictions, -1), prediction.label_ids)}

    with atomic_directory(out, "checkpoint", inputs) as staging:
        args = training_arguments(
            staging / "_trainer", config.epochs, config.batch_size, config.learning_rate,
            config.weight_decay, config.warmup_ratio, config.seed,
        )  # fmt: skip
        trainer = transformers.Trainer(
            model=model,
            args=args,
            train_dataset=train_set,
            eval_dataset=eval_set,
            data_collator=transformers.DataCollatorWithPadding(tokenizer),
            compute_metrics=eval_accuracy,
        )
        progress_bar_only(trainer)
        started = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - started
        eval_accuracy = trainer.evaluate()["eval_accuracy"] if eval_set is not None else None
        trainer.save_model(str(staging))
        tokenizer.save_pretrained(str(staging))
        shutil.rmtree(staging / "_trainer", ignore_errors=True)
        record = {
            "cache_key": key,
            "base_model": str(base_model),
            "train_rows": len(train),
            "labels": labels,
            "config": asdict(config),
            "steps": output.global_step,
            "train_seconds": seconds,
            "eval_accuracy": eval_accuracy,
        }
        (staging / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return FinetuneResult(out, labels, eval_accuracy, seconds, output.global_step, False)
