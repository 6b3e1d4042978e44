"""ImR: the image representation of a normalised window (SPEC §2.4, multimodal paper Alg. 1).

Geometry
--------
* Amplitude level of a normalised value x in [0, 1]: ``level = min(floor(64 x), 63)``
  (values outside [0, 1] are clipped first, NaN raises). Level 0 is drawn at the *bottom*
  of the image, so the array row is ``63 - level`` (array row 0 is the top when displayed).
* Sample k sits in column ``k * spacing``; the raster is ``(L - 1) * spacing + 1`` columns
  wide, i.e. 64 x 1000 for the default L = 1000, spacing = 1.
* Consecutive samples are joined by the textbook integer Bresenham line (all octants,
  both end points lit; for left-to-right segments the classic octant algorithm, Zingl's
  error-term variant and ``skimage.draw.line`` light the same pixels). An exact midpoint tie
  steps to the next row (rounds half up: the ``err >= 0`` form; the ``D > 0`` midpoint form
  found in some textbooks rounds ties the other way). Lit pixels are 255.

Closed form (no per-segment loop)
---------------------------------
For a segment from (0, 0) to (s, d) with a = |d| and sign σ, Bresenham lights in relative
column c (0 <= c <= s) the rows σ·i for

* shallow (a < s): the single i = floor((2ac + s) / (2s));
* steep (a >= s): i in [max(0, ceil((2ac - a) / (2s))), min(a, ceil((2ac + a) / (2s)) - 1)].

(Derived from the decision variable D_x = 2a(x+1) - s - 2s·y_x of the classic algorithm:
the minor coordinate at major step x is floor((2·minor·x + major) / (2·major)).) Every
column therefore holds one contiguous vertical run; a sample column is the union of the
runs of its two segments, which both contain the sample's level, hence again one run.
With spacing 1, column k holds ``level_k`` extended by ``max(ceil(|d_k|/2) - 1, 0)`` rows
towards the next sample and ``floor(|d_{k-1}|/2)`` rows towards the previous one.
The tests compare this to a segment-by-segment textbook implementation pixel for pixel.

The network input is the 64 x 1000 raster averaged over column pairs (64 x 500, values in
[0, 1]); :func:`imr_pair_counts` returns it as uint8 counts (0, 1, 2) of lit pixels per pair,
so ``counts / 2`` is the averaged image and 8000 windows take 256 MB rather than 1 GB.
"""

from __future__ import annotations

import numpy as np

from rul_core.config import IMR_ROWS

_CHUNK = 64


def amplitude_levels(windows: np.ndarray, rows: int = IMR_ROWS) -> np.ndarray:
    """Quantised amplitude level ``min(floor(rows * x), rows - 1)`` of clipped x, int16."""
    x = np.asarray(windows)
    # rows * x is exact in float32 when rows is a power of two (the default 64); otherwise
    # float32 would round e.g. 100 * float32(0.44) = 43.99999976 up to 44, so the level of a
    # value would depend on the dtype holding it: float64 is exact for float32 values.
    if not np.issubdtype(x.dtype, np.floating) or int(rows) & (int(rows) - 1):
        x = x.astype(np.float64)
    if np.isnan(x).any():
        raise ValueError("windows: expected normalised values in [0, 1], found NaN")
    levels = np.floor(np.clip(x, 0.0, 1.0) * rows)
    return np.minimum(levels, rows - 1).astype(np.int16)


def raster_width(length: int, spacing: int = 1) -> int:
    """Columns of the full raster: ``(length - 1) * spacing + 1``."""
    return (int(length) - 1) * int(spacing) + 1


