"""Error types raised by rul_core. Every message names the file/field and what was expected."""

from __future__ import annotations

from pathlib import Path


class RulError(Exception):
    """Base class of all errors the workbench reports to the user."""


class DataFormatError(RulError):
    """A file's content is not what its layout promises.

    Carries the file, the 1-based line and column (when known), what was expected and
    what was found, so the UI and CLI can print one clear sentence.
    """

    def __init__(
        self,
        path: str | Path,
        expected: str,
        found: str | None = None,
        line: int | None = None,
        column: int | str | None = None,
    ) -> None:
        self.path = str(path)
        self.expected = expected
        self.found = found
        self.line = line
        self.column = column
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        msg = f"{where}: expected {expected}"
        if found is not None:
            msg += f", found {found}"
        super().__init__(msg)


class InputError(RulError, ValueError):
    """A run or parameter the user chose does not fit the operation (e.g. snapshots shorter
    than a window); also a ValueError, so argument checks can be caught either way."""


class LayoutError(RulError):
    """A folder or archive does not match any known (or the requested) dataset layout."""


class ArchiveError(RulError):
    """An archive is corrupt or violates the extraction safety checks."""


class BundleError(RulError):
    """A model bundle is missing, corrupt, incompatible or unsafe to load."""


class Cancelled(RulError):
    """A long operation was cancelled by the user through its CancelToken."""
