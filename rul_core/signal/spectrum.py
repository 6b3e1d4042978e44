"""Frequency-domain inspection of a bearing: amplitude and envelope spectra of a snapshot, the
spectrum over life, and the bearing's characteristic fault frequencies.

- **Amplitude spectrum**: one-sided, Hann window (scipy's periodic ``hann``), amplitude-correct
  scaling: a sine of amplitude A lying on a bin shows a peak of A, in the signal's unit (peak,
  not RMS, not a density). Between bins the Hann window reads up to 15 % (1.42 dB) low
  (scalloping); the frequency resolution is fs / N.
- **Envelope spectrum**: optional zero-phase Butterworth band-pass around a structural
  resonance (``scipy.signal.butter`` + ``sosfiltfilt``), the magnitude of the analytic signal
  (``scipy.signal.hilbert``) with its mean removed, and the amplitude spectrum of that: an
  impulse train that excites the resonance at a fault's rate shows a line at that rate.
- **Spectrum over life**: one row per snapshot (evenly decimated to a few hundred rows),
  band-limited to a maximum frequency, optionally in dB, computed with one batched FFT per chunk
  of snapshots, with progress and cancellation (:mod:`rul_core.progress`).
- **Fault frequencies** of a rolling-element bearing of ``n`` elements of diameter d on a pitch
  circle of diameter D at contact angle a, for a shaft (inner ring) frequency f_r and a fixed
  outer ring: FTF = f_r/2 (1 - d/D cos a), BPFO = n f_r/2 (1 - d/D cos a),
  BPFI = n f_r/2 (1 + d/D cos a), BSF = D/(2d) f_r (1 - (d/D cos a)^2). A ball defect strikes
  both races, so its envelope line often shows at 2 x BSF.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.fft as sfft
from scipy.signal import butter, find_peaks, get_window, hilbert, sosfiltfilt

from rul_core.errors import InputError
from rul_core.progress import CancelToken, ProgressFn, check, emit

if TYPE_CHECKING:
    from rul_core.data.run import Run

#: Spectrum kinds.
AMPLITUDE = "amplitude"
ENVELOPE = "envelope"
KINDS = (ENVELOPE, AMPLITUDE)

#: Default envelope band (Hz), clamped to the sampling rate by :func:`default_band`: bearing
#: housings ring in the low kHz, above the shaft harmonics and gear/imbalance lines.
DEFAULT_BAND_HZ = (2000.0, 10000.0)
#: Default upper frequency of an envelope spectrum (Hz): several harmonics of BPFI at the
#: benchmarks' shaft speeds (BPFI of the XJTU-SY bearing at 40 Hz: 197 Hz).
DEFAULT_ENVELOPE_MAX_HZ = 1000.0
#: Rows of a spectrum over life by default: snapshots evenly spaced, first and last kept.
DEFAULT_LIFE_ROWS = 300
#: Frequency columns of a spectrum over life at most; more bins are pooled by their maximum.
DEFAULT_LIFE_BINS = 2048
#: Samples per batched FFT of a spectrum over life (rows x samples), about 16 MB of float64.
CHUNK_SAMPLES = 1 << 21
#: Floor of the dB scale relative to 1 unit (-200 dB), so that a zero does not give -inf.
DB_FLOOR = 1e-10


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class BearingGeometry:
    """Rolling-element bearing geometry: element count, element and pitch diameters (mm) and
    contact angle (degrees). The fault frequencies assume a rotating inner ring and a fixed
    outer ring, no slip."""

    n_balls: int
    ball_diameter_mm: float
    pitch_diameter_mm: float
    contact_angle_deg: float = 0.0

    def __post_init__(self) -> None:
        if int(self.n_balls) != self.n_balls or self.n_balls < 1:
            raise InputError(f"n_balls: expected a whole number of rolling elements >= 1, "
                             f"got {self.n_balls!r}")
        if not (math.isfinite(self.ball_diameter_mm) and self.ball_diameter_mm > 0):
            raise InputError(f"ball_diameter_mm: expected a diameter > 0 mm, "
                             f"got {self.ball_diameter_mm!r}")
        if not (math.isfinite(self.pitch_diameter_mm)
                and self.pitch_diameter_mm > self.ball_diameter_mm):
            raise InputError(f"pitch_diameter_mm: expected a pitch diameter larger than the "
                             f"ball diameter {self.ball_diameter_mm:g} mm, "
                             f"got {self.pitch_diameter_mm!r}")
        if not (math.isfinite(self.contact_angle_deg) and 0 <= self.contact_angle_deg < 90):
            raise InputError(f"contact_angle_deg: expected 0 <= angle < 90 degrees, "
                             f"got {self.contact_angle_deg!r}")
        object.__setattr__(self, "n_balls", int(self.n_balls))

    @property
    def ratio(self) -> float:
        """d/D cos a."""
        return (self.ball_diameter_mm / self.pitch_diameter_mm
                * math.cos(math.radians(self.contact_angle_deg)))

    def ftf(self, shaft_hz: float) -> float:
        """Fundamental train (cage) frequency (Hz)."""
        return shaft_hz / 2.0 * (1.0 - self.ratio)

    def bpfo(self, shaft_hz: float) -> float:
        """Ball-pass frequency of the outer race (Hz)."""
        return self.n_balls / 2.0 * shaft_hz * (1.0 - self.ratio)

    def bpfi(self, shaft_hz: float) -> float:
        """Ball-pass frequency of the inner race (Hz)."""
        return self.n_balls / 2.0 * shaft_hz * (1.0 + self.ratio)

    def bsf(self, shaft_hz: float) -> float:
        """Ball spin frequency (Hz)."""
        return (self.pitch_diameter_mm / (2.0 * self.ball_diameter_mm) * shaft_hz
                * (1.0 - self.ratio**2))

    def frequencies(self, shaft_hz: float) -> dict[str, float]:
        """``{"FTF", "BPFO", "BPFI", "BSF"}`` in Hz at ``shaft_hz``."""
        return {"FTF": self.ftf(shaft_hz), "BPFO": self.bpfo(shaft_hz),
                "BPFI": self.bpfi(shaft_hz), "BSF": self.bsf(shaft_hz)}


@dataclass(frozen=True)
class GeometryPreset:
    """A bearing geometry with the publication that gives its numbers."""

    geometry: BearingGeometry
    source: str


#: LDK UER204, the bearing of XJTU-SY.
LDK_UER204 = BearingGeometry(n_balls=8, ball_diameter_mm=7.92, pitch_diameter_mm=34.55,
                             contact_angle_deg=0.0)
UER204_PRESET = "LDK UER204 (XJTU-SY)"
#: The choices besides the presets: no geometry (shaft harmonics only), or one entered.
SHAFT_ONLY = "None (shaft harmonics only)"
CUSTOM = "Custom"
#: Only geometries a publication gives. PRONOSTIA/FEMTO's challenge documentation gives none:
#: its bearings get shaft harmonics until the user enters a geometry.
GEOMETRY_PRESETS: dict[str, GeometryPreset] = {
    UER204_PRESET: GeometryPreset(
        LDK_UER204,
        "B. Wang, Y. Lei, N. Li, N. Li, \"A hybrid prognostics approach for estimating "
        "remaining useful life of rolling element bearings\", IEEE Trans. Reliability 69(1), "
        "2020 (the XJTU-SY bearing's parameters)"),
}


def default_preset(layout: str) -> str | None:
    """The geometry preset of a dataset layout: UER204 for XJTU-SY, none otherwise."""
    return UER204_PRESET if layout == "xjtu" else None


@dataclass(frozen=True)
class FaultMarker:
    """One characteristic frequency to mark: ``name`` (f_r, FTF, BPFO, BPFI, BSF), harmonic
    ``order`` (1 = fundamental) and ``frequency`` (Hz)."""

    name: str
    order: int
    frequency: float

    @property
    def label(self) -> str:
        """'BPFO', '2×BPFO'."""
        return self.name if self.order == 1 else f"{self.order}×{self.name}"


#: Marker names in drawing order.
MARKER_NAMES = ("f_r", "FTF", "BPFO", "BPFI", "BSF")


def fault_frequencies(shaft_hz: float, geometry: BearingGeometry | None) -> dict[str, float]:
    """The shaft frequency ``f_r`` and, with a geometry, FTF, BPFO, BPFI and BSF (Hz)."""
    out = {"f_r": float(shaft_hz)}
    if geometry is not None:
        out.update(geometry.frequencies(float(shaft_hz)))
    return out


def fault_markers(shaft_hz: float, geometry: BearingGeometry | None, harmonics: int = 3,
                  max_hz: float | None = None) -> list[FaultMarker]:
    """The first ``harmonics`` multiples of each of :func:`fault_frequencies` up to
    ``max_hz``; none when the shaft speed is unknown (``shaft_hz`` <= 0)."""
    if int(harmonics) != harmonics or harmonics < 1:
        raise InputError(f"harmonics: expected a whole number >= 1, got {harmonics!r}")
    if not shaft_hz or shaft_hz <= 0 or not math.isfinite(shaft_hz):
        return []
    limit = math.inf if max_hz is None else float(max_hz)
    return [FaultMarker(name, k, k * f)
            for name, f in fault_frequencies(shaft_hz, geometry).items()
            for k in range(1, int(harmonics) + 1) if k * f <= limit]


def nearest_marker(frequency: float, markers: Sequence[FaultMarker]) -> FaultMarker | None:
    """The marker closest to ``frequency`` (None when there is none)."""
    return min(markers, key=lambda m: abs(m.frequency - frequency), default=None)


# --------------------------------------------------------------------------- spectra


@dataclass(frozen=True)
class Spectrum:
    """One-sided spectrum: ``values`` (..., bins) at ``freqs`` (Hz), in ``unit``.

    ``kind``: amplitude or envelope; ``band``: the envelope's band-pass (Hz) or None;
    ``resolution``: fs / N (Hz), the bin spacing before any pooling."""

    freqs: np.ndarray
    values: np.ndarray
    unit: str
    kind: str
    resolution: float
    band: tuple[float, float] | None = None


def _as_samples(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0 or a.shape[-1] < 2:
        raise InputError(f"signal: expected at least 2 samples along the last axis, "
                         f"got shape {a.shape}")
    return a


def check_fs(fs: float) -> float:
    """``fs`` as a float when it is a finite sampling rate > 0 Hz; else an :class:`InputError`
    naming it."""
    if not (math.isfinite(fs) and fs > 0):
        raise InputError(f"fs: expected a sampling rate > 0 Hz, got {fs!r}")
    return float(fs)


def amplitude_spectrum(x: np.ndarray, fs: float, unit: str = "g") -> Spectrum:
    """Hann-windowed one-sided amplitude spectrum of ``x`` (..., samples) along its last axis.

    Scaled by 2 / sum(window) (1 / sum(window) at DC and, for even N, at Nyquist): a sine
    of amplitude A on a bin reads A; the values are peak amplitudes in ``unit``.
    """
    fs = check_fs(fs)
    a = _as_samples(x)
    n = a.shape[-1]
    w = get_window("hann", n)
    spec = np.abs(sfft.rfft(a * w, axis=-1)) * (2.0 / w.sum())
    spec[..., 0] /= 2.0
    if n % 2 == 0:
        spec[..., -1] /= 2.0
    return Spectrum(sfft.rfftfreq(n, 1.0 / fs), spec, f"{unit} (peak)", AMPLITUDE, fs / n)


def validate_band(band: Sequence[float], fs: float) -> tuple[float, float]:
    """``band`` as (low, high) Hz with 0 < low < high < fs/2; otherwise an
    :class:`InputError` naming the edge and the limit."""
    fs = check_fs(fs)
    try:
        lo, hi = (float(v) for v in band)
    except (TypeError, ValueError):
        raise InputError(f"band: expected two frequencies (low, high) in Hz, got {band!r}"
                         ) from None
    nyquist = fs / 2.0
    if not (math.isfinite(lo) and lo > 0):
        raise InputError(f"band: the lower edge must be above 0 Hz, got {lo:g} Hz")
    if not (math.isfinite(hi) and hi < nyquist):
        raise InputError(f"band: the upper edge {hi:g} Hz must be below the Nyquist frequency "
                         f"{nyquist:g} Hz (half the sampling rate {fs:g} Hz)")
    if lo >= hi:
        raise InputError(f"band: the lower edge {lo:g} Hz must be below the upper edge "
                         f"{hi:g} Hz")
    return lo, hi


def default_band(fs: float) -> tuple[float, float]:
    """:data:`DEFAULT_BAND_HZ` clamped to ``fs``: the upper edge at most 80 % of Nyquist, the
    lower at most a quarter of the upper (2–10 kHz at 25.6 kHz)."""
    nyquist = check_fs(fs) / 2.0
    hi = min(DEFAULT_BAND_HZ[1], 0.8 * nyquist)
    return min(DEFAULT_BAND_HZ[0], hi / 4.0), hi


def default_max_hz(kind: str, fs: float) -> float:
    """The upper frequency shown by default: Nyquist for an amplitude spectrum,
    :data:`DEFAULT_ENVELOPE_MAX_HZ` (at most Nyquist) for an envelope spectrum."""
    nyquist = check_fs(fs) / 2.0
    return min(DEFAULT_ENVELOPE_MAX_HZ, nyquist) if kind == ENVELOPE else nyquist


def bandpass(x: np.ndarray, fs: float, band: Sequence[float], order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth band-pass of ``x`` (..., samples) along its last axis
    (``order`` per pass, applied forwards and backwards)."""
    lo, hi = validate_band(band, fs)
    if int(order) != order or order < 1:
        raise InputError(f"order: expected a whole filter order >= 1, got {order!r}")
    a = _as_samples(x)
    sos = butter(int(order), [lo, hi], btype="bandpass", fs=float(fs), output="sos")
    # scipy's default odd extension at each end (its correction for zero coefficients is 0:
    # no band-pass section has one); a snapshot needs more samples than that, else n - 1
    edge = 3 * (2 * len(sos) + 1)
    n = a.shape[-1]
    return sosfiltfilt(sos, a, axis=-1, padlen=edge if n > edge else n - 1)


