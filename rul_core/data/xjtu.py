"""XJTU-SY reader: ``<condition>/<BearingX_Y>/<k>.csv``, one file a minute (SPEC §1).

Each file has the header ``Horizontal_vibration_signals,Vertical_vibration_signals`` and
32768 rows at 25.6 kHz. The condition comes from the nearest folder named like ``35Hz12kN``
(``<f>Hz<l>kN``: rpm = 60 f, load = 1000 l N); failing that, from the bearing number X of
``BearingX_Y`` (1: 35Hz12kN, 2: 37.5Hz11kN, 3: 40Hz10kN) with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rul_core.data.csvparse import CsvItem, first_line, split_header
from rul_core.data.natural import file_number, natural_sorted
from rul_core.data.reader import FileSelection, RunReader
from rul_core.data.run import Condition, LoadReport, Run
from rul_core.data.snapshots import ParsedSnapshot, assemble, read_csv_files
from rul_core.errors import DataFormatError
from rul_core.progress import CancelToken

FS_HZ = 25600.0
SNAPSHOT_INTERVAL_S = 60.0
HEADER = ("Horizontal_vibration_signals", "Vertical_vibration_signals")
CHANNELS = ["horizontal", "vertical"]
CONDITION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*hz\s*(\d+(?:\.\d+)?)\s*kn$", re.IGNORECASE)
BEARING_RE = re.compile(r"^bearing(\d+)_(\d+)$", re.IGNORECASE)
SNAPSHOT_RE = re.compile(r"^\d+\.csv$", re.IGNORECASE)
DEFAULT_CONDITIONS = {1: "35Hz12kN", 2: "37.5Hz11kN", 3: "40Hz10kN"}


def parse_condition(folder_name: str) -> Condition | None:
    """``35Hz12kN`` -> Condition(2100 rpm, 12000 N, '35Hz12kN'); None if it does not match."""
    match = CONDITION_RE.match(folder_name.strip())
    if not match:
        return None
    return Condition(
        rpm=float(match.group(1)) * 60.0, load_n=float(match.group(2)) * 1000.0, name=folder_name
    )


def condition_for(run_dir: Path, report: LoadReport | None = None) -> Condition:
    """The condition of a bearing folder, from its ancestors' names or its bearing number."""
    for folder in [run_dir, *run_dir.parents]:
        cond = parse_condition(folder.name)
        if cond is not None:
            return cond
    match = BEARING_RE.match(run_dir.name)
    if match and int(match.group(1)) in DEFAULT_CONDITIONS:
        name = DEFAULT_CONDITIONS[int(match.group(1))]
        if report is not None:
            report.warnings.append(
                f"{run_dir}: no condition folder like '35Hz12kN' above it; condition {name} "
                f"taken from the bearing number"
            )
        cond = parse_condition(name)
        assert cond is not None
        return cond
    if report is not None:
        report.warnings.append(
            f"{run_dir}: operating condition unknown (expected a parent folder like '35Hz12kN' "
            f"or a name like 'Bearing1_1'); rpm and load set to NaN"
        )
    return Condition(float("nan"), float("nan"), "unknown")


class XjtuReader(RunReader):
    """Reader for XJTU-SY bearing folders."""

    layout = "xjtu"
    description = "xjtu (<condition like 35Hz12kN>/<BearingX_Y>/<k>.csv with a header row)"
    version = 2  # 2: values beyond float32 range skip their file (were kept as inf)

    def context(self, run_dir: Path) -> str:
        """Folder name and the condition derived from the path."""
        return f"{run_dir.name}|{condition_for(run_dir)!r}"

    def claims(self, names: list[str]) -> bool:
        """A folder with at least one ``<k>.csv``."""
        return any(SNAPSHOT_RE.match(n) for n in names)

    def select(self, run_dir: Path, names: list[str], options: dict[str, Any]) -> FileSelection:
        """``<k>.csv`` files in natural order; everything else is left out."""
        selection = FileSelection()
        for name in natural_sorted(names):
            if SNAPSHOT_RE.match(name):
                selection.data_files.append(name)
            else:
                selection.left_out[name] = (
                    f"{run_dir / name}: expected a snapshot file named <k>.csv in an XJTU-SY "
                    f"bearing folder, found {name!r}"
                )
        return selection

    @staticmethod
    def _item(path: str, data: bytes) -> CsvItem:
        header = first_line(data)
        cells = [c.strip().decode("utf-8", "replace").lower() for c in header.split(b",")]
        if cells != [h.lower() for h in HEADER]:
            shown = header[:80].decode("utf-8", "backslashreplace")
            raise DataFormatError(
                path, f"the header {','.join(HEADER)!r}", repr(shown) if data else "an empty file",
                line=1,
            )
        return CsvItem(path, split_header(data, 1), ",", 2, skip_lines=1)

    def read(
        self,
        run_dir: Path,
        selection: FileSelection,
        report: LoadReport,
        options: dict[str, Any],
        tick: Callable[[int], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> Run | None:
        """Parse the snapshots; timestamps are 60 s per file number."""
        paths = [str(run_dir / n) for n in selection.data_files]
        parsed = [
            ParsedSnapshot(path, values, file_number(path))
            for path, values in read_csv_files(paths, self._item, report, tick, cancel)
        ]
        stack, kept = assemble(run_dir.name, parsed, report, CHANNELS, [1, 2])
        if not kept:
            return None
        numbers = np.array([p.number for p in kept], dtype=np.float64)
        return Run(
            name=run_dir.name,
            snapshots=stack,
            fs=FS_HZ,
            channel_names=list(CHANNELS),
            condition=condition_for(run_dir, report),
            timestamps=(numbers - numbers[0]) * SNAPSHOT_INTERVAL_S,
            source_paths=[p.path for p in kept],
            dataset=run_dir.parent.name,
            layout=self.layout,
        )
