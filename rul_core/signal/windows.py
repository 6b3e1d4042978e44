"""Rectangular windows inside snapshots, as strided views (SPEC §2 step 3)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from rul_core.config import WINDOW_LENGTH, WINDOW_STRIDE


def _check(length: int, stride: int) -> None:
    if int(length) != length or length < 1:
        raise ValueError(f"length: expected a positive integer, got {length!r}")
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride: expected a positive integer, got {stride!r}")


def windows_per_snapshot(
    n_samples: int, length: int = WINDOW_LENGTH, stride: int = WINDOW_STRIDE
) -> int:
    """Whole windows in one snapshot; trailing samples that fill no window are dropped."""
    _check(length, stride)
    return 0 if n_samples < length else (n_samples - length) // stride + 1


def window_view(
    snapshots: np.ndarray, length: int = WINDOW_LENGTH, stride: int = WINDOW_STRIDE
) -> np.ndarray:
    """Read-only view (snapshots, windows, length, channels) of (snapshots, samples, channels).

    Windows start at 0, stride, 2*stride, ... and never cross a snapshot boundary.
    """
    x = np.asarray(snapshots)
    if x.ndim != 3:
        raise ValueError(f"snapshots: expected (snapshots, samples, channels), got {x.shape}")
    n_win = windows_per_snapshot(x.shape[1], length, stride)
    s0, s1, s2 = x.strides
    return as_strided(
        x, shape=(x.shape[0], n_win, length, x.shape[2]),
        strides=(s0, s1 * stride, s1, s2), writeable=False,
    )


def window_positions(
    n_snapshots: int, n_samples: int, length: int = WINDOW_LENGTH, stride: int = WINDOW_STRIDE
) -> tuple[np.ndarray, np.ndarray]:
    """``(snapshot_index, offset)`` int64 arrays of every window, snapshot-major order."""
    n_win = windows_per_snapshot(n_samples, length, stride)
    snap = np.repeat(np.arange(n_snapshots, dtype=np.int64), n_win)
    offset = np.tile(np.arange(n_win, dtype=np.int64) * stride, n_snapshots)
    return snap, offset


def make_windows(
    snapshots: np.ndarray, length: int = WINDOW_LENGTH, stride: int = WINDOW_STRIDE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All windows of (snapshots, samples, channels) as (n, length, channels).

    Returns ``(windows, snapshot_index, offset)``. ``windows`` is a read-only strided view
    when the layout allows (one snapshot, one window per snapshot, or windows that tile each
    snapshot exactly: ``n_windows * stride == samples``), otherwise a copy. A 2-D
    (samples, channels) input is treated as one snapshot.
    """
    x = np.asarray(snapshots)
    if x.ndim == 2:
        x = x[None]
    view = window_view(x, length, stride)
    n_snap, n_win = view.shape[:2]
    flat = view.reshape(n_snap * n_win, length, x.shape[2])
    snap, offset = window_positions(n_snap, x.shape[1], length, stride)
    return flat, snap, offset