def envelope(x: np.ndarray, fs: float, band: Sequence[float] | None = None,
             order: int = 4) -> np.ndarray:
    """The Hilbert envelope of ``x`` (..., samples), band-passed first when ``band`` is given,
    with its mean removed (so that the envelope spectrum has no DC line)."""
    a = _as_samples(x)
    a = bandpass(a, fs, band, order) if band is not None else a - a.mean(axis=-1, keepdims=True)
    env = np.abs(hilbert(a, axis=-1))
    return env - env.mean(axis=-1, keepdims=True)


def envelope_spectrum(x: np.ndarray, fs: float, band: Sequence[float] | None = None,
                      order: int = 4, unit: str = "g") -> Spectrum:
    """The amplitude spectrum (:func:`amplitude_spectrum`) of :func:`envelope` of ``x``: peak
    amplitudes of the envelope's modulation, in ``unit``."""
    spec = amplitude_spectrum(envelope(x, fs, band, order), fs, unit)
    chosen = validate_band(band, fs) if band is not None else None
    return Spectrum(spec.freqs, spec.values, f"{unit} (envelope, peak)", ENVELOPE,
                    spec.resolution, chosen)


@dataclass(frozen=True)
class SpectrumSettings:
    """What spectrum to compute: ``kind`` (envelope or amplitude), the envelope's ``band``
    (Hz, None: no band-pass; ignored for an amplitude spectrum), the highest frequency kept
    ``max_hz`` (None: Nyquist) and the band-pass ``order``."""

    kind: str = ENVELOPE
    band: tuple[float, float] | None = None
    max_hz: float | None = None
    order: int = 4

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.max_hz is not None and not (math.isfinite(self.max_hz) and self.max_hz > 0):
            raise InputError(f"max_hz: expected a frequency > 0 Hz, got {self.max_hz!r}")


