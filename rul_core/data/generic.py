"""Generic reader: any machine, any rate, any channel count (SPEC §1).

A run folder holds ``run.json`` (any capitalisation: ``RUN.JSON``; two spellings in one
folder are ambiguous and skip the run) and one file per snapshot (``.csv``, ``.txt``,
``.tsv``, ``.parquet`` or ``.npy``), ordered naturally by name. ``run.json`` (UTF-8, a
byte-order mark is fine, or UTF-16/UTF-32)::

    {"fs": 25600, "rpm": 1800, "load_n": 4000, "channels": ["x", "y"],
     "name": "pump_3", "interval_s": 10}

``fs`` (Hz, > 0), ``rpm`` (>= 0) and ``channels`` (non-empty list of distinct names) are
required; ``load_n`` defaults to 0, ``name`` to the folder name, ``interval_s`` (seconds
between snapshot starts) to the snapshot duration (samples / fs). Other keys are reported as
unknown (a warning) and ignored. Timestamps are ``interval_s`` times the file number counted
from the first file (the position in natural order when names carry no distinct increasing
numbers).

Text snapshots (:func:`csv_item`): UTF-8 or UTF-16/UTF-32; ``,``, ``;``, tab or runs of
spaces/tabs between the columns, sniffed per file from its first row of numbers (with ``;``,
tab or spaces, decimal commas are read as points); a trailing separator on every line (an
empty last column) is dropped; leading blank lines, ``#`` comment lines and Excel's ``sep=;``
line are skipped (a last comment naming every channel, as ``numpy.savetxt(header="x y")``
writes, picks the columns); quotes around cells are dropped; an optional header row of column
names (columns are then picked by the channel names, in ``channels`` order, or taken in order
with a warning when the names differ and the count matches); without names there must be
exactly one column per channel. Parquet: columns named like the channels, or exactly one per
channel. NPY: (samples,) for one channel or (samples, channels); numeric, no pickles.
A dataset is one run folder or a folder of run folders.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rul_core.data.csvparse import (
    SEPARATORS,
    WHITESPACE,
    CsvItem,
    decimal_points,
    encoding_label,
    first_line,
    header_separator,
    is_numeric_cell,
    sep_label,
    show_cell,
    sniff_separator,
    split_cells,
    split_header,
    squeeze_whitespace,
    storable,
    strip_trailing_separator,
    text_encoding,
    to_utf8,
    value_fault,
)
from rul_core.data.natural import file_number, natural_sorted
from rul_core.data.reader import FileSelection, RunReader
from rul_core.data.run import Condition, LoadReport, Run
from rul_core.data.snapshots import ParsedSnapshot, assemble, read_csv_files
from rul_core.errors import Cancelled, DataFormatError
from rul_core.progress import CancelToken, check

META_NAME = "run.json"
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")  # read as delimited or whitespace-separated text
SNAPSHOT_SUFFIXES = (*TEXT_SUFFIXES, ".parquet", ".npy")
META_FIELDS = ("fs", "rpm", "load_n", "channels", "name", "interval_s")


def unknown_fields(meta: dict[str, Any]) -> list[str]:
    """run.json keys that are none of :data:`META_FIELDS` (misspellings, other tools' keys)."""
    return [str(k) for k in meta if k not in META_FIELDS]


def unknown_fields_warning(path: Path, unknown: list[str]) -> str:
    """The report warning for run.json fields that are read by nothing."""
    return str(DataFormatError(
        path, f"only the fields {', '.join(META_FIELDS)}",
        f"unknown field(s) {', '.join(map(repr, unknown))}, ignored (misspelled?)",
    ))


#: run.json as Windows Notepad saves it while Explorer hides known extensions: read, with a
#: warning to rename it.
HIDDEN_TXT_META = META_NAME + ".txt"


def is_meta_name(name: str) -> bool:
    """True for ``run.json`` in any capitalisation (``RUN.JSON``, ``Run.json``), and for
    ``run.json.txt`` (:data:`HIDDEN_TXT_META`)."""
    return name.lower() in (META_NAME, HIDDEN_TXT_META)


def _decode_meta(path: Path, data: bytes) -> str:
    """run.json's text: UTF-8, or UTF-16/UTF-32 (Windows PowerShell writes UTF-16), told by a
    byte-order mark or the NUL bytes; DataFormatError naming where it is neither."""
    encoding, bom = text_encoding(data)
    try:
        return data[bom:].decode(encoding)
    except UnicodeDecodeError as exc:
        pos = exc.start + bom
        line = data.count(b"\n", 0, pos) + 1
        column = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
        if encoding == "utf-8":
            found = (f"byte 0x{data[pos]:02x}, not UTF-8 (saved in a legacy encoding such as "
                     "Windows-1252? save it as UTF-8)")
            expected = "JSON text in UTF-8 (or UTF-16/UTF-32 with a byte-order mark)"
        else:
            found = f"an invalid sequence ({exc.reason})"
            expected = f"JSON in {encoding_label(encoding, bom)}"
        raise DataFormatError(path, expected, found, line=line, column=column) from None


def parse_meta(path: Path, data: bytes) -> dict[str, Any]:
    """Validated run.json content; DataFormatError naming the field otherwise."""
    text = _decode_meta(path, data)
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            path, "valid JSON", exc.msg, line=exc.lineno, column=exc.colno
        ) from None
    except (ValueError, RecursionError) as exc:  # a number too long, nesting too deep
        raise DataFormatError(path, "a small JSON object", str(exc)[:120]) from None
    if not isinstance(meta, dict):
        raise DataFormatError(path, "a JSON object with fs, rpm and channels", type(meta).__name__)

    def found(key: str) -> str:
        """The field's value for a message; for an absent one, the unknown keys it may be."""
        if key in meta:
            return repr(meta[key])
        unknown = unknown_fields(meta)
        return "nothing" + (f" (unknown field(s) {', '.join(map(repr, unknown))}: misspelled?)"
                            if unknown else "")

    def number(key: str, default: float | None, minimum: float, strict: bool) -> float:
        value = meta.get(key, default)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            try:
                value = float(value)
            except OverflowError:  # an integer beyond float range
                value = math.inf
            ok = math.isfinite(value) and (value > minimum if strict else value >= minimum)
        if not ok:
            bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
            raise DataFormatError(path, f"field {key!r}: a number {bound}", found(key))
        return float(value)

    fs = number("fs", None, 0.0, strict=True)
    rpm = number("rpm", None, 0.0, strict=False)
    load_n = number("load_n", 0.0, 0.0, strict=False)
    channels = meta.get("channels")
    if (
        not isinstance(channels, list)
        or not channels
        or not all(isinstance(c, str) and c.strip() for c in channels)
        or len({c.strip() for c in channels}) != len(channels)
    ):
        count = isinstance(channels, int) and not isinstance(channels, bool)
        raise DataFormatError(
            path, "field 'channels': a non-empty list of distinct channel names",
            found("channels") + (' (a count; list the names instead, e.g. ["x", "y"])'
                                 if count else ""),
        )
    name = meta.get("name")
    if name is not None and not (isinstance(name, str) and name.strip()):
        raise DataFormatError(path, "field 'name': a non-empty string", repr(name))
    interval = None
    if "interval_s" in meta:
        interval = number("interval_s", None, 0.0, strict=True)
    return {
        "fs": fs, "rpm": rpm, "load_n": load_n, "channels": [c.strip() for c in channels],
        "name": name.strip() if isinstance(name, str) else None, "interval_s": interval,
        "unknown": unknown_fields(meta),
    }


