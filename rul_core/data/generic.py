"""Generic reader: any machine, any rate, any channel count (SPEC §1).

A run folder holds ``run.json`` and one file per snapshot (``.csv``, ``.parquet`` or ``.npy``),
ordered naturally by name. ``run.json``::

    {"fs": 25600, "rpm": 1800, "load_n": 4000, "channels": ["x", "y"],
     "name": "pump_3", "interval_s": 10}

``fs`` (Hz, > 0), ``rpm`` (>= 0) and ``channels`` (non-empty list of distinct names) are
required; ``load_n`` defaults to 0, ``name`` to the folder name, ``interval_s`` (seconds
between snapshot starts) to the snapshot duration (samples / fs). Other keys are reported as
unknown (a warning) and ignored. Timestamps are ``interval_s`` times the file number counted
from the first file (the position in natural order when names carry no distinct increasing
numbers).

CSV: ``,``, ``;`` or tab separated (with ``;`` or tab, decimal commas are read as points);
quotes around cells are dropped; an optional header row of column names (columns are then
picked by the channel names, in ``channels`` order, or taken in order with a warning when the
names differ and the count matches); without a header there must be exactly one column per
channel. Parquet: columns named like the channels, or exactly one per channel.
NPY: (samples,) for one channel or (samples, channels); numeric, no pickles.
A dataset is one run folder or a folder of run folders.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rul_core.data.csvparse import (
    CsvItem,
    decimal_points,
    detect_separator,
    first_line,
    is_numeric_cell,
    show_cell,
    split_header,
    storable,
    strip_bom,
    value_fault,
)
from rul_core.data.natural import file_number, natural_sorted
from rul_core.data.reader import FileSelection, RunReader
from rul_core.data.run import Condition, LoadReport, Run
from rul_core.data.snapshots import ParsedSnapshot, assemble, read_csv_files
from rul_core.errors import Cancelled, DataFormatError
from rul_core.progress import CancelToken, check

META_NAME = "run.json"
SNAPSHOT_SUFFIXES = (".csv", ".parquet", ".npy")
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


def parse_meta(path: Path, data: bytes) -> dict[str, Any]:
    """Validated run.json content; DataFormatError naming the field otherwise."""
    data = strip_bom(data)  # Windows editors write one
    try:
        meta = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, "UTF-8 JSON text", f"byte 0x{data[exc.start]:02x}") from None
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
    path: str, available: list[str], channels: list[str], by_order: dict[str, list[str]]
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
        f"{len(channels)} columns)", f"columns {available[:10]}", line=1,
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


class GenericReader(RunReader):
    """Reader for generic run folders (run.json + snapshot files)."""

    layout = "generic"
    description = "generic (a folder with run.json and per-snapshot .csv/.parquet/.npy files)"
    version = 2  # 2: run.json BOM, decimal commas, quoted numbers, float32 range

    def claims(self, names: list[str]) -> bool:
        """A folder holding run.json."""
        return META_NAME in names

    def select(self, run_dir: Path, names: list[str], options: dict[str, Any]) -> FileSelection:
        """run.json first, then snapshot files in natural order."""
        selection = FileSelection(data_files=[META_NAME])
        for name in natural_sorted(names):
            if name == META_NAME:
                continue
            if name.lower().endswith(SNAPSHOT_SUFFIXES):
                selection.data_files.append(name)
            else:
                selection.left_out[name] = (
                    f"{run_dir / name}: expected a snapshot file (.csv, .parquet or .npy) "
                    f"next to run.json, found {name!r}"
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
        meta_path = run_dir / META_NAME
        files = [str(run_dir / n) for n in selection.data_files if n != META_NAME]
        try:
            meta = parse_meta(meta_path, meta_path.read_bytes())
        except (DataFormatError, OSError) as exc:
            reason = str(exc) if isinstance(exc, DataFormatError) else (
                f"{meta_path}: expected a readable file, found {exc.strerror}"
            )
            report.skip(meta_path, reason)
            for path in files:
                report.skip(path, f"{path}: not read because {META_NAME} is invalid ({reason})")
            return None
        report.used.append(str(meta_path))
        if meta["unknown"]:
            report.warnings.append(unknown_fields_warning(meta_path, meta["unknown"]))
        channels: list[str] = meta["channels"]
        columns: dict[str, list[int]] = {}
        by_order: dict[str, list[str]] = {}
        n = len(channels)

        def make_item(path: str, data: bytes) -> CsvItem:
            line = first_line(data)
            sep = detect_separator(line)
            cells = [c.strip().strip(b'"') for c in line.split(sep.encode())]
            # a header has no number in it; a first row with one bad cell is data, so the
            # parser names that cell instead of taking the row for column names
            header = bool(line) and not any(
                is_numeric_cell(decimal_points(c, sep)) for c in cells
            )
            if len(cells) != n and (not header or len(cells) == 1):
                raise DataFormatError(
                    path, f"{n} column(s) separated by ',', ';' or tab, one per channel of "
                    f"run.json {channels}", f"{len(cells)} column(s)"
                    + (f" separated by {sep!r}" if len(cells) > 1 else f": {show_cell(line)}"),
                    line=1,
                )
            if header:
                names = [c.decode("utf-8", "replace") for c in cells]
                columns[path] = _pick_columns(path, names, channels, by_order)
                data = split_header(data, 1)
            else:
                columns[path] = list(range(n))
            # quoted numbers and decimal commas (0,5;1,2), as spreadsheets export them
            body = decimal_points(data.replace(b'"', b""), sep)
            return CsvItem(path, body, sep, len(cells), skip_lines=int(header))

        parsed: list[ParsedSnapshot] = []
        csv_files = [p for p in files if p.lower().endswith(".csv")]
        csv_values = dict(read_csv_files(csv_files, make_item, report, tick, cancel))
        for path in files:
            if path in csv_values:
                values = csv_values[path][:, columns[path]]
            elif path.lower().endswith(".csv"):
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