def compute_spectrum(x: np.ndarray, fs: float, settings: SpectrumSettings,
                     unit: str = "g") -> Spectrum:
    """The spectrum ``settings`` names of ``x`` (..., samples), cut at ``settings.max_hz``."""
    if settings.kind == ENVELOPE:
        spec = envelope_spectrum(x, fs, settings.band, settings.order, unit)
    else:
        spec = amplitude_spectrum(x, fs, unit)
    if settings.max_hz is None:
        return spec
    keep = spec.freqs <= settings.max_hz
    return Spectrum(spec.freqs[keep], spec.values[..., keep], spec.unit, spec.kind,
                    spec.resolution, spec.band)


@dataclass(frozen=True)
class Peak:
    """A local maximum of a spectrum."""

    frequency: float
    value: float
    bin: int


def top_peaks(spectrum: Spectrum, n: int = 5, min_hz: float = 0.0,
              max_hz: float | None = None) -> list[Peak]:
    """The ``n`` largest local maxima of a one-row spectrum within [min_hz, max_hz], largest
    first (a maximum at the edge of the range counts)."""
    values = np.asarray(spectrum.values, dtype=np.float64)
    if values.ndim != 1:
        raise InputError(f"spectrum: expected one row, got shape {values.shape}")
    hi = math.inf if max_hz is None else float(max_hz)
    inside = np.flatnonzero((spectrum.freqs >= min_hz) & (spectrum.freqs <= hi))
    if inside.size == 0:
        return []
    part = values[inside]
    padded = np.concatenate([[-np.inf], part, [-np.inf]])
    idx, _ = find_peaks(padded)
    idx = idx - 1
    order = idx[np.argsort(part[idx], kind="stable")[::-1]][: max(int(n), 0)]
    return [Peak(float(spectrum.freqs[inside[i]]), float(part[i]), int(inside[i]))
            for i in order]


