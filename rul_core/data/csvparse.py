"""Vectorised parsing of headerless numeric CSV text, with exact error locations.

Fast path: many files with the same separator and column count are joined into one buffer
and parsed by one ``pyarrow.csv`` call (C++, no per-line Python); the rows are split back per
file using each file's newline count. Files whose cheap structural counts (rows, separators)
do not add up, or whose part of the batch holds NaN/inf or values beyond float32 range (runs
hold float32 samples), or every file of a batch that the
C parser rejects, go to :func:`diagnose`, a per-line reader used only for those files. It is
the reference: it either returns the same values or raises :class:`DataFormatError` naming
the file, the 1-based line and column, what was expected and what was found.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rul_core.errors import DataFormatError

_NUMBER = re.compile(rb"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")
_NONFINITE_WORDS = {b"nan", b"inf", b"infinity", b"-inf", b"+inf", b"-infinity", b"+infinity",
                    b"-nan", b"+nan"}
FLOAT32_MAX = float(np.finfo(np.float32).max)  # runs hold float32 samples
BATCH_BYTES = 32 * 1024**2  # join at most this much text per pyarrow call
SEPARATORS = (",", ";", "\t")


@dataclass
class CsvItem:
    """One file's text to parse: ``data`` holds the rows after ``skip_lines`` header lines."""

    path: str
    data: bytes
    sep: str
    ncols: int
    skip_lines: int = 0


def strip_bom(data: bytes) -> bytes:
    """``data`` without a leading UTF-8 byte-order mark."""
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def first_line(data: bytes) -> bytes:
    """The first line of ``data`` without its line ending."""
    end = data.find(b"\n")
    line = data if end < 0 else data[:end]
    return line.rstrip(b"\r")


def split_header(data: bytes, n_lines: int = 1) -> bytes:
    """``data`` without its first ``n_lines`` lines."""
    pos = 0
    for _ in range(n_lines):
        nxt = data.find(b"\n", pos)
        if nxt < 0:
            return b""
        pos = nxt + 1
    return data[pos:]


def detect_separator(line: bytes, candidates: Sequence[str] = SEPARATORS) -> str:
    """The candidate separator occurring most often in ``line``, a comma only when no other
    occurs (``0,5;1,2`` is ``;`` with decimal commas); ``,`` when none does."""
    best, best_count = ",", 0
    for sep in candidates:
        if sep == ",":
            continue
        count = line.count(sep.encode())
        if count > best_count:
            best, best_count = sep, count
    return best


def decimal_points(data: bytes, sep: str) -> bytes:
    """``data`` with its decimal commas as points when the separator is not a comma and no
    point occurs (a file holding both is left as it is, for the parser to report)."""
    if sep != "," and b"," in data and b"." not in data:
        return data.replace(b",", b".")
    return data


def is_numeric_cell(cell: bytes) -> bool:
    """True when ``cell`` is a plain decimal number (no NaN/inf words, no underscores)."""
    return _NUMBER.fullmatch(cell) is not None


def storable(values: np.ndarray) -> np.ndarray:
    """True where a value is finite and within float32 range (what a Run can hold)."""
    return np.abs(values) <= FLOAT32_MAX


def value_fault(value: float) -> str | None:
    """What a sample value should have been (for a message), or None when it is storable."""
    if np.isnan(value):
        return "a finite number"
    if abs(value) > FLOAT32_MAX:  # inf too
        return (f"a finite number between -{FLOAT32_MAX:.4g} and {FLOAT32_MAX:.4g} "
                "(samples are kept as float32)")
    return None


def show_cell(cell: bytes, limit: int = 40) -> str:
    text = cell.decode("utf-8", errors="backslashreplace")
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


def _trim(data: bytes) -> bytes:
    """Drop trailing blank lines/whitespace at the end of a file (not inside it)."""
    return data.rstrip(b"\r\n\t ")


def diagnose(item: CsvItem) -> np.ndarray:
    """Reference per-line parser: float64 (rows, ncols) or a DataFormatError at the first fault."""
    data = _trim(item.data)
    sep = item.sep.encode()
    if not data:
        found = "an empty file" if item.skip_lines == 0 else "no data rows after the header"
        raise DataFormatError(item.path, f"at least one row of {item.ncols} numbers", found)
    lines = data.split(b"\n")
    out = np.empty((len(lines), item.ncols), dtype=np.float64)
    for i, raw in enumerate(lines):
        line_no = i + 1 + item.skip_lines
        line = raw.rstrip(b"\r")
        cells = line.split(sep)
        if len(cells) != item.ncols:
            if not line.strip():
                raise DataFormatError(
                    item.path, f"{item.ncols} numbers separated by {item.sep!r}", "an empty line",
                    line=line_no,
                )
            raise DataFormatError(
                item.path,
                f"{item.ncols} columns separated by {item.sep!r}",
                f"{len(cells)} columns",
                line=line_no,
            )
        for j, cell in enumerate(cells):
            if not is_numeric_cell(cell):
                word = cell.strip().lower()
                expected = "a finite number" if word in _NONFINITE_WORDS else "a number"
                raise DataFormatError(
                    item.path, expected, show_cell(cell), line=line_no, column=j + 1
                )
            value = float(cell)
            fault = value_fault(value)
            if fault is not None:
                raise DataFormatError(item.path, fault, show_cell(cell), line=line_no, column=j + 1)
            out[i, j] = value
    return out


