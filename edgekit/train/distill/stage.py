"""The distillation stage: teacher → student checkpoint, cached by its inputs, resumable.

1. Build the student (layers of the teacher, or a given checkpoint with the same vocabulary).
2. Run the teacher once over the training and evaluation texts and cache its logits.
3. Train with ``DistillationTrainer`` (HF ``Trainer``): checkpoints every evaluation, the
   best checkpoint by dev accuracy (or agreement with the teacher, without labels) kept.
4. Write the student as a normal HF checkpoint plus ``distillation.json`` (what was done
   and how well it worked); a later run with the same inputs reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.convert.recipe import DistillSpec
from edgekit.convert.sources import LoadedSource, weights_fingerprint
from edgekit.data import TextDataset
from edgekit.errors import DataError, SourceError
from edgekit.metrics import accuracy, agreement
from edgekit.outputs import OutputError, atomic_directory, check_destination
from edgekit.progress import Reporter, SilentReporter
from edgekit.train.distill.losses import LossWeights
from edgekit.train.hf_progress import progress_bar_only, transformers_errors_only
from edgekit.train.tokenized import TokenizedRows

RECORD = "distillation.json"


def logits_cache_dir() -> Path:
    """Teacher logits are shared by every student of the same teacher and data (keyed by hash)."""
    return Path(os.environ.get("EDGEKIT_CACHE", Path.home() / ".cache" / "edgekit")) / "teacher-logits"


@dataclass(frozen=True)
class DistillResult:
    checkpoint: Path
    record: dict[str, Any]
    reused: bool


def _key(teacher: LoadedSource, train: TextDataset, evaluation: TextDataset, spec: DistillSpec) -> str:
    digest = hashlib.sha256()
    digest.update(str(teacher.info.get("weights_sha256") or teacher.info).encode())
    if spec.student and Path(spec.student).is_dir():
        digest.update(str(weights_fingerprint(Path(spec.student))).encode())
    payload = [train.texts, train.labels, evaluation.texts, evaluation.labels, spec.model_dump(mode="json")]
    digest.update(json.dumps(payload).encode())
    return digest.hexdigest()


def _collator(tokenizer):
    import torch
    from transformers import DataCollatorWithPadding

    from edgekit.train.distill.trainer import TEACHER_LOGITS

    pad = DataCollatorWithPadding(tokenizer)

    def collate(rows: list[dict]) -> dict:
        logits = torch.tensor(np.stack([row.pop(TEACHER_LOGITS) for row in rows]), dtype=torch.float32)
        batch = pad(rows)
        batch[TEACHER_LOGITS] = logits
        return batch

    return collate


def teacher_logits(teacher: LoadedSource, texts: list[str], max_length: int, cache: Path, label: str) -> np.ndarray:
    """The teacher's logits for ``texts``, computed once (longest-first batches) and cached."""
    import torch
    from tqdm.auto import tqdm

    identity = teacher.info.get("weights_sha256") or str(teacher.info)  # the weights, wherever they sit
    digest = hashlib.sha256(json.dumps([identity, texts, max_length]).encode()).hexdigest()[:16]
    path = cache / f"teacher-logits-{label}-{digest}.npy"
    if path.is_file():
        return np.load(path)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    result = np.zeros((len(texts), len(teacher.labels)), dtype=np.float32)
    model = teacher.model.eval()
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), 64), desc=f"teacher logits ({label})", unit="batch"):
            chosen = order[start : start + 64]
            encoded = teacher.tokenizer([texts[i] for i in chosen], padding=True, truncation=True,
                                        max_length=max_length, return_tensors="pt")  # fmt: skip
            result[chosen] = model(**encoded).logits.float().numpy()
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")  # a killed run leaves no truncated cache
    np.save(partial, result)
    os.replace(partial, path)
    return result


