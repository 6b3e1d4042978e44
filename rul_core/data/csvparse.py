"""Vectorised parsing of headerless numeric CSV text, with exact error locations.

Fast path: many files with the same separator and column count are joined into one buffer
and parsed by one ``pyarrow.csv`` call (C++, no per-line Python); the rows are split back per
file using each file's newline count. Files whose cheap structural counts (rows, separators)
do not add up, or whose part of the batch holds NaN/inf or values beyond float32 range (runs
hold float32 samples), or every file of a batch that the
C parser rejects, go to :func:`diagnose`, a per-line reader used only for those files. It is
the reference: it either returns the same values or raises :class:`DataFormatError` naming
the file, the 1-based line and column, what was expected and what was found.

Text preparation for readers that take what other tools write (the generic layout): decoding
UTF-16/UTF-32 (:func:`to_utf8`), sniffing the separator of a row (:func:`sniff_separator`),
squeezing runs of spaces/tabs to one space (:func:`squeeze_whitespace`, the separator
:data:`WHITESPACE`) and dropping a trailing separator (:func:`strip_trailing_separator`);
all keep line breaks, so line numbers in messages stay those of the file.
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
WHITESPACE = " "  # a CsvItem separator: runs of spaces/tabs, squeezed to one space beforehand
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
# which of the first 4 bytes are NUL -> the encoding of text starting with ASCII (RFC 4627)
_NUL_PATTERNS = {(True, True, True, False): "utf-32-be", (False, True, True, True): "utf-32-le",
                 (True, False, True, False): "utf-16-be", (False, True, False, True): "utf-16-le"}


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


def text_encoding(data: bytes) -> tuple[str, int]:
    """The encoding of text ``data`` (a Python codec name) and the length of its byte-order
    mark: from the mark, else from which of the first 4 bytes are NUL (UTF-16/32 without a
    mark; numeric CSV and JSON start with ASCII), else UTF-8."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    head = data[:4]
    if len(head) == 4 and b"\x00" in head:
        nul = (head[0] == 0, head[1] == 0, head[2] == 0, head[3] == 0)
        return _NUL_PATTERNS.get(nul, "utf-8"), 0
    return "utf-8", 0


def encoding_label(encoding: str, bom: int) -> str:
    """``utf-16-le`` -> ``UTF-16LE text (as its byte-order mark says)``, for messages."""
    name = encoding.upper().replace("-LE", "LE").replace("-BE", "BE")
    return f"{name} text (as its {'byte-order mark says' if bom else 'NUL bytes suggest'})"


def to_utf8(data: bytes, path: str) -> bytes:
    """``data`` as UTF-8 without a byte-order mark: UTF-16/UTF-32 text (told by its mark or
    by its NUL bytes) is transcoded; line breaks, hence line numbers, are kept.
    DataFormatError naming the file for binary data or bytes invalid in the encoding found."""
    encoding, bom = text_encoding(data)
    if encoding == "utf-8":
        nul = data.find(b"\x00", 0, 65536)
        if nul >= 0:  # never in UTF-8 text
            raise DataFormatError(
                path, "a text file of numbers (UTF-8, or UTF-16/UTF-32)",
                f"binary data (a NUL byte at byte {nul})",
            )
        return data[bom:]
    try:
        return data[bom:].decode(encoding).encode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            path, encoding_label(encoding, bom),
            f"an invalid sequence at byte {exc.start + bom} ({exc.reason})",
        ) from None


def sep_label(sep: str) -> str:
    """A separator for messages: ``','``, ``';'``, ``'\\t'`` or "spaces/tabs"."""
    return "spaces/tabs" if sep == WHITESPACE else repr(sep)


def _has_inner_space(cell: bytes) -> bool:
    return any(ch in cell.strip() for ch in (b" ", b"\t"))


def _without_trailing_empty(cells: list[bytes]) -> list[bytes]:
    return cells[:-1] if len(cells) > 1 and not cells[-1].strip() else cells