def _ceil_div(p: np.ndarray, q: int) -> np.ndarray:
    return -((-p) // q)


def _runs_spacing_one(lev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed form for spacing 1 (the default): two int16 passes over (n, L)."""
    d = lev[:, 1:] - lev[:, :-1]
    mag = np.abs(d)
    sign = np.sign(d)
    toward_next = sign * np.maximum((mag + 1) // 2 - 1, 0)  # max(ceil(|d|/2) - 1, 0)
    toward_prev = -sign * (mag // 2)  # floor(|d|/2), back towards the previous sample
    zero = np.zeros((lev.shape[0], 1), dtype=d.dtype)
    ext_next = np.concatenate([toward_next, zero], axis=1)  # last sample has no next
    ext_prev = np.concatenate([zero, toward_prev], axis=1)  # first sample has no previous
    lo = lev + np.minimum(np.minimum(ext_next, ext_prev), 0)
    hi = lev + np.maximum(np.maximum(ext_next, ext_prev), 0)
    return lo, hi


def _runs_general(lev: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed form for any spacing s: per-segment runs of the s + 1 columns, then merged."""
    lev32 = lev.astype(np.int32)
    n, length = lev32.shape
    width = raster_width(length, s)
    d = lev32[:, 1:] - lev32[:, :-1]  # (n, L-1)
    a = np.abs(d)[..., None]
    sign = np.where(d < 0, -1, 1)[..., None]
    c = np.arange(s + 1, dtype=np.int32)[None, None, :]
    steep = a >= s
    shallow_i = (2 * a * c + s) // (2 * s)
    steep_lo = np.maximum(0, _ceil_div(2 * a * c - a, 2 * s))
    steep_hi = np.minimum(a, _ceil_div(2 * a * c + a, 2 * s) - 1)
    i_lo = np.where(steep, steep_lo, shallow_i)
    i_hi = np.where(steep, steep_hi, shallow_i)
    y0 = lev32[:, :-1, None]
    r1 = y0 + sign * i_lo
    r2 = y0 + sign * i_hi
    seg_lo = np.minimum(r1, r2)
    seg_hi = np.maximum(r1, r2)
    lo = np.empty((n, width), dtype=np.int32)
    hi = np.empty((n, width), dtype=np.int32)
    lo[:, :-1].reshape(n, length - 1, s)[:] = seg_lo[..., :s]
    hi[:, :-1].reshape(n, length - 1, s)[:] = seg_hi[..., :s]
    lo[:, -1] = seg_lo[:, -1, s]
    hi[:, -1] = seg_hi[:, -1, s]
    # sample columns 1..L-2 also receive the end of the segment on their left
    lo[:, s:-1:s] = np.minimum(lo[:, s:-1:s], seg_lo[:, :-1, s])
    hi[:, s:-1:s] = np.maximum(hi[:, s:-1:s], seg_hi[:, :-1, s])
    return lo.astype(np.int16), hi.astype(np.int16)


def column_runs(
    windows: np.ndarray, spacing: int = 1, rows: int = IMR_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """Lit run of every raster column as amplitude levels ``(lo, hi)``, each int16 (n, W).

    ``windows`` is (n, L) (or (L,)) normalised; W = (L - 1) * spacing + 1.
    """
    x = np.asarray(windows)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"windows: expected (n, length) with length >= 1, got {x.shape}")
    if int(spacing) != spacing or spacing < 1:
        raise ValueError(f"spacing: expected a positive integer, got {spacing!r}")
    if not 2 <= rows <= 4096:
        raise ValueError(f"rows: expected an integer in [2, 4096], got {rows!r}")
    lev = amplitude_levels(x, rows)
    if lev.shape[1] == 1:
        return lev, lev.copy()
    if spacing == 1:
        return _runs_spacing_one(lev)
    return _runs_general(lev, int(spacing))


def imr_raster(windows: np.ndarray, spacing: int = 1, rows: int = IMR_ROWS) -> np.ndarray:
    """Full binary raster uint8 (n, rows, W): 255 on the Bresenham polyline, 0 elsewhere.

    Array row 0 is the top (amplitude level rows - 1); see the module docstring.
    """
    lo, hi = column_runs(windows, spacing, rows)
    n, width = lo.shape
    out = np.empty((n, rows, width), dtype=np.uint8)
    level = (rows - 1 - np.arange(rows, dtype=np.int16))[None, :, None]
    for start in range(0, n, _CHUNK):
        sl = slice(start, start + _CHUNK)
        lit = (level >= lo[sl, None, :]) & (level <= hi[sl, None, :])
        out[sl] = lit.view(np.uint8) * np.uint8(255)
    return out


def imr_pair_counts(windows: np.ndarray, spacing: int = 1, rows: int = IMR_ROWS) -> np.ndarray:
    """Lit pixels per column pair of the raster, uint8 (n, rows, ceil(W / 2)) in {0, 1, 2}.

    Column j of the result covers raster columns 2j and 2j + 1 (an odd last column stands
    alone). For L = 1000, spacing 1 this is the contract's (n, 64, 500) image.
    """
    lo, hi = column_runs(windows, spacing, rows)
    n, width = lo.shape
    if width % 2:
        pad_lo = np.full((n, 1), rows, dtype=np.int16)  # an empty run: lo > hi
        pad_hi = np.full((n, 1), -1, dtype=np.int16)
        lo = np.concatenate([lo, pad_lo], axis=1)
        hi = np.concatenate([hi, pad_hi], axis=1)
    half = lo.shape[1] // 2
    lo_e, lo_o = np.ascontiguousarray(lo[:, 0::2]), np.ascontiguousarray(lo[:, 1::2])
    hi_e, hi_o = np.ascontiguousarray(hi[:, 0::2]), np.ascontiguousarray(hi[:, 1::2])
    out = np.empty((n, rows, half), dtype=np.uint8)
    level = (rows - 1 - np.arange(rows, dtype=np.int16))[None, :, None]
    for start in range(0, n, _CHUNK):
        sl = slice(start, start + _CHUNK)
        even = (level >= lo_e[sl, None]) & (level <= hi_e[sl, None])
        odd = (level >= lo_o[sl, None]) & (level <= hi_o[sl, None])
        np.add(even.view(np.uint8), odd.view(np.uint8), out=out[sl])
    return out


def imr_image(windows: np.ndarray, spacing: int = 1, rows: int = IMR_ROWS) -> np.ndarray:
    """The averaged network image float32 (n, rows, ceil(W / 2)) in [0, 1] (= counts / 2)."""
    return imr_pair_counts(windows, spacing, rows).astype(np.float32) * np.float32(0.5)
