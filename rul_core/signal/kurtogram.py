"""The fast kurtogram: which frequency band of a vibration snapshot holds the impacts of a fault,
so that its envelope spectrum can be band-passed there (J. Antoni, "Fast computation of the
kurtogram for the detection of transient faults", Mechanical Systems and Signal Processing 21
(2007) 108-124).

Implemented as Antoni's **1/3-binary tree filter bank** (his ``Fast_kurtogram.m``, revision
12-2014), not the STFT estimate of the spectral kurtosis (Antoni, MSSP 20 (2006) 282-307): the
tree gives every band of the classic display exactly (the bands of each level tile
[0, fs/2]), each band's value is the kurtosis of one band-filtered, decimated complex signal
(checkable by hand), and it costs a few short FIR filters per level, O(N log N), with no
window length to choose per level.

- **Filters.** A quasi-analytic low-pass ``h``: a 17-tap Hamming FIR with cut-off 0.4 x
  Nyquist (``fir1(16, .4)``) shifted to fs/8, centred on the lower half [0, fs/4] of the
  positive frequencies; ``g``, its mirror at 3 fs/8, on the upper half. For the 1/3 levels a
  25-tap prototype (cut-off 2/3 x 0.4) shifted to fs/12, fs/4 and 5 fs/12 splits a band into
  thirds. Antoni's "short filter is just good enough": each filter's -6 dB band is about 1.6
  times its nominal band (``h``: -0.075 fs to 0.325 fs), so neighbours overlap, and a band's
  edges are nominal.
- **Tree.** Level k holds 2^k complex signals, each filtered by ``h`` and ``g`` and decimated
  by 2 to give the 2^(k+1) of level k + 1 (the upper branch is shifted back by (-1)^n so that
  every band keeps its frequencies in order); the signals of level k, each split into three
  and decimated by 3, give the 3 x 2^k bands of level k + log2(3) (1.6, 2.6, ...). Levels 0,
  1, 1.6, 2, 2.6, ... up to ``max_level``: at level L a band is fs / 2^(L+1) wide.
- **Input: the analytic signal** of the snapshot (its mean removed; ``scipy.signal.hilbert``),
  where Antoni's code feeds the real signal. His short filters reach past 0 Hz and past
  Nyquist, so on a real signal the bands at either end of every level also pass the mirror
  image of their frequencies: their envelope is no longer circular and Gaussian noise reads
  +0.05 to +0.19 there instead of 0 (measured on 32768 samples, levels 0-8). The analytic
  signal has no negative frequencies to let through; the bands are otherwise the same.
- **Kurtosis** of each band's complex envelope c (its mean removed; the first 16 samples, the
  filter's start-up, left out): K = E|c|^4 / (E|c|^2)^2 - 2. It is 0 for Gaussian noise
  (a circular complex Gaussian; spread about 2/sqrt(M) over M samples, ``noise_std``), -1
  for a sine (|c| constant), and large for a band in which short bursts stand out of the
  noise. Level 0 is the whole analytic signal (Antoni's code takes the real signal's
  kurtosis - 3 there; this keeps one definition). Negative values are kept (Antoni's
  display clips them to 0; the figure's colour scale starts at 0).

The band with the largest kurtosis is the one to band-pass before the envelope:
:func:`suggest_band` gives it as ``(low, high)`` for
:class:`rul_core.signal.spectrum.SpectrumSettings`. :func:`kurtogram` takes one snapshot or a
stack of them; with several it averages their maps (the Data page offers the last few
snapshots of a run: a fault's band is the one that stays impulsive as the bearing wears, and
the mean of several maps varies less than one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import firwin, hilbert, lfilter

from rul_core.errors import InputError
from rul_core.signal.spectrum import check_fs, validate_band

#: Taps of the binary tree's prototype low-pass (Antoni: order 16) and its cut-off (x Nyquist).
BINARY_TAPS = 17
CUTOFF = 0.4
#: Taps of the ternary (1/3) prototype: order 3/2 x 16.
TERNARY_TAPS = 25
#: Samples a band of the deepest level keeps at least: max_level = floor(log2 N) - 7
#: (Antoni: "recommended to stay by a factor 1/8 below" log2 N).
MIN_DEEPEST_SAMPLES = 128
#: A band's lower edge at 0 Hz (or upper edge at Nyquist) moves inside by this fraction of the
#: band's width: a band-pass needs 0 < low < high < fs/2.
EDGE_MARGIN = 0.01
#: Snapshots at the end of a run whose maps the Data page can average (the most degraded).
LATE_SNAPSHOTS = 5
#: A band's energy below this fraction of the snapshot's mean square counts as empty (K = 0).
EMPTY_BAND = 1e-24


@dataclass(frozen=True)
class FilterBank:
    """Antoni's analysis filters: ``h`` (lower half band, centred at fs/8), ``g`` (upper half,
    3 fs/8), ``h1``, ``h2``, ``h3`` (thirds, centred at fs/12, fs/4, 5 fs/12)."""

    h: np.ndarray
    g: np.ndarray
    h1: np.ndarray
    h2: np.ndarray
    h3: np.ndarray

    @property
    def skip(self) -> int:
        """Samples left out at the start of every band (the filter's start-up): len(h) - 1."""
        return self.h.size - 1


@lru_cache(maxsize=1)
def filter_bank() -> FilterBank:
    """The quasi-analytic filters of ``Fast_kurtogram.m`` (scipy's ``firwin`` is MATLAB's
    ``fir1``: Hamming window, unit gain at DC)."""
    n = np.arange(BINARY_TAPS)
    h = firwin(BINARY_TAPS, CUTOFF) * np.exp(2j * np.pi * n / 8.0)
    m = np.arange(BINARY_TAPS - 1)
    g = h[BINARY_TAPS - 2::-1] * (-1.0) ** (m + 1)  # h reversed (its last tap dropped), x (-1)^n
    k = np.arange(TERNARY_TAPS)
    h1 = firwin(TERNARY_TAPS, 2.0 / 3.0 * CUTOFF) * np.exp(2j * np.pi * k / 12.0)
    for a in (h, g, h1):
        a.setflags(write=False)
    h2 = h1 * np.exp(2j * np.pi * k / 6.0)
    h3 = h1 * np.exp(2j * np.pi * k / 3.0)
    h2.setflags(write=False)
    h3.setflags(write=False)
    return FilterBank(h, g, h1, h2, h3)


def complex_kurtosis(c: np.ndarray, skip: int = 0, floor: float = 0.0) -> np.ndarray:
    """E|c|^4 / (E|c|^2)^2 - 2 along the last axis of ``c`` after its first ``skip`` samples,
    its mean removed; 0 where E|c|^2 <= ``floor`` (an empty band)."""
    c = np.asarray(c)[..., skip:]
    c = c - c.mean(axis=-1, keepdims=True)
    p = c.real**2 + c.imag**2
    e2 = p.mean(axis=-1)
    e4 = (p * p).mean(axis=-1)
    full = e2 > floor
    out = np.zeros(e2.shape)
    np.divide(e4, e2 * e2, out=out, where=full)
    return np.where(full, out - 2.0, 0.0)


def max_level_for(n_samples: int) -> int:
    """The deepest level a snapshot of ``n_samples`` allows: floor(log2 n) - 7 (its narrowest
    bands keep at least :data:`MIN_DEEPEST_SAMPLES` samples)."""
    if n_samples < 1:
        return -1
    return math.floor(math.log2(n_samples)) - round(math.log2(MIN_DEEPEST_SAMPLES))


def levels_of(max_level: int) -> np.ndarray:
    """The levels of a kurtogram up to ``max_level``: 0, 1, 1.585, 2, 2.585, ..., max_level
    (k + log2(3) - 1 between k and k + 1): 2 x max_level of them."""
    out = [0.0]
    for k in range(1, int(max_level) + 1):
        out.append(float(k))
        if k < max_level:
            out.append(k - 1 + math.log2(3.0))
    return np.array(out)


def band_count(level: float) -> int:
    """Bands of a level: 2^k at level k, 3 x 2^(k-1) at level k + log2(3) - 1."""
    return round(2.0 ** level)


def band_edges(level: float, fs: float) -> np.ndarray:
    """The band edges of ``level`` (Hz): ``band_count(level) + 1`` values from 0 to fs/2, each
    band fs / 2^(level+1) wide."""
    n = band_count(level)
    return np.arange(n + 1) * (fs / 2.0 / n)


@dataclass(frozen=True)
class BestBand:
    """The band with the largest kurtosis: its ``level``, its ``index`` among the level's bands
    (from 0 Hz up), ``low`` and ``high`` edges, ``centre`` and ``bandwidth`` (Hz), its
    ``kurtosis`` and ``noise_std``, the spread of that estimate on Gaussian noise at this level
    (2 / sqrt(samples)). The largest value of a map of pure noise is typically 2 to 8 times
    its band's spread (rarely more, at the deepest levels: the estimate's tail is long), so
    only a kurtosis well above that marks impacts."""

    level: float
    index: int
    low: float
    high: float
    centre: float
    bandwidth: float
    kurtosis: float
    noise_std: float


@dataclass(frozen=True)
class Kurtogram:
    """A fast kurtogram: per level (``levels``: 0, 1, 1.585, ...), the ``kurtosis`` of each
    band (low to high frequency), the band ``edges`` (Hz, from 0 to fs/2), ``noise_std`` (the
    spread of a Gaussian band's estimate, per level), and the ``best`` band over the whole
    map. ``snapshots``: how many snapshots' maps were averaged (1: one snapshot)."""

    fs: float
    n_samples: int
    levels: np.ndarray
    kurtosis: tuple[np.ndarray, ...]
    edges: tuple[np.ndarray, ...]
    noise_std: np.ndarray
    best: BestBand
    snapshots: int = 1

    @property
    def max_level(self) -> int:
        """The deepest level."""
        return round(float(self.levels[-1]))

    @property
    def bandwidths(self) -> np.ndarray:
        """Band width of each level (Hz): fs / 2^(level+1)."""
        return self.fs / 2.0 ** (self.levels + 1.0)

    def centres(self, i: int) -> np.ndarray:
        """Band centres of the ``i``-th level (Hz)."""
        e = self.edges[i]
        return (e[:-1] + e[1:]) / 2.0

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """The classic display: (column centres in Hz, matrix levels x 3 x 2^max_level), each
        band's value repeated over the columns it covers (Antoni's ``Kwav``)."""
        cols = 3 * 2 ** self.max_level
        width = self.fs / 2.0 / cols
        freqs = (np.arange(cols) + 0.5) * width
        matrix = np.stack([np.repeat(k, cols // k.size) for k in self.kurtosis])
        return freqs, matrix


def _analytic_level_zero(x: np.ndarray) -> np.ndarray:
    return hilbert(x - x.mean(axis=-1, keepdims=True), axis=-1)


def _split(sig: np.ndarray, taps: Sequence[np.ndarray], step: int) -> list[np.ndarray]:
    """Each filter of ``taps`` along the last axis, kept every ``step``-th output from the
    ``step``-th on (MATLAB's ``y(step:step:end)``)."""
    return [lfilter(t, 1.0, sig, axis=-1)[..., step - 1::step] for t in taps]


def _kurtosis_maps(x: np.ndarray, max_level: int) -> tuple[list[np.ndarray], list[int]]:
    """The kurtosis of every band of every level for ``x`` (..., samples): per level an array
    (..., bands), and the samples each level's kurtosis was taken over."""
    fb = filter_bank()
    floor = EMPTY_BAND * float(np.mean(x * x)) if x.size else 0.0
    sig = _analytic_level_zero(x)[..., None, :]  # level k: (..., 2^k, samples / 2^k)
    maps = {0.0: complex_kurtosis(sig, 0, floor)}
    used: dict[float, int] = {0.0: x.shape[-1]}
    third = math.log2(3.0)
    for k in range(max_level + 1):
        if k >= 1:
            maps[float(k)] = complex_kurtosis(sig, fb.skip, floor)
            used[float(k)] = sig.shape[-1] - fb.skip
        if k <= max_level - 2:  # thirds of level k: level k + log2(3), 3 x 2^k bands
            parts = _split(sig, (fb.h1, fb.h2, fb.h3), 3)
            thirds = np.stack(parts, axis=-2)  # (..., 2^k, 3, n)
            thirds = thirds.reshape(*thirds.shape[:-3], -1, thirds.shape[-1])
            maps[k + third] = complex_kurtosis(thirds, fb.skip, floor)
            used[k + third] = thirds.shape[-1] - fb.skip
        if k < max_level:
            a, d = _split(sig, (fb.h, fb.g), 2)
            d = d * (-1.0) ** np.arange(1, d.shape[-1] + 1)  # upper half back in order
            nxt = np.empty((*a.shape[:-2], 2 * a.shape[-2], a.shape[-1]), dtype=complex)
            nxt[..., 0::2, :] = a
            nxt[..., 1::2, :] = d
            sig = nxt
    order = sorted(maps)
    return [maps[lv] for lv in order], [used[lv] for lv in order]


def kurtogram(x: np.ndarray, fs: float, max_level: int | None = None,
              min_bandwidth_hz: float | None = None) -> Kurtogram:
    """The fast kurtogram of ``x``: one snapshot (samples,) or several (snapshots, samples),
    whose maps are averaged. ``max_level``: the deepest level (default and upper limit:
    :func:`max_level_for` the snapshot's length, at least 1: 256 samples or more).
    ``min_bandwidth_hz``: the best band is chosen among bands at least this wide (the map
    keeps every level): an envelope spectrum only shows lines below its band's width."""
    fs = check_fs(fs)
    a = np.asarray(x, dtype=np.float64)
    if a.ndim not in (1, 2):
        raise InputError(f"signal: expected (samples,) or (snapshots, samples), got shape "
                         f"{a.shape}")
    if a.ndim == 2 and a.shape[0] == 0:
        raise InputError("signal: no snapshot given")
    n = a.shape[-1]
    limit = max_level_for(n)
    if limit < 1:
        raise InputError(f"signal: a kurtogram needs at least {2 * MIN_DEEPEST_SAMPLES} "
                         f"samples (level 1: {MIN_DEEPEST_SAMPLES} per band), got {n}")
    if not np.isfinite(a).all():
        raise InputError("signal: holds NaN or infinite samples")
    if max_level is None:
        max_level = limit
    if int(max_level) != max_level or not 1 <= max_level <= limit:
        raise InputError(f"max_level: expected a whole level from 1 to {limit} for {n} "
                         f"samples, got {max_level!r}")
    max_level = int(max_level)
    maps, used = _kurtosis_maps(a, max_level)
    count = 1 if a.ndim == 1 else a.shape[0]
    kurt = tuple(np.asarray(m.reshape(-1, m.shape[-1]).mean(axis=0) if a.ndim == 2 else m,
                            dtype=np.float64) for m in maps)
    levels = levels_of(max_level)
    edges = tuple(band_edges(lv, fs) for lv in levels)
    noise = 2.0 / np.sqrt(np.asarray(used, dtype=np.float64) * count)
    best = _best(levels, kurt, edges, noise, fs, min_bandwidth_hz)
    return Kurtogram(float(fs), n, levels, kurt, edges, noise, best, count)


def _best(levels: np.ndarray, kurt: Sequence[np.ndarray], edges: Sequence[np.ndarray],
          noise: np.ndarray, fs: float, min_bandwidth_hz: float | None) -> BestBand:
    widths = fs / 2.0 ** (levels + 1.0)
    allowed = np.ones(levels.size, dtype=bool)
    if min_bandwidth_hz is not None:
        if not (math.isfinite(min_bandwidth_hz) and 0 <= min_bandwidth_hz <= fs / 2.0):
            raise InputError(f"min_bandwidth_hz: expected 0 to {fs / 2.0:g} Hz, got "
                             f"{min_bandwidth_hz!r}")
        allowed = widths >= min_bandwidth_hz * (1.0 - 1e-12)  # level 0 always qualifies
    best = (-math.inf, 0, 0)
    for i in np.flatnonzero(allowed):
        j = int(np.argmax(kurt[i]))
        if kurt[i][j] > best[0]:
            best = (float(kurt[i][j]), int(i), j)
    value, i, j = best
    lo, hi = float(edges[i][j]), float(edges[i][j + 1])
    return BestBand(float(levels[i]), j, lo, hi, (lo + hi) / 2.0, hi - lo, value,
                    float(noise[i]))


def envelope_band(best: BestBand, fs: float) -> tuple[tuple[float, float], str]:
    """``best`` as a band-pass ``(low, high)`` that :func:`spectrum.validate_band` accepts, and
    what was changed to get there ("" when nothing): an edge at 0 Hz or at Nyquist moves inside
    by :data:`EDGE_MARGIN` of the band's width (a band-pass needs 0 < low < high < fs/2)."""
    nyquist = fs / 2.0
    margin = EDGE_MARGIN * best.bandwidth
    lo, hi = best.low, best.high
    said = []
    if lo <= 0.0:
        lo = margin
        said.append(f"lower edge 0 Hz moved up to {lo:.3g} Hz")
    if hi >= nyquist:
        hi = nyquist - margin
        said.append(f"upper edge {nyquist:g} Hz (Nyquist) moved down to {hi:.6g} Hz")
    band = validate_band((lo, hi), fs)
    text = ("; ".join(said) + " (a band-pass needs edges strictly between 0 Hz and Nyquist)"
            if said else "")
    return band, text


def suggest_band(x: np.ndarray, fs: float, max_level: int | None = None,
                 min_bandwidth_hz: float | None = None
                 ) -> tuple[tuple[float, float], Kurtogram, str]:
    """The envelope band-pass the kurtogram suggests for ``x`` (one snapshot, or several whose
    maps are averaged): ``(low, high)`` ready for ``SpectrumSettings(band=...)``, the
    kurtogram, and a note on any edge moved inside (0, Nyquist) ("" when none)."""
    kg = kurtogram(x, fs, max_level, min_bandwidth_hz)
    band, note = envelope_band(kg.best, fs)
    return band, kg, note


def late_snapshots(n_snapshots: int, count: int = LATE_SNAPSHOTS) -> np.ndarray:
    """Indices of the last ``count`` snapshots of a run (all when it has fewer): the most
    degraded, where a fault's band is the most impulsive."""
    if int(count) != count or count < 1:
        raise InputError(f"count: expected a whole number of snapshots >= 1, got {count!r}")
    return np.arange(max(0, int(n_snapshots) - int(count)), int(n_snapshots))


def describe(kg: Kurtogram, band: Sequence[float], note: str = "",
             max_hz: float | None = None) -> str:
    """One paragraph on the band chosen: where the kurtosis is largest, how far above a
    Gaussian band's spread, the band-pass used (with ``note``: an edge moved inside), and,
    when ``max_hz`` (the envelope spectrum's upper frequency) exceeds the band's width, that
    lines above that width cannot show."""
    b = kg.best
    of = "" if kg.snapshots == 1 else f" (mean of {kg.snapshots} snapshots' kurtograms)"
    text = (f"Largest kurtosis {b.kurtosis:.3g} at level {b.level:.1f}: "
            f"{b.low:.0f}–{b.high:.0f} Hz (centre {b.centre:.0f} Hz, {b.bandwidth:.0f} Hz "
            f"wide){of}; a band of Gaussian noise at this level reads 0 ± {b.noise_std:.2g}. "
            f"Suggested band-pass {band[0]:.6g}–{band[1]:.6g} Hz")
    text += f": {note}." if note else "."
    if max_hz is not None and b.bandwidth < max_hz:
        text += (f" This band's envelope holds modulation up to about its width, "
                 f"{b.bandwidth:.0f} Hz: lines above that cannot show.")
    return text