# --------------------------------------------------------------------------- over life


def life_rows(n_snapshots: int, max_rows: int | None = DEFAULT_LIFE_ROWS) -> np.ndarray:
    """Snapshot indices of a spectrum over life: all of them, or ``max_rows`` evenly spaced
    from the first to the last (failure) when there are more."""
    n = int(n_snapshots)
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    if max_rows < 2:
        raise InputError(f"max_rows: expected at least 2 rows, got {max_rows!r}")
    return np.unique(np.linspace(0, n - 1, int(max_rows)).round().astype(np.int64))


def pool_bins(freqs: np.ndarray, values: np.ndarray, max_bins: int | None
              ) -> tuple[np.ndarray, np.ndarray, int]:
    """At most ``max_bins`` columns: groups of g adjacent bins replaced by their maximum (every
    peak survives, at g times the bin spacing) at the group's mean frequency. Returns
    (freqs, values, g)."""
    n = freqs.size
    if max_bins is None or n <= max_bins:
        return freqs, values, 1
    g = math.ceil(n / int(max_bins))
    starts = np.arange(0, n, g)
    pooled = np.maximum.reduceat(values, starts, axis=-1)
    centres = np.add.reduceat(freqs, starts) / np.diff(np.append(starts, n))
    return centres, pooled, g


