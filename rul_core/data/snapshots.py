"""Turning per-file arrays into one run's snapshot stack, with the run-level checks.

Checks done here (each failure is a :class:`DataFormatError` reason in the report):

- **Length**: every snapshot must have the run's majority row count (ties: the first file's).
- **Constant channel** (policy): a channel that is constant within a snapshot is a sensor
  dropout when it happens in *a minority* of the run's snapshots: those snapshots are skipped
  with a reason. When a channel is constant in at least half of the snapshots it is a dead or
  unplugged sensor for the whole run: the snapshots are kept and the report gets a warning
  (skipping them would drop the run, and the other channels are still good).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rul_core.data.csvparse import CsvItem, parse_items, strip_bom
from rul_core.data.run import LoadReport
from rul_core.errors import DataFormatError
from rul_core.progress import CancelToken, check

NOT_READ = "not read: "  # reason prefix for files left out by choice, not because of a fault


@dataclass
class ParsedSnapshot:
    """One file's samples: ``values`` (samples, channels); ``columns`` 1-based file columns."""

    path: str
    values: np.ndarray
    number: int | None = None
    clock_s: float | None = None


def assemble(
    run_name: str,
    parsed: list[ParsedSnapshot],
    report: LoadReport,
    channel_names: list[str],
    columns: list[int | str],
) -> tuple[np.ndarray, list[ParsedSnapshot]]:
    """Stack the good snapshots as float32 (n, samples, channels); skip the others with reasons.

    ``columns`` names each channel's column in the files (for messages). Returns the stack and
    the snapshots kept, in the order given (already natural order).
    """
    if not parsed:
        return np.empty((0, 0, len(channel_names)), np.float32), []
    lengths = Counter(p.values.shape[0] for p in parsed)
    top = max(lengths.values())
    majority = next(p.values.shape[0] for p in parsed if lengths[p.values.shape[0]] == top)
    same_length: list[ParsedSnapshot] = []
    for p in parsed:
        n = p.values.shape[0]
        if n != majority:
            report.skip(
                p.path,
                str(
                    DataFormatError(
                        p.path,
                        f"{majority} rows (the length of most snapshots of run {run_name})",
                        f"{n} rows",
                    )
                ),
            )
        else:
            same_length.append(p)
    if not same_length:
        return np.empty((0, 0, len(channel_names)), np.float32), []
    stack = np.stack([p.values for p in same_length]).astype(np.float32, copy=False)
    # Constant test on the float32 values the run will hold.
    constant = stack.max(axis=1) == stack.min(axis=1)  # (n, channels)
    n_snap = stack.shape[0]
    dropout_channels = []
    for c, name in enumerate(channel_names):
        count = int(constant[:, c].sum())
        if count == 0:
            continue
        if 2 * count < n_snap:
            dropout_channels.append(c)
        else:
            report.warnings.append(
                f"run {run_name}: channel {name!r} (column {columns[c]}) is constant in "
                f"{count} of {n_snap} snapshots; kept (dead or unplugged sensor?)"
            )
    if not dropout_channels:
        report.used.extend(p.path for p in same_length)
        return stack, same_length
    keep = np.ones(n_snap, dtype=bool)
    for i, p in enumerate(same_length):
        bad = [c for c in dropout_channels if constant[i, c]]
        if not bad:
            continue
        keep[i] = False
        c = bad[0]
        value = float(stack[i, 0, c])
        report.skip(
            p.path,
            str(
                DataFormatError(
                    p.path,
                    f"a varying signal in channel {channel_names[c]!r}",
                    f"the constant value {value:g} in all {majority} rows (sensor dropout?)",
                    column=columns[c],
                )
            ),
        )
    kept = [p for i, p in enumerate(same_length) if keep[i]]
    report.used.extend(p.path for p in kept)
    return stack[keep], kept


def relative_times(clock_s: np.ndarray) -> np.ndarray:
    """Seconds since the first entry, unwrapping midnight roll-overs of a time-of-day clock."""
    clock = np.asarray(clock_s, dtype=np.float64)
    if clock.size == 0:
        return clock
    steps = np.diff(clock)
    wraps = np.concatenate([[0.0], np.cumsum(np.where(steps < -43200.0, 86400.0, 0.0))])
    unwrapped = clock + wraps
    return unwrapped - unwrapped[0]


def read_csv_files(
    paths: list[str],
    make_item: Callable[[str, bytes], CsvItem],
    report: LoadReport,
    tick: Callable[[int], None] | None = None,
    cancel: CancelToken | None = None,
    chunk: int = 128,
) -> list[tuple[str, np.ndarray]]:
    """Read and parse CSV files in chunks; failures go to ``report`` as skipped with reasons.

    ``make_item(path, bytes)`` validates any header and returns the :class:`CsvItem` to parse
    (or raises :class:`DataFormatError`). Returns (path, float64 array) for the files parsed.
    """
    parsed: list[tuple[str, np.ndarray]] = []
    for start in range(0, len(paths), chunk):
        check(cancel)
        items: list[CsvItem] = []
        for path in paths[start : start + chunk]:
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
                items.append(make_item(path, strip_bom(data)))
            except DataFormatError as exc:
                report.skip(path, str(exc))
            except OSError as exc:
                report.skip(path, f"{path}: expected a readable file, found {exc.strerror}")
        for item, result in zip(items, parse_items(items), strict=True):
            if isinstance(result, DataFormatError):
                report.skip(item.path, str(result))
            else:
                parsed.append((item.path, result))
        if tick is not None:
            tick(len(paths[start : start + chunk]))
    return parsed