def _pick_columns(
    path: str, available: list[str], channels: list[str], by_order: dict[str, list[str]],
    line: int = 1,
) -> list[int]:
    """Column indices of ``channels`` among the file's column names: by name, else (the same
    count) in order, recording the file in ``by_order`` for a warning."""
    if all(c in available for c in channels):
        return [available.index(c) for c in channels]
    if len(available) == len(channels):
        by_order[path] = available
        return list(range(len(channels)))
    raise DataFormatError(
        path, f"columns named like the channels of run.json {channels} (or exactly "
        f"{len(channels)} columns)", f"columns {available[:10]}", line=line,
    )


def by_order_warning(run_dir: Path, by_order: dict[str, list[str]], channels: list[str]) -> str:
    """The report warning for files whose column names are not the channel names."""
    first = next(iter(by_order))
    return (f"{run_dir}: {len(by_order)} snapshot file(s) (e.g. {Path(first).name}) name their "
            f"columns {by_order[first][:10]}, not the channels of run.json {channels}; their "
            f"columns were taken in order as {channels}")


def read_parquet(
    path: str, channels: list[str], by_order: dict[str, list[str]] | None = None
) -> np.ndarray:
    """(samples, channels) float64 from a Parquet file (``by_order``: see _pick_columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... on damaged files
        raise DataFormatError(path, "a readable Parquet file", str(exc)[:120]) from None
    names = [str(n) for n in table.column_names]
    idx = _pick_columns(path, names, channels, {} if by_order is None else by_order)
    out = np.empty((table.num_rows, len(idx)), dtype=np.float64)
    for j, k in enumerate(idx):
        column = table.column(k)
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            raise DataFormatError(path, "a numeric column", str(column.type), column=names[k])
        if column.null_count:
            row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataFormatError(path, "a finite number", "null", line=row + 1, column=names[k])
        out[:, j] = column.to_numpy(zero_copy_only=False)
    return out


def read_npy(path: str, n_channels: int) -> np.ndarray:
    """(samples, channels) float64 from an .npy file (no pickles)."""
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:  # ValueError, OSError, EOFError, ... on damaged or pickled files
        raise DataFormatError(path, "a numeric .npy array (no pickles)", str(exc)[:120]) from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise DataFormatError(path, "a numeric array", f"dtype {getattr(array, 'dtype', '?')}")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != n_channels or array.shape[0] == 0:
        raise DataFormatError(
            path, f"an array of shape (samples, {n_channels})", f"shape {array.shape}"
        )
    return array.astype(np.float64)


_EXCEL_SEP = re.compile(rb'"?sep=(.)"?')


def _preamble(path: str, data: bytes) -> tuple[int, bytes | None, str | None]:
    """The leading lines that are not rows: blank lines, ``#`` comments and Excel's
    ``sep=;`` first line. Returns their count, the last comment's text (``numpy.savetxt``
    writes column names as ``# x y``) and the separator a ``sep=`` line names."""
    count, comment, forced = 0, None, None
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        raw = data[pos:end].rstrip(b"\r")
        line = raw.strip()
        excel = _EXCEL_SEP.fullmatch(raw) if count == 0 else None
        if excel is not None:
            forced = excel.group(1).decode("latin-1")
            if forced not in (*SEPARATORS, WHITESPACE):
                raise DataFormatError(path, "a separator ',', ';', tab or space after 'sep='",
                                      repr(forced), line=1)
        elif line.startswith(b"#"):
            comment = line[1:]
        elif line:
            break
        count += 1
        pos = end + 1
    return count, comment, forced


