"""Read labelled or unlabelled text data from TSV, CSV or JSONL files.

TSV is read with ``QUOTE_NONE`` (a quote is an ordinary character there, as in GLUE's
files); CSV with standard quoting; JSONL one object per line. Every problem names the
file and line so that a user can fix it.

Data files are untrusted input: whatever bytes they hold, a reader returns a dataset or
raises ``DataError`` (tests/test_hostile_inputs.py checks this with random files). A UTF-8
byte-order mark is ignored; a field may be up to ``FIELD_LIMIT`` characters long.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgekit.errors import DataError

DataFormat = Literal["tsv", "csv", "jsonl"]
_SUFFIX_FORMATS: dict[str, DataFormat] = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}
# Python's csv refuses fields over 131,072 characters; a long document is a legitimate text (the
# tokenizer truncates it), so allow far more, but keep a bound so that one broken quote cannot
# swallow a huge file into a single field.
FIELD_LIMIT = 10_000_000

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
    """The header and the non-blank rows, each with the line it starts on."""
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {"delimiter": ","}
    with path.open(encoding="utf-8-sig", newline="") as handle:  # -sig: a byte-order mark is not in the header
        text = handle.read()
    csv.field_size_limit(FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), **dialect)
    records: list[tuple[int, int, list[str]]] = []  # (first line, last line, fields)
    start = 1
    try:
        for row in reader:
            records.append((start, reader.line_num, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(_csv_problem(path, start, exc)) from None
    if not records:
        raise DataError(f"{path} is empty; it needs a header line (e.g. `text<TAB>label`) and rows.")
    if fmt == "csv":
        _check_closed_quote(path, text, records[-1])
    header = records[0][2]
    return [h.strip() for h in header], [(first, row) for first, last, row in records[1:] if row]


def _csv_problem(path: Path, line: int, exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (
            f"{path}, line {line}: a field is longer than {FIELD_LIMIT:,} characters. Shorten that text, or check "
            "for a quote that is never closed (it makes the rest of the file one field)."
        )
    return f"{path}, line {line}: malformed row ({exc}). Check its quotes and delimiters."


def _check_closed_quote(path: Path, text: str, last_record: tuple[int, int, list[str]]) -> None:
    """A quote never closed makes the last record run to the end of the file: name where it opened."""
    first, last, _ = last_record
    if last == first:
        return
    tail = "".join(text.splitlines(keepends=True)[first - 1 :])
    try:
        list(csv.reader(io.StringIO(tail, newline=""), strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise DataError(
                f"{path}, line {first}: a quoted field opens on this line and is never closed, so it runs to the "
                f'end of the file (line {last}). Close the quote, or double a quote inside a text ("").'
            ) from None


def read_text_dataset(
    path: str | Path,
    text_column: str = "text",
    label_column: str | None = "label",
    fmt: str | None = None,
    require_labels: bool = False,
) -> TextDataset:
    """Read a text dataset; labels are optional unless ``require_labels``."""
    file = Path(path)
    if file.is_dir():
        raise DataError(f"Data file {file} is a folder; pass a .tsv, .csv or .jsonl file.")
    if not file.is_file():
        raise DataError(f"Data file {file} does not exist.")
    kind = _format_of(file, fmt)
    try:
        if kind == "jsonl":
            texts, labels = _read_jsonl(file, text_column, label_column)
        else:
            texts, labels = _read_delimited(file, kind, text_column, label_column)
    except UnicodeDecodeError as exc:
        line = _line_of_offset(file, exc.start)
        raise DataError(
            f"{file}, line {line}: not UTF-8 text ({exc.reason} at byte {exc.start}); re-save it as UTF-8."
        ) from None
    except OSError as exc:
        raise DataError(f"Cannot read data file {file}: {exc.strerror or exc}.") from None
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
                + ("A TAB inside a text splits it; remove it." if kind == "tsv" else
                   "Quote fields that hold commas, and check that every quote is closed.")
            )  # fmt: skip
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
    # Decoded whole, so that a decoding error's offset is the file's; split on "\n" only, as JSON Lines does.
    for line_no, line in enumerate(file.read_text(encoding="utf-8-sig").split("\n"), start=1):
        if not line.strip():
            continue
        record = _json_line(file, line_no, line)
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
            labels.append(_label_text(file, line_no, record[label_column]))
    return texts, (labels if labelled else None)


_ONE_PER_LINE = 'edgekit reads JSON Lines: one object per line, e.g. {"text": "...", "label": "..."}.'


def _json_line(file: Path, line_no: int, line: str) -> object:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        hint = f" {_ONE_PER_LINE}" if line_no == 1 or line.strip() in "[]{}" else ""
        raise DataError(f"{file}, line {line_no}: not valid JSON ({exc.msg}).{hint}") from None
    except (ValueError, RecursionError) as exc:  # an integer too long to convert; nesting too deep
        raise DataError(f"{file}, line {line_no}: JSON that cannot be read ({type(exc).__name__}).") from None
    if isinstance(record, list):
        raise DataError(f"{file}, line {line_no}: a JSON array, not an object. {_ONE_PER_LINE}")
    return record


def _label_text(file: Path, line_no: int, value: object) -> str:
    if isinstance(value, (dict, list)):
        raise DataError(f"{file}, line {line_no}: the label is a JSON {type(value).__name__}; use a string or number.")
    return str(value).strip()


def _line_of_offset(file: Path, offset: int) -> int:
    """The 1-based line holding byte ``offset`` (for a decode error, which knows only the offset)."""
    try:
        with file.open("rb") as handle:
            return handle.read(offset).count(b"\n") + 1
    except OSError:
        return 0
