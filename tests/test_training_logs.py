"""Training silences transformers' expected notices while it runs, and gives the caller's logging back."""

from __future__ import annotations

import transformers
from conftest import synthetic_sentiment, write_tsv

from edgekit.data import read_text_dataset
from edgekit.train.finetune import FinetuneConfig, finetune_classifier
from edgekit.train.hf_progress import transformers_errors_only


def test_errors_only_restores_the_callers_verbosity():
    transformers.logging.set_verbosity_info()
    try:
        with transformers_errors_only():
            assert transformers.logging.get_verbosity() == transformers.logging.ERROR
        assert transformers.logging.get_verbosity() == transformers.logging.INFO
    finally:
        transformers.logging.set_verbosity_warning()


def test_errors_only_restores_after_an_exception():
    transformers.logging.set_verbosity_debug()
    try:
        try:
            with transformers_errors_only():
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert transformers.logging.get_verbosity() == transformers.logging.DEBUG
    finally:
        transformers.logging.set_verbosity_warning()


def test_finetuning_leaves_verbosity_as_it_found_it(tmp_path, tiny_model_dir):
    train = read_text_dataset(write_tsv(tmp_path / "train.tsv", synthetic_sentiment(32, seed=3)))
    transformers.logging.set_verbosity_info()
    try:
        finetune_classifier(tiny_model_dir, train, tmp_path / "model",
                            config=FinetuneConfig(epochs=1, batch_size=16, max_length=16))  # fmt: skip
        assert transformers.logging.get_verbosity() == transformers.logging.INFO
    finally:
        transformers.logging.set_verbosity_warning()