def _row_count(data: bytes) -> int:
    return data.count(b"\n") + 1 if data else 0


def _arrow_parse(buffer: bytes, sep: str, ncols: int) -> np.ndarray:
    """One pyarrow parse of joined rows; raises on any structural or conversion problem."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(ncols)]
    table = pacsv.read_csv(
        io.BytesIO(buffer),
        read_options=pacsv.ReadOptions(column_names=names, block_size=8 * 1024**2),
        parse_options=pacsv.ParseOptions(
            delimiter=sep, quote_char=False, ignore_empty_lines=False, newlines_in_values=False
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.float64() for n in names},
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    out = np.empty((table.num_rows, ncols), dtype=np.float64)
    for j in range(ncols):
        column = table.column(j)
        if column.null_count:
            raise ValueError("null cell")
        out[:, j] = column.to_numpy()
    return out


def parse_items(items: Sequence[CsvItem]) -> list[np.ndarray | DataFormatError]:
    """Parse every item; each result is a float64 (rows, ncols) array or the file's error."""
    results: list[np.ndarray | DataFormatError | None] = [None] * len(items)
    groups: dict[tuple[str, int], list[int]] = {}
    trimmed: list[bytes] = []
    rows: list[int] = []
    for idx, item in enumerate(items):
        data = _trim(item.data)
        trimmed.append(data)
        n = _row_count(data)
        rows.append(n)
        sep = item.sep.encode()
        # Cheap structural screen: a well-formed file has exactly (ncols-1) separators a row.
        if n == 0 or data.count(sep) != n * (item.ncols - 1):
            results[idx] = _diagnose_to_result(item)
        else:
            groups.setdefault((item.sep, item.ncols), []).append(idx)
    for (sep, ncols), members in groups.items():
        batch: list[int] = []
        size = 0
        for idx in members:
            batch.append(idx)
            size += len(trimmed[idx])
            if size >= BATCH_BYTES:
                _parse_batch(batch, items, trimmed, rows, sep, ncols, results)
                batch, size = [], 0
        if batch:
            _parse_batch(batch, items, trimmed, rows, sep, ncols, results)
    return [r if r is not None else DataFormatError(items[i].path, "a parsable file")
            for i, r in enumerate(results)]


def _diagnose_to_result(item: CsvItem) -> np.ndarray | DataFormatError:
    try:
        return diagnose(item)
    except DataFormatError as exc:
        return exc


def _parse_batch(
    batch: list[int],
    items: Sequence[CsvItem],
    trimmed: list[bytes],
    rows: list[int],
    sep: str,
    ncols: int,
    results: list[np.ndarray | DataFormatError | None],
) -> None:
    buffer = b"\n".join(trimmed[i] for i in batch) + b"\n"
    try:
        values = _arrow_parse(buffer, sep, ncols)
    except Exception:  # pyarrow raises several types; the reference parser decides per file
        if len(batch) == 1:
            results[batch[0]] = _diagnose_to_result(items[batch[0]])
            return
        half = len(batch) // 2
        _parse_batch(batch[:half], items, trimmed, rows, sep, ncols, results)
        _parse_batch(batch[half:], items, trimmed, rows, sep, ncols, results)
        return
    if values.shape[0] != sum(rows[i] for i in batch):
        for i in batch:
            results[i] = _diagnose_to_result(items[i])
        return
    start = 0
    for i in batch:
        part = values[start : start + rows[i]]
        start += rows[i]
        if storable(part).all():
            results[i] = part
        else:
            results[i] = _diagnose_to_result(items[i])


def parse_numeric_csv(
    data: bytes, path: str, *, sep: str | None = None, ncols: int, skip_lines: int = 0
) -> np.ndarray:
    """Parse one headerless numeric CSV (after ``skip_lines`` lines already removed)."""
    data = strip_bom(data)
    if sep is None:
        sep = detect_separator(first_line(data))
    result = parse_items([CsvItem(path, data, sep, ncols, skip_lines)])[0]
    if isinstance(result, DataFormatError):
        raise result
    return result
