"""In-memory model of bearing data: a Run is one bearing from start to its last snapshot."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Condition:
    """Operating condition of a run: shaft speed and radial load."""

    rpm: float
    load_n: float
    name: str = ""

    @property
    def shaft_hz(self) -> float:
        """Shaft frequency f_o = rpm / 60 (SPEC §1)."""
        return self.rpm / 60.0

    @property
    def label(self) -> str:
        """Short human label, e.g. '1800 rpm / 4000 N'."""
        return self.name or f"{self.rpm:g} rpm / {self.load_n:g} N"


def every_nth_from_last(snapshots: int | np.ndarray, n: int) -> np.ndarray:
    """Indices of every ``n``-th snapshot counted back from the last.

    ``snapshots``: a snapshot count, or the snapshots' numbers in the recording (a subset
    keeps the snapshots whose number is a multiple of ``n`` before the last one's)."""
    if int(n) != n or n < 1:
        raise ValueError(f"every: expected a positive whole number of snapshots, got {n!r}")
    number = (np.arange(int(snapshots)) if np.ndim(snapshots) == 0
              else np.asarray(snapshots, dtype=np.int64))
    if number.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero((number[-1] - number) % int(n) == 0)


@dataclass
class Run:
    """One bearing from the start of its test to its last snapshot.

    ``snapshots`` is float32 of shape (snapshots, samples, channels); ``timestamps`` holds
    seconds since the first snapshot (one per snapshot); ``source_paths`` one file per
    snapshot (empty for synthetic runs held only in memory). ``extra_channels`` holds
    channels at their own rate (e.g. FEMTO temperature) as name -> (times_s, values).
    """

    name: str
    snapshots: np.ndarray
    fs: float
    channel_names: list[str]
    condition: Condition
    timestamps: np.ndarray | None = None
    source_paths: list[str] = field(default_factory=list)
    dataset: str = ""
    layout: str = ""
    extra_channels: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.snapshots = np.asarray(self.snapshots, dtype=np.float32)
        if self.snapshots.ndim != 3:
            raise ValueError(
                f"run {self.name}: snapshots must be (snapshots, samples, channels), "
                f"got shape {self.snapshots.shape}"
            )
        if len(self.channel_names) != self.snapshots.shape[2]:
            raise ValueError(
                f"run {self.name}: {len(self.channel_names)} channel names for "
                f"{self.snapshots.shape[2]} channels"
            )
        if self.timestamps is None:
            self.timestamps = np.arange(self.n_snapshots, dtype=np.float64)
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64)

    @property
    def n_snapshots(self) -> int:
        """Number of snapshots in the run."""
        return int(self.snapshots.shape[0])

    @property
    def n_samples(self) -> int:
        """Samples per snapshot."""
        return int(self.snapshots.shape[1])

    @property
    def n_channels(self) -> int:
        """Number of vibration channels."""
        return int(self.snapshots.shape[2])

    def channel(self, name_or_index: str | int) -> np.ndarray:
        """One channel as (snapshots, samples)."""
        idx = (
            self.channel_names.index(name_or_index)
            if isinstance(name_or_index, str)
            else int(name_or_index)
        )
        return self.snapshots[:, :, idx]

    def head(self, n: int) -> Run:
        """The first ``n`` snapshots (a partial run, as seen during monitoring)."""
        return self.take(np.arange(min(max(int(n), 0), self.n_snapshots)))

    def take(self, indices: np.ndarray) -> Run:
        """The snapshots at ``indices`` (increasing), with their timestamps and files."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        paths = [self.source_paths[i] for i in idx] if self.source_paths else []
        return Run(
            name=self.name,
            snapshots=self.snapshots[idx],
            fs=self.fs,
            channel_names=list(self.channel_names),
            condition=self.condition,
            timestamps=self.timestamps[idx],
            source_paths=paths,
            dataset=self.dataset,
            layout=self.layout,
        )

    def every_nth(self, n: int) -> Run:
        """Every ``n``-th snapshot counted back from the last (the run itself for n = 1).

        The last snapshot is always kept and timestamps stay absolute, so a thinned run ends
        where the recording ends, as a monitoring estimate needs."""
        if int(n) == 1:
            return self
        return self.take(every_nth_from_last(self.n_snapshots, n))

    def content_hash(self) -> str:
        """SHA-256 of the samples, rate and channel names (identifies the data, not the files)."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.snapshots).tobytes())
        h.update(repr((float(self.fs), tuple(self.channel_names))).encode())
        return h.hexdigest()


@dataclass(frozen=True)
class SkippedFile:
    """A file the loader did not use, and why (the error message names file/line/field)."""

    path: str
    reason: str


@dataclass
class LoadReport:
    """What a loader read and what it skipped. Every file it saw is either used or skipped."""

    used: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def skip(self, path: str | Path, reason: str) -> None:
        """Record a skipped file."""
        self.skipped.append(SkippedFile(str(path), reason))

    def merge(self, other: LoadReport) -> None:
        """Append another report's entries."""
        self.used.extend(other.used)
        self.skipped.extend(other.skipped)
        self.warnings.extend(other.warnings)

    @property
    def ok(self) -> bool:
        """True when nothing was skipped."""
        return not self.skipped

    def summary(self) -> str:
        """One line: how many files were used and skipped."""
        return f"{len(self.used)} files used, {len(self.skipped)} skipped"


@dataclass
class Dataset:
    """A named collection of runs plus the loader's report."""

    name: str
    runs: list[Run]
    layout: str
    report: LoadReport = field(default_factory=LoadReport)
    root: str = ""

    def run(self, name: str) -> Run:
        """The run called ``name`` (KeyError listing the available names otherwise)."""
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(f"no run {name!r}; available: {', '.join(r.name for r in self.runs)}")

    @property
    def run_names(self) -> list[str]:
        """Names of the runs in order."""
        return [r.name for r in self.runs]