def _count(cells: list[bytes]) -> int:
    """The number of columns, not counting a trailing empty one."""
    return len(cells) - int(len(cells) > 1 and not cells[-1])


def csv_item(
    path: str, data: bytes, channels: list[str], by_order: dict[str, list[str]]
) -> tuple[CsvItem, list[int]]:
    """One generic CSV file's rows to parse and the file columns holding ``channels``.

    Reads UTF-16/32 text as well as UTF-8; skips leading blank and ``#`` comment lines (a
    last comment naming every channel, as ``numpy.savetxt(header="x y")`` writes, picks the
    columns) and Excel's ``sep=`` line; takes an optional header row; sniffs the separator
    from the first row of numbers (``,``, ``;``, tab, or runs of spaces/tabs); drops a
    trailing separator when every line has one. DataFormatError naming the file and line
    when the rows cannot give one column per channel."""
    n = len(channels)
    data = to_utf8(data, path)
    if b"\r" in data and b"\n" not in data:  # classic Mac OS line ends
        data = data.replace(b"\r", b"\n")
    skip, comment, forced = _preamble(path, data)
    body = split_header(data, skip)
    if not body.strip():
        raise DataFormatError(path, f"rows of {n} number(s), one per channel of run.json "
                              f"{channels}", "an empty file" if not data.strip() else
                              f"only {skip} blank or comment line(s)")
    line = first_line(body)
    # a header has no number in it; a first row with one bad cell is data, so the
    # parser names that cell instead of taking the row for column names
    split_at = forced or header_separator(line)
    if split_at == "\t" and sniff_separator(line) == WHITESPACE:  # '\t1.5 2.5': not names
        split_at = WHITESPACE
    header = bool(line.strip()) and not any(
        is_numeric_cell(decimal_points(c, ";")) for c in split_cells(line, split_at)
    )
    header_no = skip + 1
    row_no = header_no + int(header)  # the first row of numbers
    rows = split_header(body, 1) if header else body
    raw_row = first_line(rows)
    sep = forced or sniff_separator(raw_row if raw_row.strip() else line)
    names = split_cells(line, sep) if header else None
    if sep == WHITESPACE:
        rows = squeeze_whitespace(rows)
    cells = split_cells(first_line(rows), sep)
    trailing = sep != WHITESPACE and len(cells) > 1 and not cells[-1]
    if names is not None and _count(names) != _count(cells):  # 'x y' over tab-separated rows
        alt = split_cells(line, header_separator(line))
        names = alt if _count(alt) == _count(cells) else names
    header_trailing = names is not None and len(names) > 1 and not names[-1]
    if names is not None and raw_row.strip() and sep != WHITESPACE and header_trailing != trailing:
        has, lacks, shown = ((row_no, header_no, line) if trailing else
                             (header_no, row_no, raw_row))
        raise DataFormatError(
            path, f"a trailing {sep!r} (an empty last column) on every line, as on line {has}",
            f"none: {show_cell(shown)}", line=lacks,
        )
    if trailing:
        rows = strip_trailing_separator(rows, sep, path, row_no)
        cells = cells[:-1]
        names = names[:-1] if names is not None else None
    if names is None and comment is not None:  # '# x y' naming every channel picks them
        hint = [c.decode("utf-8", "replace") for c in split_cells(comment, sep)]
        hint = hint[:-1] if trailing and hint and not hint[-1] else hint
        if len(hint) == len(cells) and all(c in hint for c in channels):
            names = [c.encode() for c in hint]
    ncols = len(names) if names is not None else len(cells)
    if ncols != n and (names is None or ncols == 1):
        raise DataFormatError(
            path, f"{n} column(s) separated by ',', ';', tab or spaces, one per channel of "
            f"run.json {channels}", f"{ncols} column(s)"
            + (f" separated by {sep_label(sep)}" if ncols > 1 else
               f": {show_cell(raw_row if names is None else line)}"),
            line=row_no if names is None else header_no,
        )
    columns = list(range(n))
    if names is not None:
        columns = _pick_columns(path, [c.decode("utf-8", "replace") for c in names], channels,
                                by_order, line=header_no)
    # quoted numbers and decimal commas (0,5;1,2), as spreadsheets export them
    rows = decimal_points(rows.replace(b'"', b""), sep)
    return CsvItem(path, rows, sep, ncols, skip_lines=row_no - 1), columns