def header_separator(line: bytes) -> str:
    """The separator to split a possible header row at: ``;`` or tab (the more frequent),
    else ``,``, else whitespace between words, else ``,`` (one column)."""
    line = line.rstrip(b"\r")
    sep = detect_separator(line)
    if sep != "," or b"," in line:
        return sep
    return WHITESPACE if _has_inner_space(line) else ","


def sniff_separator(line: bytes) -> str:
    """The separator of a data row. ``;`` or tab as :func:`header_separator`, but a tab row
    with empty cells (leading, or runs of tabs as alignment) is whitespace separated; a comma
    row is whitespace separated when a cell holds a space (``0,5 1,2``: decimal commas);
    numbers separated by spaces alone are whitespace separated; one number is ``,``.
    A trailing empty cell (``1,2,``) is ignored here."""
    line = line.replace(b'"', b"").rstrip(b"\r")
    sep = header_separator(line)
    if sep == "\t":
        cells = _without_trailing_empty(line.split(b"\t"))
        return "\t" if all(c.strip() for c in cells) else WHITESPACE
    if sep == ",":
        cells = _without_trailing_empty(line.split(b","))
        return WHITESPACE if any(_has_inner_space(c) for c in cells) else ","
    return sep


def split_cells(line: bytes, sep: str) -> list[bytes]:
    """The cells of one line, stripped of spaces and quotes (whitespace: the words)."""
    line = line.rstrip(b"\r")
    parts = line.split() if sep == WHITESPACE else line.split(sep.encode())
    return [c.strip().strip(b'"') for c in parts]


_NOT_SQUEEZED = (b"  ", b"\t", b"\n ", b" \n", b" \r")


def _without_blank_end(data: bytes) -> bytes:
    """``data`` without its trailing blank lines; unlike :func:`_trim` the last row keeps its
    own trailing spaces and tabs (a trailing tab separator)."""
    end = data.find(b"\n", len(data.rstrip(b"\r\n\t ")))
    return data if end < 0 else data[:end].rstrip(b"\r")


def squeeze_whitespace(data: bytes) -> bytes:
    """Whitespace-separated text with one space between cells and none at line ends (line
    breaks kept), for the one-character-separator parser."""
    if not (data.startswith(b" ") or any(s in data for s in _NOT_SQUEEZED)):
        return data  # numpy.savetxt's default output already is
    data = data.replace(b"\t", b" ")
    while b"  " in data:  # halves every run of spaces (faster than a regular expression)
        data = data.replace(b"  ", b" ")
    # now a line starts or ends with one space at most
    data = data.replace(b"\n ", b"\n").replace(b" \n", b"\n").replace(b" \r", b"\r")
    return data.removeprefix(b" ").removesuffix(b" ")


def strip_trailing_separator(data: bytes, sep: str, path: str, first_line_no: int) -> bytes:
    """Rows without the trailing separator (an empty last column) that every one of them must
    end with; DataFormatError naming the first row without it."""
    pattern = re.compile(re.escape(sep.encode()) + rb"[ \t]*(?=\r?$)", re.MULTILINE)
    data = _without_blank_end(data)
    eol = b"\r\n" if first_line(data) + b"\r\n" == data[: data.find(b"\n") + 1] else b"\n"
    end = sep.encode() + eol
    if data.endswith(sep.encode()) and data.count(end) == _row_count(data) - 1:
        return data.replace(end, eol)[:-1]  # every line ends exactly so: the quick way
    stripped, count = pattern.subn(b"", data)
    if count == _row_count(data):
        return stripped
    for i, raw in enumerate(data.split(b"\n")):
        line = raw.rstrip(b"\r")
        if pattern.search(line) is None:
            raise DataFormatError(
                path, f"a trailing {sep!r} (an empty last column) on every line, as on line "
                f"{first_line_no}", "an empty line" if not line.strip() else
                f"none: {show_cell(line)}", line=first_line_no + i,
            )
    return stripped  # not reached: count < rows means a row without it


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
                    item.path, f"{item.ncols} numbers separated by {sep_label(item.sep)}",
                    "an empty line", line=line_no,
                )
            raise DataFormatError(
                item.path,
                f"{item.ncols} columns separated by {sep_label(item.sep)}",
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
