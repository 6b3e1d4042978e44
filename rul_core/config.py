"""Defaults shared across the package. Every value is a default a caller can override."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Window and raster defaults (SPEC §2)
WINDOW_LENGTH = 1000
WINDOW_STRIDE = 500
IMR_ROWS = 64
IMR_OUT_COLUMNS = 500
CWT_NUM_SCALES = 100
CWT_CENTER_FREQUENCY = 0.81
CWT_BANDWIDTH = 2.0  # pywt "cmor2.0-0.81": envelope exp(-t^2/2) (SPEC §2.5)
ENTROPY_BINS = 3
GAUSSIAN_SIGMA = {"xjtu": 0.75, "femto": 1.1}

# The app's record of an upload's file names, written beside the uploaded files
UPLOAD_RECORD = ".upload.json"


@dataclass(frozen=True)
class ArchiveLimits:
    """Safety limits applied when extracting an uploaded archive."""

    max_total_bytes: int = 4 * 1024**3
    max_files: int = 50_000
    max_file_bytes: int = 512 * 1024**2
    max_ratio: float = 200.0  # unpacked / packed size, against zip bombs


def workspace_dir() -> Path:
    """The workspace folder (SQLite catalog, caches, bundles): $RUL_WORKSPACE or ./workspace."""
    return Path(os.environ.get("RUL_WORKSPACE", "workspace")).resolve()
