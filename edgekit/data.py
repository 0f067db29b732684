"""Read labelled or unlabelled text data from TSV, CSV or JSONL files.

TSV is read with ``QUOTE_NONE`` (a quote is an ordinary character there, as in GLUE's
files); CSV with standard quoting; JSONL one object per line. Every problem names the
file and line so that a user can fix it.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgekit.errors import DataError

DataFormat = Literal["tsv", "csv", "jsonl"]
_SUFFIX_FORMATS: dict[str, DataFormat] = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}

# Inputs when the user gives no data (parity, bench): plain sentences of very different lengths.
PROBE_TEXTS = [
    "ok",
    "turn it off",
    "This is a short sentence.",
    "What will the weather be like in Lisbon tomorrow afternoon?",
    "I could not put this book down; the characters felt real and the ending surprised me.",
    "Please remind me to call the plumber about the leaking kitchen tap before noon on Friday, "
    "and add washers and a new cartridge to the shopping list so I remember to pick them up.",
    "The quarterly report shows revenue up 4% while costs fell, although analysts warn that "
    "supply-chain delays, currency swings and a slower holiday season could erase those gains "
    "before the end of the fiscal year, which has prompted the board to revisit its outlook.",
    "Ünïcödé, emojis 🙂 and numbers like 3.14159 should tokenize the same way everywhere.",
]


@dataclass(frozen=True)
class TextDataset:
    texts: list[str]
    labels: list[str] | None  # raw label values as written in the file; None when unlabelled
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def label_names(self) -> list[str]:
        """Distinct labels, sorted numerically when they are all integers."""
        if self.labels is None:
            return []
        distinct = set(self.labels)
        if all(label.lstrip("-").isdigit() for label in distinct):
            return sorted(distinct, key=int)
        return sorted(distinct)

    def label_ids(self, model_labels: Sequence[str]) -> list[int]:
        """Map this data's labels onto a model's label list, by name or else by index."""
        if self.labels is None:
            raise DataError(f"{self.source} has no labels; accuracy needs a label column.")
        by_name = {name: index for index, name in enumerate(model_labels)}
        ids: list[int] = []
        for row, label in enumerate(self.labels):
            if label in by_name:
                ids.append(by_name[label])
            elif label.isdigit() and int(label) < len(model_labels):
                ids.append(int(label))
            else:
                raise DataError(
                    f"{self.source}: label '{label}' (row {row + 1}) is not one of the model's labels "
                    f"{list(model_labels)} nor an index into them. Check that the data fits this model."
                )
        return ids

    def sample(self, n: int, seed: int = 0) -> TextDataset:
        """A reproducible random subset of at most ``n`` rows."""
        if n >= len(self):
            return self
        indices = sorted(random.Random(seed).sample(range(len(self)), n))
        labels = [self.labels[i] for i in indices] if self.labels is not None else None
        return TextDataset([self.texts[i] for i in indices], labels, self.source)


def _format_of(path: Path, fmt: str | None) -> DataFormat:
    if fmt is not None:
        if fmt not in ("tsv", "csv", "jsonl"):
            raise DataError(f"Unknown data format '{fmt}'; use tsv, csv or jsonl.")
        return fmt  # type: ignore[return-value]
    try:
        return _SUFFIX_FORMATS[path.suffix.lower()]
    except KeyError:
        raise DataError(
            f"Cannot tell the format of {path} from its suffix; name it .tsv, .csv or .jsonl, "
            "or pass the format explicitly."
        ) from None


def _rows_delimited(path: Path, fmt: DataFormat) -> tuple[list[str], list[tuple[int, list[str]]]]:
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {"delimiter": ","}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, **dialect)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path} is empty; it needs a header line (e.g. `text<TAB>label`) and rows.")
        rows = [(reader.line_num, row) for row in reader if row]
    return [h.strip() for h in header], rows


def read_text_dataset(
    path: str | Path,
    text_column: str = "text",
    label_column: str | None = "label",
    fmt: str | None = None,
    require_labels: bool = False,
) -> TextDataset:
    """Read a text dataset; labels are optional unless ``require_labels``."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"Data file {file} does not exist.")
    kind = _format_of(file, fmt)
    try:
        if kind == "jsonl":
            texts, labels = _read_jsonl(file, text_column, label_column)
        else:
            texts, labels = _read_delimited(file, kind, text_column, label_column)
    except UnicodeDecodeError as exc:
        raise DataError(f"{file} is not UTF-8 text ({exc}); re-save it as UTF-8.") from None
    if not texts:
        raise DataError(f"{file} has a header but no rows; add some data.")
    if require_labels and labels is None:
        raise DataError(f"{file} has no '{label_column}' column, and this step needs labels.")
    return TextDataset(texts, labels, str(file))


def _read_delimited(
    file: Path, kind: DataFormat, text_column: str, label_column: str | None
) -> tuple[list[str], list[str] | None]:
    header, rows = _rows_delimited(file, kind)
    if text_column not in header:
        raise DataError(
            f"{file} has no '{text_column}' column (header: {header}). "
            f"The first line must name the columns, e.g. `text{'<TAB>' if kind == 'tsv' else ','}label`."
        )
    text_at = header.index(text_column)
    label_at = header.index(label_column) if label_column and label_column in header else None
    texts: list[str] = []
    labels: list[str] = []
    for line, row in rows:
        if len(row) != len(header):
            raise DataError(
                f"{file}, line {line}: expected {len(header)} fields ({', '.join(header)}), found {len(row)}. "
                + ("A TAB inside a text splits it; remove it." if kind == "tsv" else "Quote fields that hold commas.")
            )
        text = row[text_at].strip()
        if not text:
            raise DataError(f"{file}, line {line}: the text is empty; remove the row or fill it in.")
        texts.append(text)
        if label_at is not None:
            label = row[label_at].strip()
            if not label:
                raise DataError(f"{file}, line {line}: the label is empty; every row needs one.")
            labels.append(label)
    return texts, (labels if label_at is not None else None)


def _read_jsonl(file: Path, text_column: str, label_column: str | None) -> tuple[list[str], list[str] | None]:
    texts: list[str] = []
    labels: list[str] = []
    labelled: bool | None = None
    with file.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{file}, line {line_no}: not valid JSON ({exc.msg}).") from None
            if not isinstance(record, dict) or not isinstance(record.get(text_column), str):
                raise DataError(f"{file}, line {line_no}: expected an object with a string '{text_column}' field.")
            text = record[text_column].strip()
            if not text:
                raise DataError(f"{file}, line {line_no}: the text is empty; remove the row or fill it in.")
            has_label = label_column is not None and record.get(label_column) is not None
            if labelled is None:
                labelled = has_label
            elif has_label != labelled:
                raise DataError(f"{file}, line {line_no}: some rows have a '{label_column}' and some do not.")
            texts.append(text)
            if has_label:
                labels.append(str(record[label_column]).strip())
    return texts, (labels if labelled else None)