@dataclass(frozen=True)
class LifeSpectrum:
    """A spectrum per snapshot over a run: ``values`` (rows, bins) at ``freqs`` (Hz) for the
    snapshots ``snapshots`` (indices in the run) recorded at ``times_s``.

    ``unit``: that of the values (``dB re 1 <unit>`` when ``db``); ``pooled``: bins per column
    (1: every FFT bin); ``resolution``: the FFT's bin spacing fs / N (Hz)."""

    freqs: np.ndarray
    values: np.ndarray
    snapshots: np.ndarray
    times_s: np.ndarray
    unit: str
    kind: str
    resolution: float
    db: bool
    pooled: int
    band: tuple[float, float] | None
    channel: str
    total_snapshots: int
    notes: list[str]


#: ``compute(stack, rows, fs, settings) -> Spectrum`` of a (rows, samples) stack, ``rows`` the
#: stack's snapshot indices: :func:`compute_spectrum` by default; the app passes a cached one.
ComputeFn = Callable[[np.ndarray, np.ndarray, float, SpectrumSettings], Spectrum]


def _direct(stack: np.ndarray, rows: np.ndarray, fs: float, settings: SpectrumSettings
            ) -> Spectrum:
    return compute_spectrum(stack, fs, settings)


def spectrum_over_life(
    snapshots: np.ndarray,
    fs: float,
    settings: SpectrumSettings,
    *,
    max_rows: int | None = DEFAULT_LIFE_ROWS,
    max_bins: int | None = DEFAULT_LIFE_BINS,
    db: bool = False,
    timestamps: np.ndarray | None = None,
    unit: str = "g",
    channel: str = "",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    compute: ComputeFn | None = None,
) -> LifeSpectrum:
    """The spectrum of ``settings`` for every snapshot of one channel, ``snapshots``
    (snapshots, samples), as a matrix for a waterfall or heatmap.

    At most ``max_rows`` snapshots (:func:`life_rows`: evenly spaced, first and last kept;
    None: all), at most ``max_bins`` frequency columns (:func:`pool_bins`), optionally in dB
    re 1 unit (floor :data:`DB_FLOOR`). Computed in chunks of about :data:`CHUNK_SAMPLES`
    samples, each one batched FFT (and one batched band-pass and Hilbert transform), with a
    progress event and a cancel check per chunk. ``compute(stack, rows, fs, settings)`` (the
    rows' indices among the snapshots given) replaces :func:`compute_spectrum`, e.g. by a
    cached call; it must return the same.
    """
    x = np.asarray(snapshots)
    if x.ndim != 2:
        raise InputError(f"snapshots: expected (snapshots, samples) of one channel, "
                         f"got shape {x.shape}")
    n_snap, n_samples = x.shape
    if n_snap == 0:
        raise InputError("snapshots: the run holds no snapshot")
    rows = life_rows(n_snap, max_rows)
    per_chunk = max(1, CHUNK_SAMPLES // max(n_samples, 1))
    compute = compute or _direct
    parts: list[np.ndarray] = []
    spec: Spectrum | None = None
    total = rows.size
    emit(progress, "spectrum over life", 0, total, f"0/{total} snapshots")
    for start in range(0, total, per_chunk):
        check(cancel)
        chunk = rows[start:start + per_chunk]
        spec = compute(x[chunk], chunk, fs, settings)
        parts.append(np.asarray(spec.values, dtype=np.float64).reshape(chunk.size, -1))
        done = start + chunk.size
        emit(progress, "spectrum over life", done, total, f"{done}/{total} snapshots")
    assert spec is not None
    freqs, values, g = pool_bins(spec.freqs, np.concatenate(parts, axis=0), max_bins)
    shown_unit = spec.unit
    if db:
        values = 20.0 * np.log10(np.maximum(values, DB_FLOOR))
        shown_unit = f"dB re 1 {unit}"
    times = (np.asarray(timestamps, dtype=np.float64)[rows] if timestamps is not None
             else rows.astype(np.float64))
    notes = []
    if rows.size < n_snap:
        notes.append(f"{rows.size} of {n_snap} snapshots, evenly spaced from the first to "
                     f"the last")
    if g > 1:
        notes.append(f"each column is the maximum of {g} adjacent bins "
                     f"({g * spec.resolution:.3g} Hz)")
    return LifeSpectrum(freqs, values, rows, times, shown_unit, spec.kind, spec.resolution,
                        db, g, spec.band, channel, n_snap, notes)


def run_spectrum_over_life(run: Run, channel: int | str, settings: SpectrumSettings,
                           **kwargs: Any) -> LifeSpectrum:
    """:func:`spectrum_over_life` of one channel (index or name) of ``run``."""
    idx = run.channel_names.index(channel) if isinstance(channel, str) else int(channel)
    return spectrum_over_life(run.channel(idx), run.fs, settings, timestamps=run.timestamps,
                              channel=run.channel_names[idx], **kwargs)


def describe_peaks(spectrum: Spectrum, markers: Sequence[FaultMarker], n: int = 5,
                   min_hz: float | None = None, max_hz: float | None = None
                   ) -> list[dict[str, Any]]:
    """The ``n`` largest peaks of a one-row spectrum (from ``min_hz``, default one bin above
    DC) with the nearest characteristic frequency of ``markers`` and the distance to it, in Hz
    and in bins: ``frequency_hz``, ``value``, ``nearest``, ``nearest_hz``, ``offset_hz``,
    ``offset_bins`` (the last three None without markers), and ``within_bin``: every marker
    within one bin of the peak, nearest first (at 10 Hz bins and 1800 rpm, 3×f_r = 90 Hz and
    BPFO = 92.5 Hz cannot be told apart)."""
    lo = spectrum.resolution if min_hz is None else float(min_hz)
    rows = []
    for p in top_peaks(spectrum, n, lo, max_hz):
        m = nearest_marker(p.frequency, markers)
        offset = None if m is None else p.frequency - m.frequency
        close = sorted((abs(k.frequency - p.frequency), k.label) for k in markers
                       if abs(k.frequency - p.frequency) <= spectrum.resolution)
        rows.append({"frequency_hz": p.frequency, "value": p.value,
                     "nearest": None if m is None else m.label,
                     "nearest_hz": None if m is None else m.frequency,
                     "offset_hz": offset,
                     "offset_bins": None if offset is None else offset / spectrum.resolution,
                     "within_bin": ", ".join(label for _, label in close)})
    return rows
