"""From a Run to per-window model inputs: the contract every model and page relies on.

CONTRACT (implemented by the signal pipeline; models, explanations and pages consume it):

- ``PipelineConfig``: window length/stride, optional Gaussian sigma, ImR channel, CWT band.
- ``Normaliser``: per-channel min/max fitted on *training* runs, applied clipped to [0, 1];
  ``to_dict()``/``from_dict()`` so it is stored in a model card.
- ``WindowSet``: per-window features of one run.
    * ``images``: uint8 (n, 64, 500); each value is the number of lit raster pixels (0, 1 or 2)
      in a column pair of the 64x1000 ImR, so ``images / 2`` is the averaged 64x500 raster.
    * ``tf``: float32 (n, channels, 7) — ``[log E, f_d, h, K, sk, mean, std]`` per channel.
    * ``snapshot_index``: int (n,) — the snapshot each window lies in (windows never cross
      snapshot boundaries); ``offset``: int (n,) — first sample of the window in the snapshot.
    * ``image_input(idx)`` -> float32 (k, 64, 500, 1); ``tf_input(channels, idx)`` -> float32
      (k, 7*len(channels), 1) with channel blocks concatenated in the order given.
- ``extract_windows(run, normaliser, config, progress=None, cancel=None, noise=None,
  tf_channels=None) -> WindowSet`` (``tf_channels``: TF features of those channels only,
  the others NaN; what ``prepare_run`` asks for a model's inputs).
- ``window_signals(run, normaliser, config, snapshot_idx=None)`` -> float32
  (n, window_length, channels): the normalised raw windows, for RC-LSTM and display.

Processing order per snapshot: optional Gaussian filter (``gaussian_sigma`` samples, within
the snapshot) -> normaliser (clipped to [0, 1]) -> optional noise hook (Noise lab) ->
rectangular windows -> ImR of ``imr_channel`` and TF features of every channel -> optional
per-run healthy-baseline standardisation of the TF features (``baseline_snapshots``). The
normaliser is fitted (``fit_normaliser``) on the *filtered* training signal so the same
constants apply at inference. ``window_signals`` returns the filtered, normalised windows.
Images have ``ceil(((L - 1) * spacing + 1) / 2)`` columns: 500 for the defaults.

Healthy-baseline standardisation (``baseline_snapshots = k``, default None = off): operating
conditions (speed, load) shift every TF feature of a bearing (e.g. ``log E`` and ``f_d`` of a
1000-sample window are dominated by the normalised signal's DC level and the rpm-dependent CWT
band, so they identify the condition rather than the health). With ``k`` set, each TF feature of
a run is replaced by ``asinh((f - mu) / max(sd, 1e-3 |mu| + 1e-6))``, where ``mu``/``sd`` are that
feature's mean/std over the windows of the run's first ``k`` snapshots — causally: a window of
snapshot ``s < k`` uses snapshots ``0..s`` only (an expanding baseline, frozen after ``k``). This
is exactly what a monitoring system knows at that moment, so predictions on the first ``n``
snapshots of a run equal the first rows of the whole-run predictions for every ``n``. Images
and ``window_signals`` are unchanged. The ``asinh`` (linear near 0, logarithmic beyond) keeps
end-of-life z-scores (kurtosis or std several hundred baseline deviations away on FEMTO) from
driving a linear output head far outside [0, 1].
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from rul_core.atomic import atomic_path
from rul_core.config import (
    CWT_BANDWIDTH,
    CWT_CENTER_FREQUENCY,
    CWT_NUM_SCALES,
    ENTROPY_BINS,
    IMR_ROWS,
    WINDOW_LENGTH,
    WINDOW_STRIDE,
)
from rul_core.data.run import Run
from rul_core.errors import InputError
from rul_core.progress import CancelToken, ProgressFn, check, emit
from rul_core.signal.cwt import band_frequencies, warn_if_band_exceeds_window
from rul_core.signal.features import FEATURE_NAMES, tf_features
from rul_core.signal.filters import gaussian_filter
from rul_core.signal.normalise import Normaliser
from rul_core.signal.raster import imr_pair_counts, raster_width
from rul_core.signal.windows import window_positions, window_view, windows_per_snapshot

__all__ = [
    "FEATURE_NAMES",
    "NoiseHook",
    "Normaliser",
    "PipelineConfig",
    "WindowSet",
    "baseline_standardise",
    "extract_windows",
    "fit_normaliser",
    "window_signals",
]

NoiseHook = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``noise(signal, snapshot_index) -> noisy``: signal is normalised (k, samples, channels)."""

