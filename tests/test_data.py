from pathlib import Path

import pytest

from edgekit.data import TextDataset, read_text_dataset
from edgekit.errors import DataError


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_tsv_keeps_quotes_as_text(tmp_path):
    path = write(tmp_path, "d.tsv", "text\tlabel\nhe said \"hi\t1\n`` quoted ''\t0\n")
    data = read_text_dataset(path)
    assert data.texts == ['he said "hi', "`` quoted ''"]
    assert data.labels == ["1", "0"]


def test_csv_and_jsonl(tmp_path):
    csv_path = write(tmp_path, "d.csv", 'text,label\n"hello, world",pos\nbye,neg\n')
    assert read_text_dataset(csv_path).texts == ["hello, world", "bye"]
    jsonl = write(tmp_path, "d.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n')
    data = read_text_dataset(jsonl)
    assert data.texts == ["a", "b"] and data.labels == ["1", "0"]


def test_unlabelled_data_is_allowed_unless_required(tmp_path):
    path = write(tmp_path, "u.tsv", "text\nonly text\n")
    assert read_text_dataset(path).labels is None
    with pytest.raises(DataError, match="no 'label' column"):
        read_text_dataset(path, require_labels=True)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("text\tlabel\n", "no rows"),
        ("sentence\tlabel\nhi\t1\n", "no 'text' column"),
        ("text\tlabel\nfine\t1\ntoo\tmany\tfields\n", "line 3: expected 2 fields"),
        ("text\tlabel\n  \t1\n", "line 2: the text is empty"),
        ("text\tlabel\nhi\t\n", "line 2: the label is empty"),
    ],
)
def test_bad_tsv_names_the_problem(tmp_path, content, message):
    with pytest.raises(DataError, match=message):
        read_text_dataset(write(tmp_path, "bad.tsv", content))


def test_bad_jsonl_and_formats(tmp_path):
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        read_text_dataset(write(tmp_path, "b.jsonl", '{"text": "a"}\n{oops\n'))
    with pytest.raises(DataError, match="some rows have a 'label'"):
        read_text_dataset(write(tmp_path, "m.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n'))
    with pytest.raises(DataError, match="Cannot tell the format"):
        read_text_dataset(write(tmp_path, "d.txt", "text\nhi\n"))
    with pytest.raises(DataError, match="does not exist"):
        read_text_dataset(tmp_path / "missing.tsv")
    with pytest.raises(DataError, match="not UTF-8"):
        (tmp_path / "latin.tsv").write_bytes("text\ncaf\xe9\n".encode("latin-1"))
        read_text_dataset(tmp_path / "latin.tsv")


def test_label_mapping_by_name_then_index():
    data = TextDataset(["a", "b", "c"], ["positive", "0", "negative"], "mem")
    assert data.label_ids(["negative", "positive"]) == [1, 0, 0]
    with pytest.raises(DataError, match="'neutral'"):
        TextDataset(["a"], ["neutral"], "mem").label_ids(["negative", "positive"])
    assert TextDataset(["a", "b"], ["10", "9"], "mem").label_names() == ["9", "10"]


def test_sample_is_reproducible_and_bounded():
    data = TextDataset([str(i) for i in range(100)], [str(i % 2) for i in range(100)], "mem")
    assert data.sample(10, seed=1).texts == data.sample(10, seed=1).texts
    assert data.sample(10, seed=1).texts != data.sample(10, seed=2).texts
    assert len(data.sample(1000)) == 100
