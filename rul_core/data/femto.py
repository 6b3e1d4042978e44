"""PRONOSTIA / FEMTO (IEEE PHM 2012) reader: ``<set>/BearingC_Y/acc_NNNNN.csv`` (SPEC §1).

Acceleration files: 2560 rows, no header, six columns (hour, minute, second, microsecond,
horizontal g, vertical g), ``,`` or ``;`` separated, microseconds in scientific notation
(``1.1879e+05``; ``4.2504e+005`` in Test_set/Bearing1_4). One file every 10 s at 25.6 kHz.
Timestamps come from the clock of each file's first row (seconds since the first snapshot,
midnight roll-over unwrapped); when a clock is out of range or does not increase, the run
falls back to 10 s per file number, with a warning.

``temp_NNNNN.csv`` (hour, minute, second, tenth, degrees C at 10 Hz) is read only with
``read_temperature=True`` into ``run.extra_channels["temperature"] = (times_s, values)``
on the same time axis as the snapshots. A bad temperature file is skipped with its reason;
it never stops the acceleration data from loading.

Condition from the bearing number C of ``BearingC_Y``: 1 -> 1800 rpm / 4000 N,
2 -> 1650 rpm / 4200 N, 3 -> 1500 rpm / 5000 N.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rul_core.data.csvparse import CsvItem, detect_separator, first_line
from rul_core.data.natural import file_number, natural_sorted
from rul_core.data.reader import FileSelection, RunReader
from rul_core.data.run import Condition, LoadReport, Run
from rul_core.data.snapshots import (
    NOT_READ,
    ParsedSnapshot,
    assemble,
    read_csv_files,
    relative_times,
)
from rul_core.errors import Cancelled
from rul_core.progress import CancelToken

FS_HZ = 25600.0
SNAPSHOT_INTERVAL_S = 10.0
CHANNELS = ["horizontal", "vertical"]
ACC_RE = re.compile(r"^acc_\d+\.csv$", re.IGNORECASE)
TEMP_RE = re.compile(r"^temp_\d+\.csv$", re.IGNORECASE)
BEARING_RE = re.compile(r"^bearing(\d+)_(\d+)$", re.IGNORECASE)
CONDITIONS = {
    1: Condition(1800.0, 4000.0, "condition 1 (1800 rpm, 4000 N)"),
    2: Condition(1650.0, 4200.0, "condition 2 (1650 rpm, 4200 N)"),
    3: Condition(1500.0, 5000.0, "condition 3 (1500 rpm, 5000 N)"),
}


def condition_for(run_dir: Path, report: LoadReport | None = None) -> Condition:
    """Condition from ``BearingC_Y`` (C in 1..3); NaN rpm/load with a warning otherwise."""
    match = BEARING_RE.match(run_dir.name)
    if match and int(match.group(1)) in CONDITIONS:
        return CONDITIONS[int(match.group(1))]
    if report is not None:
        report.warnings.append(
            f"{run_dir}: operating condition unknown (expected a folder named BearingC_Y with "
            f"C in 1..3); rpm and load set to NaN"
        )
    return Condition(float("nan"), float("nan"), "unknown")


def clock_seconds(rows: np.ndarray, fraction_scale: float) -> np.ndarray:
    """Time of day in s from (hour, minute, second, fraction) columns; NaN where out of range."""
    hour, minute, second, frac = (rows[..., k] for k in range(4))
    valid = (
        (hour >= 0) & (hour < 24) & (minute >= 0) & (minute < 60) & (second >= 0)
        & (second < 61) & (frac >= 0) & (frac * fraction_scale < 2.0)
    )
    seconds = hour * 3600.0 + minute * 60.0 + second + frac * fraction_scale
    return np.where(valid, seconds, np.nan)


class FemtoReader(RunReader):
    """Reader for PRONOSTIA / FEMTO bearing folders."""

    layout = "femto"
    description = "femto (<Learning_set|Test_set|Full_Test_Set>/BearingC_Y/acc_NNNNN.csv)"
    option_names = ("read_temperature",)
    version = 2  # 2: values beyond float32 range skip their file (were kept as inf)

    def claims(self, names: list[str]) -> bool:
        """A folder with at least one ``acc_NNNNN.csv``."""
        return any(ACC_RE.match(n) for n in names)

    def select(self, run_dir: Path, names: list[str], options: dict[str, Any]) -> FileSelection:
        """acc files (and temp files when ``read_temperature``) in natural order."""
        read_temperature = bool(options.get("read_temperature", False))
        selection = FileSelection()
        for name in natural_sorted(names):
            if ACC_RE.match(name) or (read_temperature and TEMP_RE.match(name)):
                selection.data_files.append(name)
            elif TEMP_RE.match(name):
                selection.left_out[name] = (
                    f"{NOT_READ}{run_dir / name}: temperature file (read_temperature=False)"
                )
            else:
                selection.left_out[name] = (
                    f"{run_dir / name}: expected acc_NNNNN.csv or temp_NNNNN.csv in a FEMTO "
                    f"bearing folder, found {name!r}"
                )
        return selection

    @staticmethod
    def _acc_item(path: str, data: bytes) -> CsvItem:
        return CsvItem(path, data, detect_separator(first_line(data), (",", ";")), 6)

    @staticmethod
    def _temp_item(path: str, data: bytes) -> CsvItem:
        return CsvItem(path, data, detect_separator(first_line(data), (",", ";")), 5)

    def read(
        self,
        run_dir: Path,
        selection: FileSelection,
        report: LoadReport,
        options: dict[str, Any],
        tick: Callable[[int], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> Run | None:
        """Parse acc files (and temperature when asked) into a Run."""
        acc_paths = [str(run_dir / n) for n in selection.data_files if ACC_RE.match(n)]
        temp_paths = [str(run_dir / n) for n in selection.data_files if TEMP_RE.match(n)]
        parsed: list[ParsedSnapshot] = []
        for path, rows in read_csv_files(acc_paths, self._acc_item, report, tick, cancel):
            clock = float(clock_seconds(rows[0], 1e-6))
            parsed.append(ParsedSnapshot(path, rows[:, 4:6], file_number(path), clock))
        stack, kept = assemble(run_dir.name, parsed, report, CHANNELS, [5, 6])
        timestamps, origin = self._timestamps(run_dir, kept, report)
        extra: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if temp_paths:
            temperature = self._temperature(temp_paths, origin, report, tick, cancel)
            if temperature is not None:
                extra["temperature"] = temperature
        if not kept:
            return None
        return Run(
            name=run_dir.name,
            snapshots=stack,
            fs=FS_HZ,
            channel_names=list(CHANNELS),
            condition=condition_for(run_dir, report),
            timestamps=timestamps,
            source_paths=[p.path for p in kept],
            dataset=run_dir.parent.name,
            layout=self.layout,
            extra_channels=extra,
        )

    @staticmethod
    def _timestamps(
        run_dir: Path, kept: list[ParsedSnapshot], report: LoadReport
    ) -> tuple[np.ndarray, float | None]:
        """Seconds since the first snapshot, and the first snapshot's clock (None if unknown)."""
        if not kept:
            return np.zeros(0), None
        clock = np.array([p.clock_s for p in kept], dtype=np.float64)
        if np.isfinite(clock).all():
            times = relative_times(clock)
            if len(times) < 2 or (np.diff(times) > 0).all():
                return times, float(clock[0])
        numbers = np.array([p.number or 0 for p in kept], dtype=np.float64)
        report.warnings.append(
            f"{run_dir}: the clock columns (hour, minute, second, microsecond) of the first rows "
            f"are out of range or do not increase; timestamps set to 10 s per file number"
        )
        return (numbers - numbers[0]) * SNAPSHOT_INTERVAL_S, None

    def _temperature(
        self,
        temp_paths: list[str],
        origin_s: float | None,
        report: LoadReport,
        tick: Callable[[int], None] | None,
        cancel: CancelToken | None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(times_s, degrees C) over all temperature files, or None; problems never raise."""
        sub = LoadReport()
        try:
            blocks = read_csv_files(temp_paths, self._temp_item, sub, tick, cancel)
            good: list[np.ndarray] = []
            for path, rows in blocks:
                clock = clock_seconds(rows, 0.1)
                bad_rows = np.flatnonzero(~np.isfinite(clock))
                if bad_rows.size:
                    sub.skip(
                        path,
                        f"{path}, line {bad_rows[0] + 1}: expected hour (0-23), minute (0-59), "
                        f"second (0-60) and tenth of a second (0-9) in columns 1-4, found "
                        f"{', '.join(f'{v:g}' for v in rows[bad_rows[0], :4])}",
                    )
                    continue
                sub.used.append(path)
                good.append(np.column_stack([clock, rows[:, 4]]))
            if not good:
                return None
            table = np.concatenate(good)
            clock = table[:, 0]
            start = origin_s if origin_s is not None else clock[0]
            times = relative_times(np.concatenate([[start], clock]))[1:]
            return times, table[:, 1].astype(np.float64)
        except Cancelled:
            raise
        except Exception as exc:  # temperature is optional: report, never break the acc load
            already_skipped = {s.path for s in sub.skipped}
            sub.used.clear()
            for path in temp_paths:
                if path not in already_skipped:
                    sub.skip(path, f"{path}: temperature file not read ({exc})")
            return None
        finally:
            report.merge(sub)
