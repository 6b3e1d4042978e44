"""What the app shows of one window or one run: the normalised window, its ImR raster, its
scalogram with cone of influence, and the TF features (per window and over a whole run).

Thin compositions of :mod:`rul_core.signal` functions with display defaults; the model
pipeline (:mod:`rul_core.signal.pipeline`) remains the reference for model inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rul_core.config import GAUSSIAN_SIGMA, WINDOW_LENGTH, WINDOW_STRIDE
from rul_core.data.run import Run, every_nth_from_last
from rul_core.progress import CancelToken, ProgressFn
from rul_core.training import predict_inputs

NoiseFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ViewSettings:
    """Display pipeline settings (defaults as SPEC §2; a model's own settings when given)."""

    sigma: float | None = None
    window_length: int = WINDOW_LENGTH
    stride: int = WINDOW_STRIDE
    imr_channel: int = 0
    tf_channel: int = 1
    n_scales: int = 100

    @classmethod
    def for_run(cls, run: Run, pipeline_config: Any | None = None) -> ViewSettings:
        """Defaults for ``run``'s layout, overridden by a model's pipeline config if given."""
        sigma = GAUSSIAN_SIGMA.get("xjtu" if "xjtu" in (run.layout or "") else "femto")
        settings = cls(sigma=sigma, tf_channel=min(1, run.n_channels - 1))
        if pipeline_config is None:
            return settings
        get = lambda *names, default: next(  # noqa: E731
            (getattr(pipeline_config, n) for n in names if hasattr(pipeline_config, n)), default)
        return cls(
            sigma=get("sigma", "gaussian_sigma", default=settings.sigma),
            window_length=int(get("window_length", "length", default=settings.window_length)),
            stride=int(get("stride", "window_stride", default=settings.stride)),
            imr_channel=int(get("imr_channel", default=settings.imr_channel)),
            tf_channel=settings.tf_channel,
            n_scales=int(get("n_scales", "cwt_scales", default=settings.n_scales)),
        )


@dataclass(frozen=True)
class WindowView:
    """Everything the Representations page shows for one window."""

    snapshot: int
    offset: int
    signal: np.ndarray  # (L, channels) normalised [0, 1] (after noise, if any)
    image: np.ndarray  # uint8 (64, L/2) pair counts of the ImR channel
    scalogram: Any  # rul_core.signal.cwt.Scalogram of the TF channel
    tf: np.ndarray  # (channels, 7)
    frequencies: np.ndarray  # the CWT band (Hz)


def fit_display_normaliser(runs: list[Run], settings: ViewSettings) -> Any:
    """Min–max normaliser fitted on ``runs`` after the Gaussian filter (display default)."""
    from rul_core.signal.filters import gaussian_filter
    from rul_core.signal.normalise import Normaliser

    return Normaliser.fit(
        (gaussian_filter(r.snapshots, settings.sigma) for r in runs),
        runs[0].channel_names,
    )


def n_windows(run: Run, settings: ViewSettings) -> int:
    """Windows per snapshot of ``run`` under ``settings``."""
    from rul_core.signal.windows import windows_per_snapshot

    return windows_per_snapshot(run.n_samples, settings.window_length, settings.stride)


def snapshot_windows(
    run: Run, snapshot: int, normaliser: Any, settings: ViewSettings
) -> np.ndarray:
    """Filtered, normalised windows of one snapshot: float32 (windows, L, channels)."""
    from rul_core.signal.filters import gaussian_filter
    from rul_core.signal.windows import make_windows

    x = gaussian_filter(run.snapshots[int(snapshot)], settings.sigma)
    x = normaliser.transform(x)
    windows, _, _ = make_windows(x, settings.window_length, settings.stride)
    return np.array(windows, dtype=np.float32)


def window_view(
    run: Run,
    snapshot: int,
    window: int,
    normaliser: Any,
    settings: ViewSettings,
    noise: NoiseFn | None = None,
) -> WindowView:
    """ImR, scalogram and TF features of window ``window`` of snapshot ``snapshot``.

    ``noise`` (a pure function of the normalised window) is applied before the features,
    as in SPEC §6; the result is clipped back to [0, 1] for the raster.
    """
    from rul_core.signal.cwt import band_frequencies, scalogram
    from rul_core.signal.features import tf_features
    from rul_core.signal.raster import imr_pair_counts

    wins = snapshot_windows(run, snapshot, normaliser, settings)
    if wins.shape[0] == 0:
        raise ValueError(f"run {run.name}: snapshots of {run.n_samples} samples are shorter "
                         f"than one window of {settings.window_length}")
    w = int(np.clip(window, 0, wins.shape[0] - 1))
    sig = wins[w]
    if noise is not None:
        sig = np.asarray(noise(sig), dtype=np.float32)
    freqs = band_frequencies(run.condition.rpm, settings.n_scales)
    img = imr_pair_counts(np.clip(sig[:, settings.imr_channel], 0.0, 1.0)[None])[0]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scal = scalogram(sig[:, settings.tf_channel], run.fs, freqs)
    tf = tf_features(sig.T, run.fs, freqs)  # (channels, 7)
    return WindowView(int(snapshot), w * settings.stride, sig, img, scal, tf.astype(np.float32),
                      freqs)


def run_tf_trend(
    run: Run,
    normaliser: Any,
    settings: ViewSettings,
    noise: NoiseFn | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """TF features of every window of the run: ((windows, channels, 7), snapshot_index)."""
    from rul_core.signal.cwt import band_frequencies
    from rul_core.signal.features import tf_features
    from rul_core.signal.filters import gaussian_filter
    from rul_core.signal.windows import make_windows

    x = normaliser.transform(gaussian_filter(run.snapshots, settings.sigma))
    windows, snap, _ = make_windows(x, settings.window_length, settings.stride)
    windows = np.asarray(windows, dtype=np.float32)
    if noise is not None:
        windows = np.asarray(noise(windows), dtype=np.float32)
    freqs = band_frequencies(run.condition.rpm, settings.n_scales)
    n, length, ch = windows.shape
    flat = np.ascontiguousarray(windows.transpose(0, 2, 1)).reshape(n * ch, length)
    feats = tf_features(flat, run.fs, freqs, progress=progress, cancel=cancel)
    return feats.reshape(n, ch, 7).astype(np.float32), np.asarray(snap)


def cone_notice(run: Run, settings: ViewSettings) -> str:
    """The product's statement on the window length vs the lowest wavelet (SPEC §2.5)."""
    from rul_core.signal.cwt import band_frequencies, band_warning_message

    freqs = band_frequencies(run.condition.rpm, settings.n_scales)
    length = settings.window_length
    f_min = float(freqs.min())
    base = (f"A window of {length} samples lasts {1e3 * length / run.fs:.0f} ms, shorter than one "
            f"period of the lowest analysed frequency {f_min:.1f} Hz "
            f"({1e3 / f_min:.0f} ms).")
    if 1.0 / f_min * run.fs <= length:
        base = (f"A window of {length} samples lasts {1e3 * length / run.fs:.0f} ms and holds at "
                f"least one period of the lowest analysed frequency {f_min:.1f} Hz.")
    msg = band_warning_message(length, run.fs, f_min)
    extra = (" Read the low-frequency energy and the dominant frequency with care: the shaded "
             "cone of influence marks coefficients shaped by the window edges.")
    return base + (f" In detail: {msg}." if msg else "") + extra


# --------------------------------------------------------------------------- model inputs


def model_inputs(
    trained: Any, run: Run, noise: Any | None = None,
    progress: ProgressFn | None = None, cancel: CancelToken | None = None,
    thin: bool = True,
) -> tuple[list[np.ndarray], np.ndarray]:
    """A trained model's inputs for the windows of ``run`` with optional noise (a
    :class:`rul_core.signal.noise.NoiseModel` applied to the normalised snapshots), built by
    :func:`rul_core.training.prepare_run` as for training and ``predict_run``.

    A model trained on every N-th snapshot (``snapshot_every``) gets the windows of every N-th
    snapshot counted back from the run's last (``thin=False``: ``run`` is already thinned).
    Returns (inputs, snapshot_index in ``run``'s numbering).
    """
    from rul_core.training import prepare_run

    every = int(getattr(trained, "snapshot_every", 1) or 1) if thin else 1
    prepared = prepare_run(trained.config, run, trained.normaliser, trained.pipeline_config,
                           progress=progress, cancel=cancel, snapshot_every=every, noise=noise)
    return prepared.inputs, np.asarray(prepared.snapshot_index)


def context_run(run: Run, snapshot: int, trained: Any, context: int = 2) -> tuple[Run, int]:
    """The snapshots the model's input for ``snapshot`` depends on, as a short run, and the
    position of ``snapshot`` in it (the last).

    As in ``predict_run`` on the snapshots recorded so far: every N-th snapshot counted back
    from ``snapshot`` (N = ``snapshot_every``), of which the last ``context`` + 1 (sequence
    models read the preceding windows) and the first k, k the per-run baseline of the TF
    features (``baseline_snapshots``) or of RC-LSTM's signal (``signal_baseline_snapshots``).
    """
    every = int(getattr(trained, "snapshot_every", 1) or 1)
    k = max(int(getattr(trained.pipeline_config, "baseline_snapshots", 0) or 0),
            int(trained.config.resolved().get("signal_baseline_snapshots", 0) or 0))
    kept = every_nth_from_last(min(int(snapshot), run.n_snapshots - 1) + 1, every)
    idx = np.unique(np.concatenate([kept[:k], kept[-(context + 1):]]))
    return run.take(idx), idx.size - 1


def _window_inputs(trained: Any, run: Run, snapshot: int, window: int,
                   noise: Any | None = None) -> tuple[list[np.ndarray], int]:
    """The model's inputs around one window (see :func:`context_run`) and that window's row."""
    part, local = context_run(run, snapshot, trained)
    inputs, snap = model_inputs(trained, part, noise, thin=False)
    rows = np.flatnonzero(snap == local)
    if rows.size == 0:
        raise ValueError(f"run {run.name}: snapshot {snapshot} has no windows")
    return inputs, int(rows[min(int(window), rows.size - 1)])


def window_prediction(
    trained: Any, run: Run, snapshot: int, window: int, noise: Any | None = None
) -> dict[str, float]:
    """Prediction (mean, lower, upper, std) of one window, optionally under noise."""
    inputs, row = _window_inputs(trained, run, snapshot, window, noise)
    out = predict_inputs(trained, [a[row:row + 1] for a in inputs])
    return {k: float(np.asarray(v)[0]) for k, v in out.items()}


def noise_sweep_predictions(
    models: dict[str, Any],
    runs: list[Run],
    kind: str,
    severities: list[float],
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, list[list[tuple[np.ndarray, np.ndarray]]]]:
    """Window labels and mean predictions of each model on each run at each noise severity:
    ``{label: [[(labels, predictions) per run] per severity]}``."""
    from rul_core import labels as lb
    from rul_core.progress import check, emit
    from rul_core.signal.noise import NoiseModel

    total = len(models) * len(severities) * len(runs)
    done = 0
    out: dict[str, list[list[tuple[np.ndarray, np.ndarray]]]] = {}
    for label, trained in models.items():
        per_severity = []
        for sev in severities:
            pairs = []
            for run in runs:
                check(cancel)
                noise = NoiseModel(kind, float(sev), seed) if sev > 0 else None
                inputs, snap = model_inputs(trained, run, noise)
                pred = predict_inputs(trained, inputs)["mean"]
                y = lb.window_labels(lb.label_run(run, trained.label_scheme,
                                                  **trained.label_params), snap)
                pairs.append((np.asarray(y, float), np.asarray(pred, float)))
                done += 1
                emit(progress, "noise sweep", done, total, f"{label} severity {sev:g}")
            per_severity.append(pairs)
        out[label] = per_severity
    return out


def rank_correlation(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Spearman's rank correlation of predictions with labels (NaN when either is constant)."""
    from scipy.stats import spearmanr

    y, p = np.asarray(labels, float), np.asarray(predictions, float)
    if y.size < 2 or np.ptp(y) == 0 or np.ptp(p) == 0:
        return float("nan")
    return float(spearmanr(y, p).statistic)


#: Columns of :func:`sweep_table`.
SWEEP_COLUMNS = ("model", "severity", "rmse", "rank_correlation")


def sweep_table(
    found: dict[str, list[list[tuple[np.ndarray, np.ndarray]]]], severities: list[float]
) -> pd.DataFrame:
    """The scores of a :func:`noise_sweep_predictions` result at its ``severities``, one row
    per model and severity: the RMSE over the windows of all runs, and the rank correlation
    of prediction and label within each run, averaged over the runs (does the estimate still
    fall as the bearing wears? An error that stays low under noise can also mean a model that
    no longer reads its input)."""
    from rul_core.metrics import point_metrics

    rows = []
    for label, per_severity in found.items():
        for sev, pairs in zip(severities, per_severity, strict=True):
            y = np.concatenate([a for a, _ in pairs])
            p = np.concatenate([b for _, b in pairs])
            rhos = [rank_correlation(a, b) for a, b in pairs]
            rho = float(np.nanmean(rhos)) if np.isfinite(rhos).any() else float("nan")
            rows.append((label, float(sev), float(point_metrics(y, p)["rmse"]), rho))
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))


def sweep_curves(table: pd.DataFrame, column: str = "rmse"
                 ) -> dict[str, tuple[list[float], list[float]]]:
    """``{model: (severities, values of column)}`` of a :func:`sweep_table`, in the
    models' order (what :func:`rul_core.plots.error_vs_severity_figure` draws)."""
    return {str(m): (g["severity"].tolist(), g[column].tolist())
            for m, g in table.groupby("model", sort=False)}


# --------------------------------------------------------------------------- explanations


def explain_background(trained: Any, runs: list[Run], max_windows: int = 100,
                       seed: int = 0) -> list[np.ndarray]:
    """Background inputs for LIME/SHAP: up to ``max_windows`` windows of ``runs`` (the
    model's training runs when the caller has them), sampled evenly with a seed.

    The windows are drawn by their place among all the runs' windows (``model_inputs``
    order), then only their snapshots are read (:func:`_rows_inputs`): on a long run the
    features of a few dozen windows instead of thousands, the same inputs. Background LRP
    compiles (:mod:`rul_core.explain.warm`) pause meanwhile."""
    from rul_core.explain.warm import foreground

    with foreground():
        return _explain_background(trained, runs, max_windows, seed)


def _explain_background(trained: Any, runs: list[Run], max_windows: int, seed: int
                        ) -> list[np.ndarray]:
    every = int(getattr(trained, "snapshot_every", 1) or 1)
    counts = [every_nth_from_last(r.n_snapshots, every).size
              * _windows_per_snapshot(r, trained.pipeline_config) for r in runs]
    n = int(sum(counts))
    idx = (np.sort(np.random.default_rng(seed).choice(n, max_windows, replace=False))
           if n > max_windows else np.arange(n))
    starts = np.cumsum([0, *counts])
    parts = [_rows_inputs(trained, run, idx[(idx >= a) & (idx < b)] - a)
             for run, a, b in zip(runs, starts[:-1], starts[1:], strict=True)]
    parts = [p for p in parts if p is not None] or [model_inputs(trained, runs[0])[0]]
    return [np.concatenate([p[i] for p in parts], axis=0) for i in range(len(parts[0]))]


def _windows_per_snapshot(run: Run, pipeline_config: Any) -> int:
    """Windows per snapshot of ``run`` under a model's pipeline config."""
    from rul_core.signal.windows import windows_per_snapshot as per_snapshot

    return per_snapshot(run.n_samples, pipeline_config.window_length, pipeline_config.stride)


def _rows_inputs(trained: Any, run: Run, rows: np.ndarray) -> list[np.ndarray] | None:
    """Rows ``rows`` of ``model_inputs(trained, run)[0]`` (None for no rows), computed from
    the snapshots they lie in and the per-run baseline's first ones only (a window's ImR and
    TF features depend on nothing else). RC-LSTM's inputs reach back over earlier windows,
    and it skips the costly features anyway: there the whole run is prepared."""
    if rows.size == 0:
        return None
    if trained.config.name == "rc_lstm":
        return [a[rows] for a in model_inputs(trained, run)[0]]
    every = int(getattr(trained, "snapshot_every", 1) or 1)
    kept = every_nth_from_last(run.n_snapshots, every)
    per = _windows_per_snapshot(run, trained.pipeline_config)
    k = int(getattr(trained.pipeline_config, "baseline_snapshots", 0) or 0)
    where = np.unique(np.concatenate([np.arange(min(k, kept.size)), rows // per]))
    inputs, _ = model_inputs(trained, run.take(kept[where]), thin=False)
    local = np.searchsorted(where, rows // per) * per + rows % per
    return [a[local] for a in inputs]


@dataclass
class WindowExplanation:
    """The comparison of one window plus what its overlays draw: pixel maps over the image
    (Multimodal-RUL, CARLE) or segment attributions over the signal sequence (RC-LSTM)."""

    comparison: Any  # rul_core.explain.compare.WindowComparison
    image: np.ndarray | None  # (64, W) model image input in [0, 1]
    image_maps: dict[str, np.ndarray]  # method -> (64, W) attribution
    tf_names: list[str]
    signal: SignalView | None = None


@dataclass
class SignalView:
    """A recurrent model's input sequence and each method's segment attributions over it."""

    samples: np.ndarray  # (T·L, C): the T steps' windows one after the other, oldest first
    steps: int  # T: the windows (snapshots) in the sequence
    edges: np.ndarray  # (n_segments + 1,) sample index where each segment starts, then T·L
    segment_maps: dict[str, np.ndarray]  # method -> (n_segments,) normalised attribution


def model_signal_view(comp: Any, model: Any, inputs: list[np.ndarray], row: int
                      ) -> SignalView | None:
    """:func:`signal_view` of window ``row`` of ``inputs`` when ``model`` reads the signal
    (its input named ``signal``; RC-LSTM), else None."""
    from rul_core.explain.common import input_names

    names = input_names(model)
    return signal_view(comp, inputs[names.index("signal")][row]) if "signal" in names else None


def signal_view(comp: Any, signal_input: np.ndarray) -> SignalView:
    """The signal overlay of one window comparison: ``signal_input`` is the window's model
    input (T, L, 1, C); the segments are those the explainers used."""
    from rul_core.explain.common import signal_segments

    x = np.asarray(signal_input, dtype=np.float64)
    steps, length = int(x.shape[0]), int(x.shape[1])
    is_signal = np.asarray(comp.modality) == "signal"
    maps = {m: np.asarray(v, dtype=float)[is_signal] for m, v in comp.normalised.items()}
    n_segments = int(is_signal.sum())
    seg = signal_segments((steps, length), n_segments).reshape(-1)
    edges = np.append(np.searchsorted(seg, np.arange(n_segments)), seg.size)
    return SignalView(x.reshape(steps * length, -1), steps, edges, maps)


def image_maps(comp: Any, image: np.ndarray) -> dict[str, np.ndarray]:
    """Per-method ImR attribution maps (64 x columns) of one window comparison; LIME's band
    weights are spread over the band's lit pixels."""
    from rul_core.explain.common import band_segments

    maps: dict[str, np.ndarray] = {}
    for method, res in comp.details.items():
        if method == "lrp":
            maps[method] = np.asarray(res.relevance["image"][0], dtype=float).squeeze()
        elif method == "shap":
            maps[method] = np.asarray(res.values["image"][0], dtype=float).squeeze()
        elif method == "lime" and "image" in res:
            seg = band_segments(image.shape[1], len(res["image"].mean))
            cols = np.asarray(res["image"].mean, dtype=float)[seg]
            maps[method] = np.repeat(cols[None, :], image.shape[0], axis=0) * (image > 0)
    return maps


def explain_window(
    trained: Any,
    run: Run,
    snapshot: int,
    window: int,
    background: list[np.ndarray],
    settings: Any | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> WindowExplanation:
    """LRP, LIME and SHAP of one window of ``run`` (see :mod:`rul_core.explain.compare`);
    background LRP compiles (:mod:`rul_core.explain.warm`) pause meanwhile."""
    from rul_core.explain.common import input_names
    from rul_core.explain.compare import compare_window
    from rul_core.explain.warm import foreground

    model = trained.models[0]
    with foreground():
        inputs, row = _window_inputs(trained, run, snapshot, window)
        comp = compare_window(model, inputs, row, background, settings, progress, cancel)
    names = input_names(model)
    image, maps = None, {}
    if "image" in names:
        image = np.asarray(inputs[names.index("image")][row, :, :, 0], dtype=np.float32)
        maps = image_maps(comp, image)
    signal = model_signal_view(comp, model, inputs, row)
    tf_names = [n for n, m in zip(comp.feature_names, comp.modality, strict=True) if m == "tf"]
    return WindowExplanation(comp, image, maps, tf_names, signal)


def warm_explain(trained: Any, rules: str | None = None) -> bool:
    """Trace what explaining ``trained``'s network runs, in a background thread, once per
    model (:mod:`rul_core.explain.warm`; LRP with ``rules``, by default the model's default
    set): the Explain page calls it once drawn, so the first click does not pay the traces.
    Returns at once; True when this call started the warm-up."""
    from rul_core.explain.compare import default_rules
    from rul_core.explain.warm import start_warm_up

    return start_warm_up(trained.models[0], rules or default_rules(trained.config.name))


def explain_run(
    trained: Any,
    run: Run,
    background: list[np.ndarray],
    n_windows: int = 5,
    settings: Any | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Any:
    """The comparison over ``n_windows`` windows spread evenly over the run (global view);
    background LRP compiles (:mod:`rul_core.explain.warm`) pause meanwhile."""
    from rul_core.explain.compare import compare_windows
    from rul_core.explain.warm import foreground

    with foreground():
        inputs, _ = model_inputs(trained, run)
        n = inputs[0].shape[0]
        idx = np.unique(np.linspace(0, n - 1, min(n_windows, n)).round().astype(int))
        return compare_windows(trained.models[0], inputs, idx.tolist(), background, settings,
                               progress, cancel)


def remaining_time_curves(trained: Any, snapshots: Any) -> Any:
    """Remaining time to failure (minutes) over a run, from one model's snapshot predictions.

    ``snapshots``: one run's rows of an evaluation's ``snapshots`` table (``time_s``, ``rul``,
    ``lower``, ``upper``). Each prediction is turned into time by inverting the model's label
    scheme (:func:`rul_core.phm2012.rolling_rul_s`, median over the last 5 snapshots, past
    only). ``actual_min`` assumes the run was recorded up to failure.
    """
    import pandas as pd

    from rul_core.phm2012 import recording_timing, rolling_rul_s

    s = snapshots.sort_values("time_s")
    t = s["time_s"].to_numpy(dtype=np.float64)
    timing = recording_timing(s, trained.snapshot_every)
    out = pd.DataFrame({"time_min": (t - t[0]) / 60.0})
    for col in ("rul", "lower", "upper"):
        out[f"{col}_min"] = rolling_rul_s(s, trained.label_scheme, trained.label_params,
                                          column=col, **timing) / 60.0
    out["actual_min"] = (t[-1] - t) / 60.0
    return out


def rul_curve(snapshots: Any, run: str, name: str) -> dict[str, Any]:
    """One run's snapshot predictions (an evaluation's ``snapshots`` table) as a curve of
    :func:`rul_core.plots.rul_figure`: snapshot, prediction, band and true RUL."""
    s = snapshots[snapshots["run"] == run]
    return {"x": s["snapshot"].to_numpy(), "pred": s["rul"].to_numpy(),
            "lower": s["lower"].to_numpy(), "upper": s["upper"].to_numpy(),
            "true": s["y_true"].to_numpy(), "name": name}