def build_student(teacher: LoadedSource, spec: DistillSpec) -> tuple[Any, Any, list[int]]:
    """(student model, its tokenizer, layer map: teacher layer for each student layer)."""
    import transformers

    from edgekit.train.distill.student import (
        check_same_vocabulary,
        layer_count,
        student_from_teacher,
        uniform_layer_map,
    )

    teacher_layers = layer_count(teacher.model)
    if spec.student is not None:
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(spec.student, use_fast=True)
            check_same_vocabulary(teacher.tokenizer, tokenizer, spec.student)
            student = transformers.AutoModelForSequenceClassification.from_pretrained(
                spec.student,
                num_labels=len(teacher.labels),
                id2label=dict(enumerate(teacher.labels)),
                label2id={name: i for i, name in enumerate(teacher.labels)},
                ignore_mismatched_sizes=True,
            )
        except (OSError, ValueError) as exc:
            raise SourceError(f"Could not load the student checkpoint '{spec.student}': {exc}") from None
        student_layers = layer_count(student)
        return student, tokenizer, uniform_layer_map(teacher_layers, min(student_layers, teacher_layers))
    if isinstance(spec.student_layers, list):
        layer_map = list(spec.student_layers)
    else:
        layer_map = uniform_layer_map(teacher_layers, spec.student_layers or max(1, teacher_layers // 2))
    return student_from_teacher(teacher.model, layer_map), teacher.tokenizer, layer_map


def _clear_checkpoints(folder: Path) -> None:
    """Remove an earlier run's Trainer checkpoints; refuse a folder holding anything else (not ours)."""
    if not folder.exists():
        return
    foreign = [p.name for p in folder.iterdir() if not (p.is_dir() and p.name.startswith(("checkpoint-", "runs")))]
    if folder.is_symlink() or not folder.is_dir() or foreign:
        raise OutputError(
            f"Refusing to clear {folder}: it holds {', '.join(foreign[:5]) or 'a link'}, which Trainer checkpoints "
            "never do. Point distill.work_dir at a folder of its own, or move those files away."
        )
    shutil.rmtree(folder)


@transformers_errors_only()  # the caller's verbosity comes back afterwards
def run_distillation(
    teacher: LoadedSource,
    spec: DistillSpec,
    train: TextDataset,
    evaluation: TextDataset,
    work_dir: Path,
    reporter: Reporter | None = None,
    resume: bool = False,
) -> DistillResult:
    reporter = reporter or SilentReporter()
    if spec.max_train_rows is not None:
        train = train.sample(spec.max_train_rows, seed=spec.seed)
    if len(train) == 0 or len(evaluation) == 0:
        raise DataError("Distillation needs training and evaluation texts; a data file was empty.")
    key = _key(teacher, train, evaluation, spec)
    output = work_dir / "student"
    inputs = _inputs(teacher, spec, train, evaluation)
    check_destination(output, inputs)  # before training: never the teacher, the student init or the data
    previous = _read_record(output)
    if previous is not None and previous.get("cache_key") == key:
        reporter.note(f"reusing the distilled student in {output}")
        return DistillResult(output, previous, True)

    import transformers
    from transformers.trainer_utils import get_last_checkpoint

    from edgekit.train.distill.trainer import TEACHER_LOGITS, DistillationTrainer

    transformers.set_seed(spec.seed)
    checkpoints = work_dir / "checkpoints"
    if not resume and int(os.environ.get("RANK", "0")) == 0:
        _clear_checkpoints(checkpoints)  # a fresh run; under torchrun only rank 0 clears
    steps_per_epoch = max(1, -(-len(train) // spec.batch_size))
    total_steps = spec.max_steps or int(steps_per_epoch * spec.epochs)
    eval_steps = spec.eval_steps or max(1, total_steps // 4)  # four evaluations (and checkpoints) per run
    args = transformers.TrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=spec.epochs,
        max_steps=spec.max_steps or -1,
        per_device_train_batch_size=spec.batch_size,
        per_device_eval_batch_size=64,
        learning_rate=spec.learning_rate,
        weight_decay=spec.weight_decay,
        warmup_ratio=spec.warmup_ratio,
        lr_scheduler_type="linear",
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        greater_is_better=True,
        logging_steps=max(1, eval_steps // 2),
        report_to=[],
        seed=spec.seed,
        bf16=spec.mixed_precision == "bf16",
        fp16=spec.mixed_precision == "fp16",
        remove_unused_columns=False,
        label_names=["labels"],
        disable_tqdm=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        save_safetensors=True,
        # On a machine without an accelerator, run on the CPU explicitly: that is also what lets
        # torchrun start CPU data-parallel training (gloo) instead of N independent runs.
        use_cpu=not _has_accelerator(),
    )
    student, tokenizer, layer_map = build_student(teacher, spec)
    labels = teacher.labels
    train_ids = train.label_ids(labels) if train.has_labels else None
    # Under torchrun/accelerate the main process computes and caches the teacher's logits;
    # the other processes then read them from the cache.
    with args.main_process_first(desc="teacher logits"):
        eval_logits = teacher_logits(teacher, evaluation.texts, spec.max_length, logits_cache_dir(), "eval")
        with reporter.stage(f"Teacher logits for {len(train)} training texts (cached)"):
            train_logits = teacher_logits(teacher, train.texts, spec.max_length, logits_cache_dir(), "train")
    pruning = None
    if spec.prune is not None:  # after layer selection, before the distillation that recovers from it
        from edgekit.train.prune import prune_model

        with reporter.stage(f"Pruning the student (heads {spec.prune.heads}, FFN {spec.prune.ffn})"):
            pruning = prune_model(student, tokenizer, spec.prune, train.texts, train_logits, spec.max_length, spec.seed)
    teacher_eval = eval_logits.argmax(-1)
    eval_ids = evaluation.label_ids(labels) if evaluation.has_labels else teacher_eval.tolist()

    def metrics(prediction) -> dict[str, float]:
        predicted = np.argmax(prediction.predictions, -1)
        return {
            "accuracy": accuracy(predicted, prediction.label_ids),
            "agreement": agreement(predicted, teacher_eval),
        }

    train_rows = TokenizedRows(tokenizer, train.texts, spec.max_length, labels=train_ids,
                               **{TEACHER_LOGITS: train_logits})  # fmt: skip
    eval_rows = TokenizedRows(tokenizer, evaluation.texts, spec.max_length, labels=eval_ids,
                              **{TEACHER_LOGITS: eval_logits})  # fmt: skip
    weights = LossWeights(**spec.weights.model_dump())
    trainer = DistillationTrainer(
        model=student,
        args=args,
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        data_collator=_collator(tokenizer),
        compute_metrics=metrics,
        teacher=teacher.model if weights.needs_teacher_internals else None,
        weights=weights,
        temperature=spec.temperature,
        layer_map=layer_map,
    )
    progress_bar_only(trainer)
    last_checkpoint = get_last_checkpoint(str(checkpoints)) if resume and checkpoints.is_dir() else None
    started = time.perf_counter()
    with reporter.stage(f"Distilling {len(layer_map)}-layer student ({total_steps} steps)"):
        result = trainer.train(resume_from_checkpoint=last_checkpoint)
    seconds = time.perf_counter() - started
    final = trainer.evaluate()
    teacher_accuracy = accuracy(teacher_eval, eval_ids) if evaluation.has_labels else None
    record = {
        "cache_key": key,
        "teacher": teacher.info,
        # Names, not local paths: this record is copied into the manifests that ship with the model.
        "student_init": _name(spec.student) if spec.student else "layers of the teacher",
        "layer_map": layer_map,
        "student_layers": len(layer_map),
        "pruning": pruning,
        "losses": {**asdict(weights), "temperature": spec.temperature},
        "train_rows": len(train),
        "eval_rows": len(evaluation),
        "eval_data": _name(evaluation.source),
        "labelled_training": train.has_labels,
        "steps": result.global_step,
        "world_size": trainer.args.world_size,
        "resumed": last_checkpoint is not None,
        "resumed_from": _name(last_checkpoint) if last_checkpoint else None,
        "train_seconds": seconds,
        "teacher_accuracy": teacher_accuracy,
        "student_accuracy": final["eval_accuracy"] if evaluation.has_labels else None,
        "agreement_with_teacher": final["eval_agreement"],
        "best_checkpoint": _name(trainer.state.best_model_checkpoint) if trainer.state.best_model_checkpoint else None,
    }
    if trainer.is_world_process_zero():
        with atomic_directory(output, "distilled-checkpoint", inputs) as staging:
            trainer.save_model(str(staging))
            tokenizer.save_pretrained(str(staging))
            (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    trainer.accelerator.wait_for_everyone()
    return DistillResult(output, record, False)


def _inputs(teacher: LoadedSource, spec: DistillSpec, train: TextDataset, evaluation: TextDataset) -> list[Path]:
    """Local folders and files the distillation reads (hub ids are not paths)."""
    candidates = [teacher.location, spec.student, train.source, evaluation.source]
    return [Path(c) for c in candidates if c and Path(c).exists()]


def _name(location: str | os.PathLike) -> str:
    """A file's or folder's name, or a hub id as it is: what a record may say about a local path."""
    path = Path(location)
    return path.name if path.is_absolute() or path.exists() else str(location)


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


def _read_record(folder: Path) -> dict | None:
    try:
        return json.loads((folder / RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return None