_TARGET_WINDOWS_PER_CHUNK = 512


@dataclass(frozen=True)
class PipelineConfig:
    """Every choice that changes the features (hashed to name cached outputs)."""

    window_length: int = WINDOW_LENGTH
    stride: int = WINDOW_STRIDE
    gaussian_sigma: float | None = None
    imr_channel: int = 0
    imr_spacing: int = 1
    imr_rows: int = IMR_ROWS
    n_scales: int = CWT_NUM_SCALES
    band_low_factor: float = 1.0 / 3.0
    band_high_factor: float = 3.0
    f_min: float | None = None
    f_max: float | None = None
    center_frequency: float = CWT_CENTER_FREQUENCY
    bandwidth: float = CWT_BANDWIDTH
    entropy_bins: int = ENTROPY_BINS
    baseline_snapshots: int | None = None

    def __post_init__(self) -> None:
        for name in ("window_length", "stride", "imr_spacing", "n_scales", "entropy_bins"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if self.window_length < 2:
            raise ValueError(f"window_length: expected >= 2 samples, got {self.window_length}")
        if self.imr_channel < 0:
            raise ValueError(f"imr_channel: expected an index >= 0, got {self.imr_channel}")
        if self.gaussian_sigma is not None and not self.gaussian_sigma >= 0:
            raise ValueError(f"gaussian_sigma: expected None or >= 0, got {self.gaussian_sigma}")
        k = self.baseline_snapshots
        if k is not None and (isinstance(k, bool) or int(k) != k or k < 1):
            raise ValueError(f"baseline_snapshots: expected None or an integer >= 1, got {k!r}")

    def frequencies(self, rpm: float) -> np.ndarray:
        """CWT frequencies (Hz, ascending) for a shaft speed."""
        return band_frequencies(rpm, self.n_scales, self.band_low_factor,
                                self.band_high_factor, self.f_min, self.f_max)

    @property
    def image_columns(self) -> int:
        """Columns of the pair-averaged ImR (500 by default)."""
        return math.ceil(raster_width(self.window_length, self.imr_spacing) / 2)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"pipeline config: unknown field(s) {sorted(unknown)}")
        return cls(**data)

    def hash(self) -> str:
        """Short stable hash of the configuration."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class WindowSet:
    """Per-window model inputs of one run (see the module contract)."""

    images: np.ndarray
    tf: np.ndarray
    snapshot_index: np.ndarray
    offset: np.ndarray
    channel_names: tuple[str, ...] = ()
    run_name: str = ""
    frequencies: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.snapshot_index.shape[0])

    def _idx(self, idx: Sequence[int] | np.ndarray | slice | None) -> Any:
        return slice(None) if idx is None else idx

    def image_input(self, idx: Sequence[int] | np.ndarray | slice | None = None) -> np.ndarray:
        """Averaged ImR as float32 (k, 64, 500, 1) in [0, 1]."""
        img = self.images[self._idx(idx)].astype(np.float32) * np.float32(0.5)
        return img[..., None]

    def channel_indices(self, channels: Sequence[int | str] | None) -> list[int]:
        """Resolve channel names or indices (None = all) to indices."""
        if channels is None:
            return list(range(self.tf.shape[1]))
        out = []
        for ch in channels:
            if isinstance(ch, str):
                if ch not in self.channel_names:
                    raise ValueError(f"channels: unknown channel {ch!r}; have "
                                     f"{list(self.channel_names)}")
                out.append(self.channel_names.index(ch))
            elif 0 <= int(ch) < self.tf.shape[1]:
                out.append(int(ch))
            else:
                raise ValueError(f"channels: index {ch!r} outside 0..{self.tf.shape[1] - 1}")
        return out

    def tf_input(
        self,
        channels: Sequence[int | str] | None = None,
        idx: Sequence[int] | np.ndarray | slice | None = None,
    ) -> np.ndarray:
        """TF features float32 (k, 7 * len(channels), 1), channel blocks in the order given."""
        chans = self.channel_indices(channels)
        block = self.tf[self._idx(idx)][:, chans, :]
        return block.reshape(block.shape[0], -1, 1).astype(np.float32)

    def save(self, path: str | Path, **meta: Any) -> None:
        """Write an ``.npz`` atomically (temporary file + rename); ``meta`` goes to JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        info = {"channel_names": list(self.channel_names), "run_name": self.run_name, **meta}
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh, images=self.images, tf=self.tf, snapshot_index=self.snapshot_index,
                offset=self.offset,
                frequencies=np.asarray(
                    self.frequencies if self.frequencies is not None else [], np.float64
                ),
                meta=np.asarray(json.dumps(info)),
            )

    @classmethod
    def load(cls, path: str | Path) -> tuple[WindowSet, dict[str, Any]]:
        """Read a file written by :meth:`save`; returns the set and its metadata."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            freqs = data["frequencies"]
            ws = cls(
                images=data["images"], tf=data["tf"], snapshot_index=data["snapshot_index"],
                offset=data["offset"], channel_names=tuple(meta.get("channel_names", ())),
                run_name=meta.get("run_name", ""), frequencies=freqs if freqs.size else None,
            )
        return ws, meta


def _prepare(
    snapshots: np.ndarray, normaliser: Normaliser, config: PipelineConfig
) -> np.ndarray:
    """Filter (optional) and normalise a block of snapshots -> float32 in [0, 1]."""
    x = snapshots
    if config.gaussian_sigma:
        x = gaussian_filter(x, config.gaussian_sigma, axis=1)
    return normaliser.transform(x)


def _check_run(run: Run, normaliser: Normaliser, config: PipelineConfig) -> int:
    if normaliser.n_channels != run.n_channels:
        raise InputError(
            f"normaliser: fitted on {normaliser.n_channels} channels, run {run.name} has "
            f"{run.n_channels}"
        )
    if config.imr_channel >= run.n_channels:
        raise InputError(
            f"imr_channel: {config.imr_channel} but run {run.name} has {run.n_channels} channels"
        )
    per_snap = windows_per_snapshot(run.n_samples, config.window_length, config.stride)
    if per_snap == 0:
        raise InputError(
            f"window_length: {config.window_length} samples is longer than the "
            f"{run.n_samples}-sample snapshots of run {run.name}"
        )
    return per_snap


def _snapshot_chunks(n_snapshots: int, per_snap: int) -> Iterable[tuple[int, int]]:
    step = max(1, _TARGET_WINDOWS_PER_CHUNK // per_snap)
    for start in range(0, n_snapshots, step):
        yield start, min(start + step, n_snapshots)


def fit_normaliser(
    runs: Iterable[Run], config: PipelineConfig | None = None
) -> Normaliser:
    """Min/max per channel over the (filtered) training runs, never concatenating them."""
    config = config or PipelineConfig()
    runs = list(runs)
    if not runs:
        raise ValueError("runs: expected at least one training run")
    names = tuple(runs[0].channel_names)

    def blocks() -> Iterable[np.ndarray]:
        for run in runs:
            if run.n_channels != len(names):
                raise ValueError(
                    f"run {run.name}: {run.n_channels} channels, expected {len(names)}"
                )
            for start in range(0, run.n_snapshots, 256):
                block = run.snapshots[start : start + 256]
                yield gaussian_filter(block, config.gaussian_sigma, axis=1) if (
                    config.gaussian_sigma
                ) else block

    return Normaliser.fit(blocks(), names)


def extract_windows(
    run: Run,
    normaliser: Normaliser,
    config: PipelineConfig | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    noise: NoiseHook | None = None,
    tf_channels: Sequence[int] | None = None,
) -> WindowSet:
    """ImR pair counts and TF features of every window of ``run``.

    Works through the run a few hundred windows at a time (memory stays bounded), emits
    ``features`` progress events in windows and checks ``cancel`` between chunks. ``noise``
    (e.g. :class:`rul_core.signal.noise.NoiseModel`) is applied to the normalised snapshots
    before windowing. ``tf_channels`` (default all) limits the TF features (the costly part)
    to the channels a model reads; the others are NaN. The computed ones are equal, bit for
    bit, to those of a full extraction.
    """
    config = config or PipelineConfig()
    per_snap = _check_run(run, normaliser, config)
    channels = (list(range(run.n_channels)) if tf_channels is None
                else sorted({int(c) for c in tf_channels}))
    if any(not 0 <= c < run.n_channels for c in channels):
        raise ValueError(f"tf_channels: expected indices in [0, {run.n_channels}), "
                         f"got {list(tf_channels or [])}")
    freqs = config.frequencies(run.condition.rpm)
    warn_if_band_exceeds_window(config.window_length, run.fs, float(freqs.min()),
                                config.center_frequency)
    snap_idx, offset = window_positions(run.n_snapshots, run.n_samples, config.window_length,
                                        config.stride)
    n = snap_idx.size
    images = np.empty((n, config.imr_rows, config.image_columns), dtype=np.uint8)
    tf = np.full((n, run.n_channels, len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    emit(progress, "features", 0, n, run.name)
    threads = _threads(len(channels))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        _extract_chunks(run, normaliser, config, per_snap, freqs, images, tf, pool, threads,
                        progress, cancel, noise, channels)
    if config.baseline_snapshots:
        tf = baseline_standardise(tf, snap_idx, int(config.baseline_snapshots))
    return WindowSet(images, tf, snap_idx, offset, tuple(run.channel_names), run.name, freqs)


BASELINE_REL_FLOOR = 1e-3
BASELINE_ABS_FLOOR = 1e-6


def baseline_standardise(tf: np.ndarray, snapshot_index: np.ndarray, k: int) -> np.ndarray:
    """Standardise TF features (n, channels, 7) by a run's healthy baseline, causally.

    A window of snapshot ``s`` becomes ``asinh((f - mu) / max(sd, 1e-3 |mu| + 1e-6))`` per
    channel and feature, with ``mu``/``sd`` (ddof 0) over the windows of snapshots
    ``0 .. min(s, k - 1)``: the baseline grows with the first ``k`` snapshots and is then
    frozen. Only data recorded up to ``s`` is used, so a prefix of a run gives exactly the
    prefix of the whole run's output.
    Windows must come in non-decreasing snapshot order (one run). Returns float32.
    """
    x = np.asarray(tf, dtype=np.float64)
    snap = np.asarray(snapshot_index).reshape(-1)
    if x.ndim != 3 or x.shape[0] != snap.size:
        raise ValueError(f"tf: expected (n, channels, 7) matching {snap.size} windows, "
                         f"got {x.shape}")
    if k < 1:
        raise ValueError(f"baseline_snapshots: expected >= 1, got {k}")
    if snap.size == 0:
        return x.astype(np.float32)
    if np.any(np.diff(snap) < 0):
        raise ValueError("snapshot_index: expected windows of one run in snapshot order")
    ref = x[0]  # shift for numerically stable running moments
    d = x - ref
    c1 = np.cumsum(d, axis=0)
    c2 = np.cumsum(d * d, axis=0)
    # last window of the baseline each window may use: that of snapshot min(s, k - 1)
    last = np.searchsorted(snap, np.minimum(snap, k - 1), side="right") - 1
    count = (last + 1).astype(np.float64)[:, None, None]
    m1 = c1[last] / count
    var = np.maximum(c2[last] / count - m1 * m1, 0.0)
    mu = m1 + ref
    scale = np.maximum(np.sqrt(var), BASELINE_REL_FLOOR * np.abs(mu) + BASELINE_ABS_FLOOR)
    return np.arcsinh((x - mu) / scale).astype(np.float32)


def _threads(n_channels: int) -> int:
    """One thread per channel and at least two, at most the cores available (numpy/scipy
    release the GIL; one channel's rows are split between two threads)."""
    return max(1, min(max(n_channels, 2), os.cpu_count() or 1))


_TF_ROWS = 256  # tf_features' own chunk: row blocks of this size keep results bit-identical


def _tf_jobs(n_rows: int, channels: list[int], threads: int) -> list[tuple[int, int, int]]:
    """(channel, first row, last row) TF-feature jobs of one chunk: one per channel, and
    when fewer channels than threads, each channel's rows split into blocks of whole
    ``_TF_ROWS`` so that every thread has work (a window's features do not depend on the
    other rows of its block)."""
    parts = max(1, threads // max(1, len(channels)))
    size = max(1, math.ceil(math.ceil(n_rows / parts) / _TF_ROWS)) * _TF_ROWS
    return [(ch, lo, min(lo + size, n_rows)) for ch in channels
            for lo in range(0, n_rows, size)]


def _extract_chunks(
    run: Run,
    normaliser: Normaliser,
    config: PipelineConfig,
    per_snap: int,
    freqs: np.ndarray,
    images: np.ndarray,
    tf: np.ndarray,
    pool: ThreadPoolExecutor,
    threads: int,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
    noise: NoiseHook | None,
    channels: list[int],
) -> None:
    """Fill ``images`` and the ``channels`` of ``tf`` chunk by chunk (TF features of the
    channels, or of row blocks of one channel, in parallel)."""
    n = images.shape[0]
    for start, stop in _snapshot_chunks(run.n_snapshots, per_snap):
        check(cancel)
        x = _prepare(run.snapshots[start:stop], normaliser, config)
        if noise is not None:
            x = np.asarray(noise(x, np.arange(start, stop)), dtype=np.float32)
            if x.shape != (stop - start, run.n_samples, run.n_channels):
                raise ValueError(f"noise: returned shape {x.shape}, expected the input's")
        view = window_view(x, config.window_length, config.stride)
        wins = np.ascontiguousarray(view).reshape(-1, config.window_length, run.n_channels)
        lo, hi = start * per_snap, stop * per_snap
        jobs = [
            (ch, a, b, pool.submit(
                tf_features, wins[a:b, :, ch], run.fs, freqs, bins=config.entropy_bins,
                bandwidth=config.bandwidth, center=config.center_frequency, chunk=_TF_ROWS,
                cancel=cancel, workers=1,
            ))
            for ch, a, b in _tf_jobs(wins.shape[0], channels, threads)
        ]
        images[lo:hi] = imr_pair_counts(wins[:, :, config.imr_channel], config.imr_spacing,
                                        config.imr_rows)
        for ch, a, b, job in jobs:
            tf[lo + a:lo + b, ch] = job.result()
        emit(progress, "features", hi, n, run.name)


def window_signals(
    run: Run,
    normaliser: Normaliser,
    config: PipelineConfig | None = None,
    snapshot_idx: Sequence[int] | np.ndarray | None = None,
    noise: NoiseHook | None = None,
) -> np.ndarray:
    """Filtered, normalised windows float32 (n, window_length, channels).

    ``snapshot_idx`` selects snapshots (default all; negative indices count from the end);
    windows come snapshot by snapshot in the order given, matching
    :func:`rul_core.signal.windows.window_positions` for all. ``noise`` receives the
    non-negative indices, so a snapshot gets the same noise however it is addressed.
    """
    config = config or PipelineConfig()
    _check_run(run, normaliser, config)
    n = run.n_snapshots
    idx = np.arange(n) if snapshot_idx is None else np.asarray(snapshot_idx, dtype=np.int64)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise ValueError(f"snapshot_idx: expected indices in [-{n}, {n - 1}], got "
                         f"{idx.min()}..{idx.max()}")
    idx = idx % n if n else idx
    x = _prepare(run.snapshots[idx], normaliser, config)
    if noise is not None:
        x = np.asarray(noise(x, idx), dtype=np.float32)
    view = window_view(x, config.window_length, config.stride)
    return np.ascontiguousarray(view).reshape(-1, config.window_length, run.n_channels)
