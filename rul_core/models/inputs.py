"""WindowSet -> model input arrays, one sample per window, in window order.

- multimodal: ``[image (n, H, W, 1) in [0, 1], tf (n, 7 * len(tf_channels), 1)]``. The WindowSet
  raster is 64 x 500 pair counts (``images / 2``); a model built with a narrower image
  (``image_shape`` override, e.g. 64 x 100 in tests) gets column groups averaged.
- carle: ``[tf (n, 7 * len(tf_channels), 1)]`` — channel blocks in the order of ``tf_channels``.
- rc_lstm: ``[signal (n, T, L // pool, 1, C)]`` from ``signals`` = ``window_signals(...)``
  (n, L, C), each window average-pooled by ``pool`` (numpy); with ``pool_stat = "mean_std"``
  each group's standard deviation follows as C more channels (the energy above ``fs / pool``
  that averaging removes, i.e. an envelope). Sample j holds windows j-T+1..j of
  the same run; the start of a run is padded by repeating its first window. A WindowSet is one
  run; if windows of several runs were concatenated, a new run starts wherever
  ``snapshot_index`` decreases.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rul_core.errors import DataFormatError
from rul_core.models.presets import ModelConfig, check_pool_stat


def _image_input(images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    imgs = np.asarray(images)
    if imgs.ndim != 3:
        raise DataFormatError("WindowSet.images", "an array (n, 64, 500)", str(imgs.shape))
    h, w = shape
    if imgs.shape[1:] == (h, w):  # one pass into the (n, H, W, 1) array (x / 2 == x * 0.5)
        out = np.empty((*imgs.shape, 1), dtype=np.float32)
        np.multiply(imgs, np.float32(0.5), out=out[..., 0], dtype=np.float32)
        return out
    x = imgs.astype(np.float32) / 2.0
    if x.shape[1] != h or x.shape[2] % w != 0:
        raise DataFormatError(
            "WindowSet.images",
            f"rows {h} and a column count divisible by the model's {w}",
            str(x.shape[1:]),
        )
    f = x.shape[2] // w
    return x.reshape(x.shape[0], h, w, f).mean(axis=3, dtype=np.float32)[..., None]


def _tf_input(tf: np.ndarray, channels: list[int]) -> np.ndarray:
    arr = np.asarray(tf, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 7:
        raise DataFormatError("WindowSet.tf", "an array (n, channels, 7)", str(arr.shape))
    bad = [c for c in channels if not 0 <= int(c) < arr.shape[1]]
    if bad:
        raise DataFormatError(
            "WindowSet.tf",
            f"channels {list(channels)} (the model's tf_channels)",
            f"{arr.shape[1]} channel(s)",
        )
    sel = arr[:, [int(c) for c in channels], :]
    return sel.reshape(arr.shape[0], 7 * len(channels), 1)


def run_starts(snapshot_index: np.ndarray) -> np.ndarray:
    """Index of the first window of the run each window belongs to."""
    snap = np.asarray(snapshot_index).reshape(-1)
    n = snap.size
    new_run = np.zeros(n, dtype=bool)
    if n:
        new_run[0] = True
        new_run[1:] = snap[1:] < snap[:-1]
    idx = np.where(new_run, np.arange(n), 0)
    return np.maximum.accumulate(idx) if n else idx


def sequence_indices(snapshot_index: np.ndarray, timesteps: int) -> np.ndarray:
    """(n, T) window indices j-T+1..j clipped to the run start (start padded by repetition)."""
    starts = run_starts(snapshot_index)
    j = np.arange(starts.size)[:, None]
    offs = np.arange(-(timesteps - 1), 1)[None, :]
    return np.maximum(j + offs, starts[:, None])


def baseline_scale_signals(signals: np.ndarray, snapshot_index: np.ndarray, k: int
                           ) -> np.ndarray:
    """Centre and scale each run's windows (n, L, C) by that run's healthy baseline, causally:
    per channel, the mean and standard deviation of all samples of the windows of snapshots
    ``0 .. min(s, k - 1)`` for a window of snapshot ``s`` (the baseline grows with the first
    ``k`` snapshots, then is frozen; a run prefix gives the prefix of the output). A new run
    starts wherever ``snapshot_index`` decreases. Returns float32."""
    if k < 1:
        raise ValueError(f"signal_baseline_snapshots: expected >= 1, got {k}")
    sig = np.asarray(signals, dtype=np.float64)
    snap = np.asarray(snapshot_index).reshape(-1)
    out = np.empty(sig.shape, dtype=np.float32)
    starts = np.flatnonzero(run_starts(snap) == np.arange(snap.size))
    for a, b in zip(starts, [*starts[1:], snap.size], strict=True):
        s = snap[a:b]
        c1 = np.cumsum(sig[a:b].mean(axis=1), axis=0)  # (w, C) running sums of window means
        c2 = np.cumsum((sig[a:b] ** 2).mean(axis=1), axis=0)
        last = np.searchsorted(s, np.minimum(s, k - 1), side="right") - 1
        count = (last + 1).astype(np.float64)[:, None]
        mu = c1[last] / count
        sd = np.sqrt(np.maximum(c2[last] / count - mu * mu, 0.0))
        out[a:b] = (sig[a:b] - mu[:, None, :]) / np.maximum(sd, 1e-6)[:, None, :]
    return out


def signal_channels(hp: dict[str, Any]) -> int:
    """Channels of the RC-LSTM input for resolved hyperparameters ``hp``."""
    return int(hp["n_channels"]) * (2 if hp.get("pool_stat", "mean") == "mean_std" else 1)


def pool_signals(signals: np.ndarray, pool: int, stat: str = "mean") -> np.ndarray:
    """Pool (n, L, C) along L by ``pool`` (an incomplete trailing group is dropped): the group
    means (n, L // pool, C), or with ``stat="mean_std"`` the means and then the standard
    deviations (n, L // pool, 2 C)."""
    check_pool_stat(stat, pool)
    sig = np.asarray(signals, dtype=np.float32)
    if pool <= 1:
        return sig
    n, length, c = sig.shape
    m = length // pool
    groups = sig[:, : m * pool].reshape(n, m, pool, c)
    mean = groups.mean(axis=2, dtype=np.float32)
    if stat == "mean":
        return mean
    return np.concatenate([mean, groups.std(axis=2, dtype=np.float32)], axis=2)


def signal_input(
    config: ModelConfig, snapshot_index: np.ndarray, signals: np.ndarray | None
) -> np.ndarray:
    """RC-LSTM input (n, T, L // pool, 1, C) of ``signals`` (n, L, C) = ``window_signals(...)``
    with each window's snapshot (``snapshot_index``; a decrease starts a new run)."""
    hp = config.resolved()
    if signals is None:
        raise DataFormatError(
            "signals", "window_signals(run, normaliser, config) (n, L, channels) for rc_lstm"
        )
    sig = np.asarray(signals)
    n = len(np.asarray(snapshot_index).reshape(-1))
    expected = (n, int(hp["window_length"]), int(hp["n_channels"]))
    if sig.ndim != 3 or sig.shape != expected:
        raise DataFormatError(
            "signals", f"shape {expected} (windows, window_length, channels)", str(sig.shape)
        )
    k = int(hp.get("signal_baseline_snapshots", 0))
    if k:
        sig = baseline_scale_signals(sig, snapshot_index, k)
    pooled = pool_signals(sig, int(hp["pool"]), str(hp.get("pool_stat", "mean")))
    idx = sequence_indices(snapshot_index, int(hp["timesteps"]))
    return pooled[idx][:, :, :, None, :]


def make_inputs(
    config: ModelConfig, windows: Any, signals: np.ndarray | None = None
) -> list[np.ndarray]:
    """Model input arrays (in the model's input order) for every window of ``windows``."""
    hp = config.resolved()
    if config.name == "multimodal":
        return [
            _image_input(windows.images, tuple(hp["image_shape"])),
            _tf_input(windows.tf, hp["tf_channels"]),
        ]
    if config.name == "carle":
        return [_tf_input(windows.tf, hp["tf_channels"])]
    return [signal_input(config, windows.snapshot_index, signals)]
