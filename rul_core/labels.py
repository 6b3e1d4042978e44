"""RUL labels per snapshot and per window (SPEC §3).

All schemes return float32 arrays over the N snapshots of a run (index j = 0 .. N-1,
the paper's i = j + 1), normalised to [0, 1] with 0 at the last snapshot:

* ``linear``: ``(N - i) / N`` — the first snapshot gets (N-1)/N, the last 0.
* ``first_prediction_time`` (knee = 0-based snapshot index K, -1 <= K <= N-2):
  ``min(1, (N - 1 - j) / (N - 1 - K))`` — 1 up to and including snapshot K, then a straight
  line to 0 at the last snapshot. ``K = -1`` gives exactly ``linear``.
* ``piecewise`` (knee_fraction f, default 0.3): the first ``floor(f N)`` snapshots get 1,
  i.e. ``first_prediction_time`` with ``K = floor(f N) - 1``.
* ``capped`` (max_rul in snapshots): ``min(N - 1 - j, max_rul) / max_rul``; with
  ``log_scale`` s (snapshots) the capped remaining snapshots m are compressed logarithmically,
  ``log(1 + m / s) / log(1 + max_rul / s)``, so a regression loss weighs relative errors near
  failure (what the PHM 2012 score punishes) more than absolute errors far from it.

The knee of ``first_prediction_time`` is given (e.g. a published list) or detected with
:func:`detect_knee`: the first snapshot that starts ``consecutive`` snapshots in a row whose
health indicator (RMS or kurtosis) is outside the healthy band mean ± sigma·std, the band
being measured on the first ``healthy_fraction`` of the run.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from rul_core.data.run import Run

SCHEMES = ("linear", "piecewise", "capped", "fpt")
HEALTH_INDICATORS = ("rms", "kurtosis")


def _check_n(n: int) -> int:
    if int(n) != n or n < 1:
        raise ValueError(f"n: expected a positive number of snapshots, got {n!r}")
    return int(n)


def linear(n: int) -> np.ndarray:
    """``(N - i) / N`` for i = 1..N."""
    n = _check_n(n)
    return ((n - np.arange(1, n + 1)) / n).astype(np.float32)


def first_prediction_time(n: int, knee: int) -> np.ndarray:
    """1 up to snapshot ``knee`` (0-based, inclusive), then linear to 0 at the last snapshot."""
    n = _check_n(n)
    if int(knee) != knee or not -1 <= knee <= n - 2:
        raise ValueError(f"knee: expected a snapshot index in [-1, {n - 2}], got {knee!r}")
    j = np.arange(n, dtype=np.float64)
    return np.minimum(1.0, (n - 1 - j) / (n - 1 - int(knee))).astype(np.float32)


def piecewise(n: int, knee_fraction: float = 0.3) -> np.ndarray:
    """1 for the first ``floor(knee_fraction * N)`` snapshots, then linear to 0."""
    n = _check_n(n)
    if not 0 <= knee_fraction < 1:
        raise ValueError(f"knee_fraction: expected a value in [0, 1), got {knee_fraction!r}")
    # exact for the decimal the user typed: math.floor(0.29 * 100) would give 28
    flat = math.floor(Fraction(str(knee_fraction)) * n)
    return first_prediction_time(n, flat - 1)


def capped(n: int, max_rul: int, log_scale: float | None = None) -> np.ndarray:
    """``min(N - 1 - j, max_rul) / max_rul``: remaining snapshots capped at ``max_rul``; with
    ``log_scale`` s, ``log(1 + min(N - 1 - j, max_rul) / s) / log(1 + max_rul / s)``."""
    n = _check_n(n)
    _check_cap(max_rul, log_scale)
    remaining = np.minimum(n - 1 - np.arange(n, dtype=np.float64), max_rul)
    if log_scale:
        return (np.log1p(remaining / log_scale) / np.log1p(max_rul / log_scale)).astype(
            np.float32)
    return (remaining / max_rul).astype(np.float32)


def _check_cap(max_rul: float, log_scale: float | None) -> None:
    for name, value in (("max_rul", max_rul), ("log_scale", log_scale)):
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, (int, float, np.number))):
            raise ValueError(f"{name}: expected a number of snapshots, got {value!r}")
    if not max_rul > 0:
        raise ValueError(f"max_rul: expected a positive number of snapshots, got {max_rul!r}")
    if log_scale is not None and not log_scale >= 0:
        raise ValueError(f"log_scale: expected a positive number of snapshots (0 or none: "
                         f"linear), got {log_scale!r}")


def capped_snapshots(rul: np.ndarray, max_rul: float, log_scale: float | None = None
                     ) -> np.ndarray:
    """Remaining snapshots of ``capped`` labels ``rul`` (clipped to [0, 1]): the inverse of
    :func:`capped`."""
    _check_cap(max_rul, log_scale)
    r = np.clip(np.asarray(rul, dtype=np.float64), 0.0, 1.0)
    if log_scale:
        return log_scale * np.expm1(r * np.log1p(max_rul / log_scale))
    return r * max_rul


def health_indicator(run: Run, method: str = "rms", channel: int | None = None) -> np.ndarray:
    """Per-snapshot RMS (pooled over channels) or Pearson kurtosis (mean over channels)."""
    if method not in HEALTH_INDICATORS:
        raise ValueError(f"method: expected one of {HEALTH_INDICATORS}, got {method!r}")
    x = run.snapshots if channel is None else run.snapshots[:, :, [channel]]
    x = x.astype(np.float64)
    if method == "rms":
        return np.sqrt(np.mean(x * x, axis=(1, 2)))
    c = x - x.mean(axis=1, keepdims=True)
    m2 = np.mean(c * c, axis=1)
    m4 = np.mean(c**4, axis=1)
    kurt = np.where(m2 > 0, m4 / np.where(m2 > 0, m2, 1.0) ** 2, 0.0)
    return kurt.mean(axis=1)


def detect_knee(
    data: Run | np.ndarray,
    method: str = "rms",
    healthy_fraction: float = 0.1,
    sigma: float = 3.0,
    consecutive: int = 3,
    channel: int | None = None,
) -> int | None:
    """First snapshot index starting ``consecutive`` out-of-band values, or None.

    ``data`` is a Run (its ``method`` health indicator is computed) or a 1-D trend. The band
    is mean ± ``sigma`` std of the first ``max(2, ceil(healthy_fraction * N))`` values; only
    snapshots after that healthy stretch can be the knee.
    """
    trend = health_indicator(data, method, channel) if isinstance(data, Run) else np.asarray(
        data, dtype=np.float64
    )
    if trend.ndim != 1 or trend.size < 3:
        raise ValueError(f"data: expected a trend of >= 3 snapshots, got shape {trend.shape}")
    if not np.all(np.isfinite(trend)):
        raise ValueError("data: the health indicator contains NaN or inf")
    if not 0 < healthy_fraction < 1:
        raise ValueError(f"healthy_fraction: expected a value in (0, 1), got {healthy_fraction!r}")
    if int(consecutive) != consecutive or consecutive < 1:
        raise ValueError(f"consecutive: expected a positive integer, got {consecutive!r}")
    n_healthy = max(2, math.ceil(Fraction(str(healthy_fraction)) * trend.size))
    healthy = trend[:n_healthy]
    mu, sd = healthy.mean(), healthy.std()
    outside = np.abs(trend - mu) > sigma * sd
    outside[:n_healthy] = False
    k = int(consecutive)
    if trend.size < k:
        return None
    runs = np.convolve(outside.astype(np.int64), np.ones(k, dtype=np.int64), mode="valid")
    hits = np.flatnonzero(runs == k)
    return int(hits[0]) if hits.size else None


def label_run(run: Run | int, scheme: str = "linear", **params: Any) -> np.ndarray:
    """Labels of every snapshot of ``run`` (a Run, or a snapshot count for given-knee schemes).

    ``scheme`` is one of :data:`SCHEMES`: ``linear``; ``piecewise`` (knee_fraction);
    ``capped`` (max_rul, optional log_scale); ``fpt`` (``knee`` given, or detected from the run with
    :func:`detect_knee`'s parameters ``method``, ``healthy_fraction``, ``sigma``,
    ``consecutive``, ``channel``).
    """
    n = run.n_snapshots if isinstance(run, Run) else _check_n(run)
    if scheme == "linear":
        _no_extra(params, set())
        return linear(n)
    if scheme == "piecewise":
        _no_extra(params, {"knee_fraction"})
        return piecewise(n, **params)
    if scheme == "capped":
        _no_extra(params, {"max_rul", "log_scale"})
        if "max_rul" not in params:
            raise ValueError("max_rul: required for the 'capped' scheme")
        return capped(n, params["max_rul"], params.get("log_scale"))
    if scheme == "fpt":
        _no_extra(params, {"knee", "method", "healthy_fraction", "sigma", "consecutive",
                           "channel"})
        knee = params.pop("knee", None)
        if knee is None:
            if not isinstance(run, Run):
                raise ValueError("knee: required when labelling a snapshot count, not a Run")
            knee = detect_knee(run, **params)
            if knee is None:
                raise ValueError(
                    f"run {run.name}: no knee detected (the health indicator never left its "
                    "healthy band); pass knee= explicitly or use another scheme"
                )
            knee = min(knee, n - 2)
        return first_prediction_time(n, knee)
    raise ValueError(f"scheme: expected one of {SCHEMES}, got {scheme!r}")


def _no_extra(params: dict[str, Any], allowed: set[str]) -> None:
    extra = set(params) - allowed
    if extra:
        raise ValueError(f"unexpected label parameter(s) {sorted(extra)}; allowed: "
                         f"{sorted(allowed) or 'none'}")


def window_labels(snapshot_labels: np.ndarray, snapshot_index: np.ndarray) -> np.ndarray:
    """Each window takes the label of the snapshot it lies in."""
    labels = np.asarray(snapshot_labels)
    idx = np.asarray(snapshot_index)
    if idx.size and (idx.min() < 0 or idx.max() >= labels.size):
        raise ValueError(
            f"snapshot_index: expected values in [0, {labels.size - 1}], "
            f"got [{idx.min()}, {idx.max()}]"
        )
    return labels[idx]


#: Largest normalised RUL turned into a time by :func:`remaining_time` under the ``linear``
#: scheme (r = 0.95 means the bearing is 5 % into its life: RUL = 19 x its age).
LINEAR_R_MAX = 0.95


def remaining_time(
    rul: np.ndarray | float,
    elapsed_s: np.ndarray | float,
    scheme: str,
    **params: Any,
) -> np.ndarray:
    """Remaining time to failure (seconds) implied by a normalised RUL, inverting ``scheme``.

    ``rul`` is the model's normalised RUL at a snapshot reached ``elapsed_s`` seconds after the
    start of the run (the first snapshot's interval included). With life L and elapsed e:

    * ``linear``: r = (L - e)/L, so RUL = e r / (1 - r); r is clipped to
      [0, :data:`LINEAR_R_MAX`] (r -> 1 would mean an infinite life).
    * ``piecewise`` (knee_fraction f): r = (L - e)/((1 - f) L) after the flat part, so
      RUL = e r (1 - f) / (1 - r (1 - f)); r is clipped to [0, 1], and r = 1 (still in the
      flat part) gives the least RUL the label allows, e (1 - f) / f.
    * ``capped`` (max_rul in snapshots, ``interval_s`` the snapshot interval, optional
      log_scale): RUL = r * max_rul * interval_s, r clipped to [0, 1] (at the cap: "at least"
      that much); with log_scale s, RUL = s ((1 + max_rul / s)^r - 1) * interval_s.
    * ``fpt`` (``knee_elapsed_s``: elapsed time at the run's knee): r = (L - e)/(L - e_K), so
      RUL = r (e - e_K) / (1 - r), r clipped to [0, LINEAR_R_MAX]; before the knee the label
      is 1 and carries no time information (NaN).
    """
    r = np.asarray(rul, dtype=np.float64)
    e = np.asarray(elapsed_s, dtype=np.float64)
    if np.any(e <= 0):
        raise ValueError("elapsed_s: expected positive times (seconds since the run started)")
    if scheme == "linear":
        _no_extra(params, set())
        r = np.clip(r, 0.0, LINEAR_R_MAX)
        return e * r / (1.0 - r)
    if scheme == "piecewise":
        _no_extra(params, {"knee_fraction"})
        f = float(params.get("knee_fraction", 0.3))
        if not 0 < f < 1:
            raise ValueError(f"knee_fraction: expected a value in (0, 1), got {f!r}")
        r = np.clip(r, 0.0, 1.0)
        return e * r * (1.0 - f) / (1.0 - r * (1.0 - f))
    if scheme == "capped":
        _no_extra(params, {"max_rul", "interval_s", "log_scale"})
        if "max_rul" not in params or "interval_s" not in params:
            raise ValueError("capped: max_rul (snapshots) and interval_s (seconds) are required")
        log_scale = params.get("log_scale")
        return capped_snapshots(r, float(params["max_rul"]),
                                None if log_scale is None else float(log_scale)
                                ) * float(params["interval_s"])
    if scheme == "fpt":
        _no_extra(params, {"knee_elapsed_s", "knee", "method", "healthy_fraction", "sigma",
                           "consecutive", "channel"})
        if "knee_elapsed_s" not in params:
            raise ValueError("fpt: knee_elapsed_s (elapsed time at the run's knee) is required")
        since = e - float(params["knee_elapsed_s"])
        r = np.clip(r, 0.0, LINEAR_R_MAX)
        return np.where(since > 0, r * np.maximum(since, 0.0) / (1.0 - r), np.nan)
    raise ValueError(f"scheme: expected one of {SCHEMES}, got {scheme!r}")


def snapshots_for(seconds: float, runs: list[Run]) -> int:
    """How many snapshots span ``seconds`` at the runs' median snapshot interval (>= 1).

    Turns a cap given in time (``capped`` scheme, e.g. 100 minutes) into ``max_rul`` in
    snapshots; raises ValueError when the runs carry no usable timestamps.
    """
    gaps = np.concatenate([np.diff(np.asarray(r.timestamps, dtype=np.float64)) for r in runs])
    gaps = gaps[np.isfinite(gaps) & (gaps > 0)]
    if gaps.size == 0:
        raise ValueError("runs: no increasing timestamps to measure the snapshot interval")
    return max(1, round(float(seconds) / float(np.median(gaps))))