class GenericReader(RunReader):
    """Reader for generic run folders (run.json + snapshot files)."""

    layout = "generic"
    description = ("generic (a folder with run.json and per-snapshot .csv/.txt/.tsv/.parquet/.npy "
                   "files)")
    # 2: run.json BOM, decimal commas, quoted numbers, float32 range
    # 3: whitespace-separated text, a trailing separator on every line, '#' comment and
    #    Excel 'sep=' lines, UTF-16/32 text, RUN.JSON in any capitalisation
    version = 3

    def claims(self, names: list[str]) -> bool:
        """A folder holding run.json (in any capitalisation)."""
        return any(is_meta_name(n) for n in names)

    def select(self, run_dir: Path, names: list[str], options: dict[str, Any]) -> FileSelection:
        """run.json first (every capitalisation present), then snapshot files in natural
        order."""
        metas = [n for n in sorted(names) if is_meta_name(n)]
        selection = FileSelection(data_files=list(metas))
        for name in natural_sorted(names):
            if is_meta_name(name):
                continue
            if name.lower().endswith(SNAPSHOT_SUFFIXES):
                selection.data_files.append(name)
            else:
                selection.left_out[name] = (
                    f"{run_dir / name}: expected a snapshot file (.csv, .txt, .tsv, .parquet or "
                    ".npy) "
                    f"next to {metas[0] if metas else META_NAME}, found {name!r}"
                )
        return selection

    def read(
        self,
        run_dir: Path,
        selection: FileSelection,
        report: LoadReport,
        options: dict[str, Any],
        tick: Callable[[int], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> Run | None:
        """Validate run.json, parse every snapshot file, assemble the run."""
        metas = [n for n in selection.data_files if is_meta_name(n)]
        files = [str(run_dir / n) for n in selection.data_files if not is_meta_name(n)]
        meta_path = run_dir / (metas[0] if metas else META_NAME)
        if len(metas) > 1:  # a case-sensitive file system (or an archive) holds both
            both = ", ".join(map(repr, metas))
            for name in metas:
                others = ", ".join(repr(m) for m in metas if m != name)
                report.skip(run_dir / name, str(DataFormatError(
                    run_dir / name, f"the only {META_NAME} of its folder",
                    f"also {others}, the same name in other capitalisation (which one holds "
                    "the run's settings is ambiguous: keep one)",
                )))
            for path in files:
                report.skip(path, f"{path}: not read because the folder holds {both}, "
                                  f"ambiguous (keep one {META_NAME})")
            return None
        try:
            meta = parse_meta(meta_path, meta_path.read_bytes())
        except (DataFormatError, OSError) as exc:
            reason = str(exc) if isinstance(exc, DataFormatError) else (
                f"{meta_path}: expected a readable file, found {exc.strerror}"
            )
            report.skip(meta_path, reason)
            for path in files:
                report.skip(path, f"{path}: not read because {meta_path.name} is invalid "
                                  f"({reason})")
            return None
        report.used.append(str(meta_path))
        if meta_path.name.lower() == HIDDEN_TXT_META:
            report.warnings.append(f"{meta_path}: read as the run's {META_NAME} (Windows hides "
                                   f"the .txt it was saved with); rename it to {META_NAME}")
        if meta["unknown"]:
            report.warnings.append(unknown_fields_warning(meta_path, meta["unknown"]))
        channels: list[str] = meta["channels"]
        columns: dict[str, list[int]] = {}
        by_order: dict[str, list[str]] = {}

        def make_item(path: str, data: bytes) -> CsvItem:
            item, columns[path] = csv_item(path, data, channels, by_order)
            return item

        parsed: list[ParsedSnapshot] = []
        csv_files = [p for p in files if p.lower().endswith(TEXT_SUFFIXES)]
        csv_values = dict(read_csv_files(csv_files, make_item, report, tick, cancel))
        for path in files:
            if path in csv_values:
                values = csv_values[path][:, columns[path]]
            elif path.lower().endswith(TEXT_SUFFIXES):
                continue  # already skipped with its reason
            else:
                check(cancel)
                try:
                    if path.lower().endswith(".npy"):
                        values = read_npy(path, len(channels))
                    else:
                        values = read_parquet(path, channels, by_order)
                    if values.shape[0] == 0:
                        raise DataFormatError(path, "at least one row", "no rows")
                    bad = np.argwhere(~storable(values))
                    if bad.size:
                        r, c = bad[0]
                        raise DataFormatError(
                            path, value_fault(values[r, c]) or "", f"{values[r, c]}",
                            line=int(r) + 1, column=channels[c],
                        )
                except Cancelled:
                    raise
                except DataFormatError as exc:
                    report.skip(path, str(exc))
                    continue
                finally:
                    if tick is not None:
                        tick(1)
            parsed.append(ParsedSnapshot(path, values, file_number(path)))
        kept_paths = {p.path for p in parsed}  # not the files skipped after their header
        by_order = {p: names for p, names in by_order.items() if p in kept_paths}
        if by_order:
            report.warnings.append(by_order_warning(run_dir, by_order, channels))
        stack, kept = assemble(run_dir.name, parsed, report, channels, list(channels))
        if not kept:
            return None
        interval = meta["interval_s"] or stack.shape[1] / meta["fs"]
        numbers = [p.number for p in kept]
        if all(n is not None for n in numbers) and all(
            b > a for a, b in itertools.pairwise(numbers)  # type: ignore[operator]
        ):
            steps = np.array(numbers, dtype=np.float64) - float(numbers[0])
        else:
            steps = np.arange(len(kept), dtype=np.float64)
        name = meta["name"] or run_dir.name
        return Run(
            name=name,
            snapshots=stack,
            fs=meta["fs"],
            channel_names=list(channels),
            condition=Condition(meta["rpm"], meta["load_n"], ""),
            timestamps=steps * interval,
            source_paths=[p.path for p in kept],
            dataset=run_dir.parent.name,
            layout=self.layout,
        )
