"""The interface every layout reader implements (XJTU-SY, FEMTO, generic)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rul_core.data.run import LoadReport, Run
from rul_core.progress import CancelToken


@dataclass
class FileSelection:
    """A run folder's files split into what the reader parses and what it leaves out."""

    data_files: list[str] = field(default_factory=list)  # names, natural order
    left_out: dict[str, str] = field(default_factory=dict)  # name -> reason


class RunReader:
    """Base class: recognise run folders of one layout and read one folder into a Run."""

    layout: ClassVar[str] = ""
    description: ClassVar[str] = ""  # what the layout looks like, for LayoutError messages
    version: ClassVar[int] = 1  # bump when parsing changes, to invalidate caches
    option_names: ClassVar[tuple[str, ...]] = ()  # load options this reader depends on

    def context(self, run_dir: Path) -> str:
        """What the run depends on besides file contents (folder name, path-derived condition)."""
        return run_dir.name

    def claims(self, names: list[str]) -> bool:
        """True when a folder holding files ``names`` is a run folder of this layout."""
        raise NotImplementedError

    def select(self, run_dir: Path, names: list[str], options: dict[str, Any]) -> FileSelection:
        """Which files of the run folder are read (natural order) and why the others are not."""
        raise NotImplementedError

    def read(
        self,
        run_dir: Path,
        selection: FileSelection,
        report: LoadReport,
        options: dict[str, Any],
        tick: Callable[[int], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> Run | None:
        """Parse the selected files into a Run (None when no snapshot is usable)."""
        raise NotImplementedError
