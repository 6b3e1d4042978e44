"""The seven time–frequency features per window and channel (SPEC §2.5).

``[log E, f_d, h, K, sk, mean, std]`` where, for one window x of N samples:

* ``E = sum over scales and time of |CWT(a, t)|²`` (pywt-exact CWT, :mod:`.cwt`), natural
  log; ``log E`` is floored at ``log(1e-12)`` so an all-zero window stays finite.
* ``f_d`` = frequency (Hz) of the scale with the largest energy ``sum_t |CWT(a, t)|²``.
* ``h`` = Shannon entropy (natural log, nats) of the amplitude histogram of x with ``bins``
  equal bins over [min x, max x], binned in float64 (``numpy.histogram`` of the window cast
  to float64; on float32 input numpy would bin in float32 and may move a sample on an edge).
* ``K`` = Pearson (non-excess) kurtosis ``m4 / m2²``; ``sk`` = skewness ``m3 / m2^1.5``,
  with population central moments (scipy.stats ``bias=True``, ``fisher=False``).
* ``mean``, ``std`` (population, ddof 0).

A constant window has no shape: it gets ``K = 0`` and ``sk = 0`` (documented sentinels
instead of NaN) and entropy 0 (numpy puts every value in the middle bin).
"""

from __future__ import annotations

import numpy as np

from rul_core.config import CWT_BANDWIDTH, CWT_CENTER_FREQUENCY, ENTROPY_BINS
from rul_core.progress import CancelToken, ProgressFn, check, emit
from rul_core.signal.cwt import frequencies_to_scales, get_plan, wavelet_name

FEATURE_NAMES = ("log_energy", "dominant_frequency", "entropy", "kurtosis", "skewness", "mean",
                 "std")
ENERGY_FLOOR = 1e-12


def _as_windows(windows: np.ndarray) -> np.ndarray:
    x = np.asarray(windows)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"windows: expected (n, length) with length >= 2, got {x.shape}")
    return x


def histogram_entropy(windows: np.ndarray, bins: int = ENTROPY_BINS) -> np.ndarray:
    """Shannon entropy (nats) of each row's ``bins``-bin histogram, float64 (n,)."""
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins: expected a positive integer, got {bins!r}")
    x = _as_windows(windows).astype(np.float64)
    n, length = x.shape
    first = x.min(axis=1)
    last = x.max(axis=1)
    flat = first == last
    first = np.where(flat, first - 0.5, first)
    last = np.where(flat, last + 0.5, last)
    edges = np.linspace(first, last, bins + 1, axis=1)  # same arithmetic as np.histogram
    idx = (((x - first[:, None]) / (last - first)[:, None]) * bins).astype(np.intp)
    idx[idx == bins] -= 1
    idx[x < np.take_along_axis(edges, idx, axis=1)] -= 1
    bump = (x >= np.take_along_axis(edges, idx + 1, axis=1)) & (idx != bins - 1)
    idx[bump] += 1
    counts = np.zeros((n, bins), dtype=np.int64)
    for b in range(bins):
        counts[:, b] = np.count_nonzero(idx == b, axis=1)
    p = counts / length
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return 0.0 - terms.sum(axis=1)  # 0.0 - avoids printing -0.0


def moment_features(windows: np.ndarray) -> np.ndarray:
    """``[K, sk, mean, std]`` per row, float64 (n, 4)."""
    x = _as_windows(windows).astype(np.float64)
    mean = x.mean(axis=1)
    c = x - mean[:, None]
    c2 = c * c
    m2 = c2.mean(axis=1)
    m3 = (c2 * c).mean(axis=1)
    m4 = (c2 * c2).mean(axis=1)
    constant = x.min(axis=1) == x.max(axis=1)
    safe = np.where(constant, 1.0, m2)
    kurt = np.where(constant, 0.0, m4 / (safe * safe))
    skew = np.where(constant, 0.0, m3 / safe**1.5)
    return np.stack([kurt, skew, mean, np.sqrt(m2)], axis=1)


def tf_features(
    windows: np.ndarray,
    fs: float,
    frequencies: np.ndarray,
    bins: int = ENTROPY_BINS,
    bandwidth: float = CWT_BANDWIDTH,
    center: float = CWT_CENTER_FREQUENCY,
    chunk: int = 256,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    workers: int = -1,
) -> np.ndarray:
    """The seven features of every window (n, N) -> float64 (n, 7), see the module docstring.

    ``frequencies`` (Hz) define the scales ``a = center * fs / f``. Windows are processed in
    chunks; only per-scale energies are kept, never the full coefficient tensor.
    ``workers``: FFT threads (-1 all cores).
    """
    x = _as_windows(windows)
    if not np.all(np.isfinite(x)):
        raise ValueError("windows: expected finite values, found NaN or inf")
    freqs = np.asarray(frequencies, dtype=np.float64)
    scales = frequencies_to_scales(freqs, fs, center)
    plan = get_plan(x.shape[1], scales, wavelet_name(bandwidth, center))
    n = x.shape[0]
    out = np.empty((n, 7), dtype=np.float64)
    for start in range(0, n, chunk):
        check(cancel)
        part = x[start : start + chunk]
        energy = plan.energies(part, cancel=cancel, workers=workers)
        total = energy.sum(axis=1)
        out[start : start + chunk, 0] = np.log(np.maximum(total, ENERGY_FLOOR))
        out[start : start + chunk, 1] = freqs[np.argmax(energy, axis=1)]
        out[start : start + chunk, 2] = histogram_entropy(part, bins)
        out[start : start + chunk, 3:] = moment_features(part)
        emit(progress, "tf features", min(start + chunk, n), n)
    return out
