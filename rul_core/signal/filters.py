"""Gaussian smoothing of vibration snapshots along the sample axis (SPEC §2 step 1)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d


def gaussian_filter(
    signal: np.ndarray,
    sigma: float | None,
    axis: int = -2,
    truncate: float = 4.0,
) -> np.ndarray:
    """Smooth ``signal`` with a Gaussian of ``sigma`` samples along ``axis``.

    ``signal`` is usually (snapshots, samples, channels) or (samples, channels); the default
    ``axis=-2`` is the sample axis of both, so every snapshot and channel is filtered on its
    own (no smoothing across snapshot boundaries). Edges use scipy's ``reflect`` mode and the
    kernel is cut at ``truncate`` standard deviations. ``sigma`` None or 0 returns a float32
    copy. The input is never modified; the result is float32.
    """
    x = np.asarray(signal)
    if x.ndim == 0:
        raise ValueError("signal: expected an array with a sample axis, got a scalar")
    if sigma is None or sigma == 0:
        return np.array(x, dtype=np.float32, copy=True)
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma: expected a finite value >= 0 samples, got {sigma!r}")
    out = gaussian_filter1d(
        x.astype(np.float32, copy=False), float(sigma), axis=axis, mode="reflect",
        truncate=truncate,
    )
    return np.asarray(out, dtype=np.float32)
