"""Shared fixtures: a tiny BERT classifier built from a config, its artifact, small data files.

The tiny model has random weights, so its predictions mean nothing; tests use it for
behaviour, shapes and parity. Real-weight tests are marked ``integration``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before anything imports huggingface_hub (it reads these once): no hub, and a private cache
# so that the hub-id test can populate it without touching the user's own.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="edgekit-test-hf-")
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["EDGEKIT_CACHE"] = tempfile.mkdtemp(prefix="edgekit-test-cache-")  # teacher logits etc.

import pytest  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = SHARED / "data"
SST2_TEACHER = SHARED / "models" / "minilm-l6-sst2"
TINY_LABELS = ["negative", "neutral", "positive"]

_WORDS = (
    "the a an and or but not is was it this that to of in on for with my me you turn off lights "
    "set play music alarm timer weather call send message add list good bad great awful film movie "
    "very really fun boring love hate today tomorrow please what how when where i we they ok"
).split()


def _write_vocab(path: Path) -> None:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pieces = [f"##{c}" for c in letters]
    punctuation = list(".,!?'-:;0123456789")
    tokens = list(dict.fromkeys(specials + punctuation + letters + pieces + _WORDS))  # unique, in order
    path.write_text("\n".join(tokens) + "\n")


def build_tiny_classifier(
    directory: Path, seed: int = 0, labels: list[str] = TINY_LABELS, layers: int = 2, vocab_extra: str = ""
) -> Path:
    """Save a tiny (hidden 32) BERT sequence classifier and its fast tokenizer."""
    import torch
    import transformers

    directory.mkdir(parents=True, exist_ok=True)
    vocab = directory / "vocab.txt"
    _write_vocab(vocab)
    if vocab_extra:
        vocab.write_text(vocab.read_text() + vocab_extra + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(vocab), model_max_length=64)
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    torch.manual_seed(seed)
    model = transformers.BertForSequenceClassification(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


TINY_TEXTS = [
    ("this film was great fun", "positive"),
    ("awful and boring", "negative"),
    ("it is a movie", "neutral"),
    ("i really love this movie, very good", "positive"),
    ("bad", "negative"),
    ("what is the weather today", "neutral"),
    ("not good, not bad, ok", "neutral"),
    ("i hate it. really awful. the worst film of the year, boring from the start to the end", "negative"),
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in TINY_TEXTS), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory, tiny_model_dir, tiny_data) -> Path:
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    out = tmp_path_factory.mktemp("artifacts") / "tiny-onnx"
    recipe = build_recipe({"model": str(tiny_model_dir), "out": str(out), "data": {"path": str(tiny_data)}})
    return convert(recipe).artifact_dir


def synthetic_sentiment(n: int, seed: int) -> list[tuple[str, str]]:
    """Short texts whose label follows from their words, so a tiny model can learn them fast."""
    import random

    rng = random.Random(seed)
    cues = {"positive": ["good", "great", "love", "fun"], "negative": ["bad", "awful", "hate", "boring"],
            "neutral": ["weather", "today", "list", "music"]}  # fmt: skip
    filler = ["the", "film", "movie", "it", "was", "this", "really", "very", "my", "i"]
    rows = []
    for _ in range(n):
        label = rng.choice(TINY_LABELS)
        words = rng.sample(filler, rng.randint(1, 6)) + rng.sample(cues[label], rng.randint(1, 2))
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def write_tsv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def sentiment_eval(tmp_path_factory) -> Path:
    return write_tsv(tmp_path_factory.mktemp("eval") / "eval.tsv", synthetic_sentiment(120, seed=2))


@pytest.fixture(scope="session")
def trained_tiny_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """The tiny BERT fine-tuned for a few seconds on synthetic data: its logits mean something."""
    from edgekit.data import read_text_dataset
    from edgekit.train.finetune import FinetuneConfig, finetune_classifier

    root = tmp_path_factory.mktemp("trained")
    train = read_text_dataset(write_tsv(root / "train.tsv", synthetic_sentiment(300, seed=1)))
    held_out = read_text_dataset(write_tsv(root / "dev.tsv", synthetic_sentiment(60, seed=2)))
    config = FinetuneConfig(epochs=4, batch_size=16, learning_rate=3e-3, max_length=32)
    result = finetune_classifier(tiny_model_dir, train, root / "model", held_out, config=config)
    assert result.eval_accuracy is not None and 0.0 <= result.eval_accuracy <= 1.0, "evaluated on held-out rows"
    return result.checkpoint


def require_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: real-data tests need ../shared next to the checkout")
    return path


@pytest.fixture(scope="session")
def image_artifact(tmp_path_factory) -> Path:
    """A tiny CNN image-classification artifact (tests/image_helpers.py), built once per run."""
    from image_helpers import build_image_artifact

    return build_image_artifact(tmp_path_factory.mktemp("image-artifacts") / "tiny-cnn")
