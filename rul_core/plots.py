"""Plotly figure builders for the workbench app and reports.

Every function takes plain numpy arrays (or a :class:`~rul_core.data.run.Run`) and returns a
``plotly.graph_objects.Figure``; nothing here computes features or runs models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

TF_FEATURE_NAMES = ("log E", "f_d", "h", "K", "sk", "mean", "std")
#: Panel titles of the TF features: symbol, what it is and its unit (rul_core.signal.features;
#: the features are of the window normalised to [0, 1]).
TF_FEATURE_TITLES = ("log E: ln Σ|W|² (CWT energy)", "f_d: dominant frequency (Hz)",
                     "h: histogram entropy (nats)", "K: kurtosis (Pearson, –)",
                     "sk: skewness (–)", "mean (normalised amplitude)",
                     "std (normalised amplitude)")
#: The same in three short lines, for panels side by side.
TF_FEATURE_SHORT_TITLES = ("log E<br>ln Σ|W|²<br>(CWT energy)", "f_d<br>dominant<br>frequency (Hz)",
                           "h<br>histogram<br>entropy (nats)", "K<br>kurtosis<br>(Pearson, –)",
                           "sk<br>skewness<br>(–)", "mean<br>(normalised<br>amplitude)",
                           "std<br>(normalised<br>amplitude)")
METHOD_COLOURS = {"lrp": "#d62728", "lime": "#2ca02c", "shap": "#1f77b4", "random": "#7f7f7f"}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}


def _style(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.01}, height=height, **_LAYOUT)
    return fig


def minmax_downsample(
    x: np.ndarray, y: np.ndarray, max_points: int = 4000
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a long trace to at most ``max_points`` points keeping each bucket's min and max.

    The envelope of the signal (every peak) survives, unlike plain decimation. Returns the
    input unchanged when it is already short enough.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    n = y.shape[0]
    if n <= max_points or max_points < 4:
        return x, y
    n_buckets = max_points // 2
    edges = np.linspace(0, n, n_buckets + 1).astype(np.int64)
    starts = edges[:-1]
    keep = starts < edges[1:]
    starts = starts[keep]
    mins = np.minimum.reduceat(y, starts)
    maxs = np.maximum.reduceat(y, starts)
    bucket_of = np.repeat(np.arange(starts.size), np.diff(np.append(starts, n)))
    is_min = y == mins[bucket_of]
    is_max = y == maxs[bucket_of]
    first_min = np.full(starts.size, n, dtype=np.int64)
    first_max = np.full(starts.size, n, dtype=np.int64)
    idx = np.arange(n)
    np.minimum.at(first_min, bucket_of[is_min], idx[is_min])
    np.minimum.at(first_max, bucket_of[is_max], idx[is_max])
    both = np.sort(np.stack([first_min, first_max], axis=1), axis=1).ravel()
    return x[both], y[both]


def raw_signal_figure(
    snapshot: np.ndarray,
    fs: float,
    channel_names: Sequence[str],
    title: str = "Raw signal",
    max_points: int | None = 4000,
    unit: str = "g",
) -> go.Figure:
    """One snapshot (samples, channels) over time in ms; min/max downsampled unless
    ``max_points`` is None (full resolution)."""
    snapshot = np.asarray(snapshot)
    if snapshot.ndim == 1:
        snapshot = snapshot[:, None]
    n_ch = snapshot.shape[1]
    fig = make_subplots(rows=n_ch, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=list(channel_names)[:n_ch])
    t_ms = np.arange(snapshot.shape[0]) / float(fs) * 1000.0
    for c in range(n_ch):
        x, y = t_ms, snapshot[:, c]
        if max_points:
            x, y = minmax_downsample(x, y, max_points)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=str(channel_names[c]),
                                 line={"width": 1, "color": PALETTE[c % len(PALETTE)]}),
                      row=c + 1, col=1)
        fig.update_yaxes(title_text=unit, row=c + 1, col=1)
    fig.update_xaxes(title_text="time (ms)", row=n_ch, col=1)
    fig.update_layout(showlegend=False)
    return _style(fig, title, height=220 + 160 * n_ch)


def trends_figure(
    x: np.ndarray,
    series: Mapping[str, np.ndarray],
    title: str,
    y_title: str,
    x_title: str = "snapshot",
    marker_x: float | None = None,
) -> go.Figure:
    """Several named curves over life (e.g. RMS per channel), with an optional vertical marker."""
    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        fig.add_trace(go.Scatter(x=np.asarray(x), y=np.asarray(values), mode="lines", name=name,
                                 line={"color": PALETTE[i % len(PALETTE)]}))
    if marker_x is not None:
        fig.add_vline(x=float(marker_x), line={"dash": "dash", "color": "black"})
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return _style(fig, title, height=320)


def label_figure(
    x: np.ndarray, labels: Mapping[str, np.ndarray], title: str = "RUL labels"
) -> go.Figure:
    """Label curves (normalised RUL per snapshot) of one or more schemes."""
    fig = trends_figure(x, labels, title, "normalised RUL")
    fig.update_yaxes(range=[-0.05, 1.05])
    return fig


def display_grid(values: np.ndarray) -> np.ndarray:
    """A heatmap's values as float32: seven significant digits, more than a colour scale
    shows, in half the bytes sent to the browser (a 100 x 1000 scalogram: 1.4 MB -> 0.75 MB
    of figure JSON)."""
    return np.asarray(values, dtype=np.float32)


def imr_figure(
    image: np.ndarray, title: str = "ImR raster", colorscale: str = "Greys"
) -> go.Figure:
    """An ImR raster (64 x columns); uint8 pair counts are shown as /2. Array row 0 is the top
    amplitude level (as produced by rul_core.signal.raster), so the y axis is reversed."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 2.0
    img = np.squeeze(img)
    fig = go.Figure(go.Heatmap(z=display_grid(img), colorscale=colorscale, zmin=0, zmax=1,
                               showscale=False))
    fig.update_xaxes(title_text="column (sample pair)")
    fig.update_yaxes(title_text="amplitude row (0 = top level)", autorange="reversed")
    return _style(fig, title, height=300)


def log_ticks(lo: float, hi: float, min_ticks: int = 4) -> list[float]:
    """Round tick values (1-2-5 per decade, or every integer mantissa when that leaves fewer
    than ``min_ticks``) in ``[lo, hi]``, for a log axis that plotly would otherwise label with
    bare mantissas ("2" for 20 Hz) when it spans less than a few decades."""
    if not (0 < lo <= hi) or not np.isfinite(hi):
        return []
    decades = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
    ticks: list[float] = []
    for mantissas in ((1, 2, 5), tuple(range(1, 10))):
        ticks = [float(m * 10.0**d) for d in decades for m in mantissas]
        ticks = [round(t, 12) for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
        if len(ticks) >= min_ticks:
            break
    return ticks


def _hz_label(value: float) -> str:
    """A frequency tick: 8, 20, 500, 1k, 12.5k."""
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"


def scalogram_figure(
    power: np.ndarray,
    freqs: np.ndarray,
    fs: float,
    coi_hz: np.ndarray | None = None,
    title: str = "Scalogram |CWT|",
    notice: str | None = None,
    unit: str = "normalised",
) -> go.Figure:
    """|CWT| (scales x time) against frequency (log axis) and time in ms; ``unit``: that of
    the transformed signal (the pages transform the window normalised to [0, 1]).

    ``coi_hz`` gives, per time sample, the frequency below which edge effects dominate (the
    cone of influence); that region is hatched grey.
    """
    power = np.asarray(power)
    freqs = np.asarray(freqs, dtype=float)
    order = np.argsort(freqs)
    t_ms = np.arange(power.shape[1]) / float(fs) * 1000.0
    fig = go.Figure(go.Heatmap(x=t_ms, y=freqs[order], z=display_grid(power[order]),
                               colorscale="Viridis",
                               colorbar={"title": {"text": f"|W|<br>({unit})"}}))
    if coi_hz is not None:
        coi = np.clip(np.asarray(coi_hz, dtype=float), freqs.min(), freqs.max())
        fig.add_trace(go.Scatter(x=t_ms, y=coi, mode="lines", name="cone of influence",
                                 line={"color": "white", "dash": "dash", "width": 2}))
        fig.add_trace(go.Scatter(x=np.concatenate([t_ms, t_ms[::-1]]),
                                 y=np.concatenate([coi, np.full_like(coi, freqs.min())]),
                                 fill="toself", fillcolor="rgba(200,200,200,0.45)",
                                 line={"width": 0}, hoverinfo="skip",
                                 name="edge-affected (inside COI)"))
    fig.update_yaxes(type="log", title_text="frequency (Hz)")
    ticks = log_ticks(float(freqs.min()), float(freqs.max()))
    if len(ticks) >= 2:
        fig.update_yaxes(tickmode="array", tickvals=ticks,
                         ticktext=[_hz_label(v) for v in ticks])
    fig.update_xaxes(title_text="time (ms)")
    fig.update_layout(legend={"orientation": "h", "y": -0.25})
    if notice:
        fig.add_annotation(text=notice, xref="paper", yref="paper", x=0, y=1.0, showarrow=False,
                           xanchor="left", yanchor="bottom", font={"size": 11})
    return _style(fig, title, height=380)


def tf_bars_figure(
    tf: np.ndarray, channel_names: Sequence[str], title: str = "TF features of the window"
) -> go.Figure:
    """Seven TF features per channel as grouped bars; ``tf`` is (channels, 7)."""
    tf = np.atleast_2d(np.asarray(tf, dtype=float))
    fig = make_subplots(rows=1, cols=len(TF_FEATURE_NAMES),
                        subplot_titles=TF_FEATURE_SHORT_TITLES)
    fig.update_annotations(font_size=11)
    for c in range(tf.shape[0]):
        for j in range(tf.shape[1]):
            fig.add_trace(go.Bar(x=[str(channel_names[c])], y=[tf[c, j]],
                                 marker_color=PALETTE[c % len(PALETTE)],
                                 name=str(channel_names[c]), showlegend=j == 0),
                          row=1, col=j + 1)
    fig = _style(fig, title, height=360)
    fig.update_layout(margin={"t": 115})
    return fig


def _panel_vline(x: float, panel: int) -> dict:
    """A dashed black vertical line across subplot ``panel`` (1-based), as add_vline draws it
    (without add_vline's per-call cost)."""
    suffix = "" if panel == 1 else str(panel)
    return {"type": "line", "x0": x, "x1": x, "xref": f"x{suffix}", "y0": 0, "y1": 1,
            "yref": f"y{suffix} domain", "line": {"dash": "dash", "color": "black"}}


def tf_trends_figure(
    x: np.ndarray,
    tf: np.ndarray,
    channel_names: Sequence[str],
    marker_x: float | None = None,
    title: str = "TF features over the run",
    max_points: int = 3000,
) -> go.Figure:
    """Each TF feature over the run (one panel per feature, titled with its unit), ``tf`` is
    (windows, channels, 7); traces longer than ``max_points`` are min/max downsampled."""
    tf = np.asarray(tf, dtype=float)
    x = np.asarray(x)
    fig = make_subplots(rows=len(TF_FEATURE_NAMES), cols=1, shared_xaxes=True,
                        vertical_spacing=0.045, subplot_titles=TF_FEATURE_TITLES)
    fig.update_annotations(font_size=12)
    traces, rows = [], []
    for j in range(tf.shape[2]):
        for c in range(tf.shape[1]):
            xs, ys = minmax_downsample(x, tf[:, c, j], max_points)
            traces.append(go.Scatter(x=xs, y=ys, mode="lines", name=str(channel_names[c]),
                                     showlegend=j == 0,
                                     line={"width": 1, "color": PALETTE[c % len(PALETTE)]}))
            rows.append(j + 1)
    fig.add_traces(traces, rows=rows, cols=[1] * len(rows))  # one call: add_trace per trace
    if marker_x is not None:  # and add_vline per panel were half of the figure's cost
        fig.update_layout(shapes=[_panel_vline(float(marker_x), j + 1)
                                  for j in range(tf.shape[2])])
    fig.update_xaxes(title_text="window", row=tf.shape[2], col=1)
    return _style(fig, title, height=1050)


def rul_figure(
    curves: Sequence[Mapping[str, object]],
    title: str = "Predicted vs true RUL",
    x_title: str = "snapshot",
    y_title: str = "normalised RUL",
    true_name: str = "true RUL",
) -> go.Figure:
    """RUL over life for one or more models on one chart.

    Each curve is a mapping with ``x``, ``pred`` and optional ``true``, ``lower``, ``upper`` and
    ``name``. The true RUL is drawn once (black) per distinct curve; bands are translucent.
    """
    fig = go.Figure()
    drawn_true = False
    n_bands = sum(c.get("lower") is not None and c.get("upper") is not None for c in curves)
    for i, c in enumerate(curves):
        colour = PALETTE[i % len(PALETTE)]
        x = np.asarray(c["x"])
        name = str(c.get("name", f"model {i + 1}"))
        lower, upper = c.get("lower"), c.get("upper")
        if lower is not None and upper is not None:
            # several bands: fainter fills with dotted edges, so overlaps stay readable
            edge = ({"width": 0} if n_bands < 2
                    else {"width": 1, "dash": "dot", "color": _rgba(colour, 0.7)})
            fig.add_trace(go.Scatter(
                x=np.concatenate([x, x[::-1]]),
                y=np.concatenate([np.asarray(upper), np.asarray(lower)[::-1]]),
                fill="toself", fillcolor=_rgba(colour, 0.2 if n_bands < 2 else 0.08),
                line=edge, hoverinfo="skip", name=f"{name} interval",
                legendgroup=name))
        fig.add_trace(go.Scatter(x=x, y=np.asarray(c["pred"]), mode="lines", name=name,
                                 line={"color": colour}, legendgroup=name))
        if c.get("true") is not None and not drawn_true:
            fig.add_trace(go.Scatter(x=x, y=np.asarray(c["true"]), mode="lines", name=true_name,
                                     line={"color": "black", "dash": "dash"}))
            drawn_true = True
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    if len(curves) < 2:
        return _style(fig, title, height=380)
    # several models: the legend goes under the plot, where long labels do not squeeze it
    fig = _style(fig, title, height=420 + 22 * len(curves))
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0})
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def table_figure(df: pd.DataFrame, title: str = "", digits: int = 4) -> go.Figure:
    """A DataFrame as a plotly table (for reports); floats rounded to ``digits``."""
    shown = df.reset_index() if df.index.name or isinstance(df.index, pd.MultiIndex) else df
    cells = []
    for col in shown.columns:
        values = shown[col]
        if pd.api.types.is_float_dtype(values):
            values = values.round(digits)
        cells.append(values.astype(str).tolist())
    fig = go.Figure(go.Table(header={"values": [str(c) for c in shown.columns],
                                     "fill_color": "#e8eef7", "align": "left"},
                             cells={"values": cells, "align": "left"}))
    return _style(fig, title, height=60 + 28 * (len(shown) + 2))


def _loss_series_parts(name: str) -> tuple[str, str, str]:
    """``'val_loss (fold 2, member 3)'`` -> ``('val_loss', 'fold 2', 'member 3')``; missing
    parts are empty."""
    kind, _, tags = name.partition(" (")
    parts = [t.strip() for t in tags.rstrip(")").split(",") if t.strip()]
    fold = next((t for t in parts if t.startswith("fold ")), "")
    member = next((t for t in parts if t.startswith("member ")), "")
    return kind, fold, member


def loss_figure(history: Mapping[str, Sequence[float]], title: str = "Loss") -> go.Figure:
    """Training curves per epoch: one line per history key (``loss``, ``val_loss (fold 2,
    member 3)`` ...). A fold or, without folds, an ensemble member keeps one colour (validation
    dashed); with folds, a fold's members share one legend entry that shows or hides them
    all (a five-member, four-fold cross-validation has 20 training curves)."""
    fig = go.Figure()
    n_epochs = 0
    positive = True
    parts = {name: _loss_series_parts(name) for name in history}
    has_folds = any(fold for _, fold, _ in parts.values())
    colour_of: dict[str, str] = {}
    in_legend: set[tuple[str, str]] = set()
    for name, values in history.items():
        v = np.asarray(values, dtype=float)
        if v.size == 0:
            continue
        n_epochs = max(n_epochs, v.size)
        finite = v[np.isfinite(v)]
        positive = positive and bool(finite.size) and bool(np.all(finite > 0))
        kind, fold, member = parts[name]
        group = fold if has_folds else member
        colour = colour_of.setdefault(group, PALETTE[len(colour_of) % len(PALETTE)])
        shown = not has_folds or (kind, fold) not in in_legend
        in_legend.add((kind, fold))
        fig.add_trace(go.Scatter(
            x=np.arange(1, v.size + 1), y=v, mode="lines+markers",
            name=f"{kind} ({fold})" if has_folds else name, showlegend=shown,
            legendgroup=f"{kind} {fold}" if has_folds else None,
            hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
            opacity=0.55 if has_folds and member else 1.0,
            line={"color": colour, "dash": "dash" if kind.startswith("val") else "solid"},
            marker={"size": 5}))
    # whole epochs only: one tick per epoch up to 10, then every k-th
    fig.update_xaxes(title_text="epoch", tickmode="linear", tick0=1,
                     dtick=max(1, int(np.ceil(n_epochs / 10))))
    # a log axis cannot show a loss <= 0 (RC-LSTM's Gaussian negative log-likelihood)
    fig.update_yaxes(title_text="loss" + (" (log scale)" if positive else ""),
                     type="log" if positive else "linear")
    return _style(fig, title, height=320)


def error_vs_severity_figure(
    sweep: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    noise: str = "",
    metric: str = "RMSE",
) -> go.Figure:
    """Robustness curves: error against noise severity, one line per model."""
    fig = go.Figure()
    for i, (model, (sev, err)) in enumerate(sweep.items()):
        fig.add_trace(go.Scatter(x=np.asarray(sev), y=np.asarray(err), mode="lines+markers",
                                 name=model, line={"color": PALETTE[i % len(PALETTE)]}))
    fig.update_xaxes(title_text="severity")
    fig.update_yaxes(title_text=metric)
    title = f"{metric} vs {noise} noise severity".replace("  ", " ")
    if len(sweep) < 2:
        return _style(fig, title, height=340)
    # several models: the legend under the plot, where long labels do not squeeze it
    fig = _style(fig, title, height=380 + 22 * len(sweep))
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0})
    return fig


def shared_abs_max(maps: Mapping[str, np.ndarray]) -> float:
    """The largest |value| over several attribution maps (one colour scale for all)."""
    vals = [float(np.nanmax(np.abs(m))) for m in maps.values() if np.size(m)]
    top = max(vals, default=0.0)
    return top if top > 0 else 1.0


def normalise_attributions(
    maps: Mapping[str, np.ndarray], quantile: float = 1.0
) -> dict[str, np.ndarray]:
    """Scale each map to [-1, 1] by its own ``quantile`` of the non-zero |values| (1.0: the
    max) and clip, so methods compare on one colour scale; a quantile below 1 keeps a few
    extreme pixels from washing out a pixel map."""
    out = {}
    for k, m in maps.items():
        m = np.asarray(m, dtype=float)
        nz = np.abs(m[np.isfinite(m) & (m != 0)])
        top = float(np.quantile(nz, quantile)) if nz.size else 0.0
        out[k] = np.clip(m / top, -1.0, 1.0) if top > 0 else m
    return out


def attribution_overlay_figure(
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    title: str = "Image attributions (same scale)",
) -> go.Figure:
    """Side-by-side ImR attribution maps (64 x 500) on one symmetric colour scale, each over
    the raster drawn as a faint outline."""
    img = np.squeeze(np.asarray(image, dtype=float))
    if img.max() > 1.0:
        img = img / 2.0
    top = shared_abs_max(maps)
    names = list(maps)
    fig = make_subplots(rows=1, cols=max(1, len(names)), subplot_titles=[n.upper() for n in names],
                        horizontal_spacing=0.03)
    for i, name in enumerate(names):
        m = np.squeeze(np.asarray(maps[name], dtype=float))
        fig.add_trace(go.Heatmap(z=display_grid(m), zmin=-top, zmax=top, colorscale="RdBu_r",
                                 showscale=i == len(names) - 1, name=name), row=1, col=i + 1)
        fig.add_trace(go.Contour(z=img, showscale=False, contours={"start": 0.25, "end": 0.25,
                                 "coloring": "lines"}, line={"width": 0.6},
                                 colorscale=[[0, "rgba(60,60,60,0.45)"],
                                             [1, "rgba(60,60,60,0.45)"]], hoverinfo="skip",
                                 name="raster"), row=1, col=i + 1)
    fig.update_yaxes(autorange="reversed")
    return _style(fig, title, height=320)


def signal_attribution_figure(
    samples: np.ndarray,
    steps: int,
    edges: np.ndarray,
    segment_maps: Mapping[str, np.ndarray],
    title: str = "Signal attributions",
    max_points: int = 3000,
    channel_names: Sequence[str] | None = None,
) -> go.Figure:
    """One row per method: the input sequence (T windows one after the other, each channel a
    line) over its segments coloured by that method's attribution, one symmetric colour scale
    for all methods; dotted lines separate the T windows, labelled t−(T−1) … t."""
    x_sig = np.asarray(samples, dtype=float)
    if x_sig.ndim == 1:
        x_sig = x_sig[:, None]
    n = x_sig.shape[0]
    edges = np.asarray(edges, dtype=float)
    top = shared_abs_max(segment_maps)
    lo, hi = float(np.min(x_sig)), float(np.max(x_sig))
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    names = list(segment_maps)
    fig = make_subplots(rows=max(1, len(names)), cols=1, shared_xaxes=True,
                        vertical_spacing=0.04, subplot_titles=[m.upper() for m in names])
    idx = np.arange(n)
    for r, method in enumerate(names, start=1):
        values = np.asarray(segment_maps[method], dtype=float)
        fig.add_trace(go.Heatmap(z=values[None, :], x=edges, y=[lo - pad, hi + pad],
                                 zmin=-top, zmax=top, colorscale="RdBu_r", opacity=0.8,
                                 showscale=r == 1, name=method.upper(),
                                 colorbar={"title": {"text": "attribution"}},
                                 hovertemplate="samples %{x}<br>attribution %{z:.3f}"
                                               "<extra></extra>"), row=r, col=1)
        for c in range(x_sig.shape[1]):
            xs, ys = minmax_downsample(idx, x_sig[:, c], max_points)
            name = (str(channel_names[c]) if channel_names is not None
                    and c < len(channel_names) else f"channel {c}")
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name,
                                     showlegend=r == 1, legendgroup=f"ch{c}",
                                     line={"width": 0.8, "color": PALETTE[c % len(PALETTE)]
                                           if c else "#303030"}), row=r, col=1)
    step_len = n / max(1, steps)
    for k in range(1, steps):
        fig.add_vline(x=k * step_len, line={"dash": "dot", "width": 1, "color": "#888"})
    fig.update_xaxes(tickvals=[(k + 0.5) * step_len for k in range(steps)],
                     ticktext=[f"t−{steps - 1 - k}" if k < steps - 1 else "t"
                               for k in range(steps)])
    fig.update_xaxes(title_text="window of the input sequence (oldest first)",
                     row=max(1, len(names)), col=1)
    fig = _style(fig, title, height=190 + 170 * max(1, len(names)))
    # the channel legend under the x-axis title, clear of the figure title above
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "x": 0,
                              "y": -0.5 / max(1, len(names))},
                      margin={"b": 90})
    return fig


def feature_attribution_figure(
    attributions: Mapping[str, np.ndarray],
    feature_names: Sequence[str],
    title: str = "TF-feature attributions (same scale)",
    errors: Mapping[str, np.ndarray] | None = None,
) -> go.Figure:
    """Grouped bars: one group per feature, one bar per method; optional error bars (e.g. the
    LIME spread across seeds)."""
    fig = go.Figure()
    for i, (method, values) in enumerate(attributions.items()):
        err = None if errors is None or method not in errors else {
            "type": "data", "array": np.asarray(errors[method], dtype=float)}
        fig.add_trace(go.Bar(x=list(feature_names), y=np.asarray(values, dtype=float),
                             name=method.upper(), error_y=err,
                             marker_color=METHOD_COLOURS.get(method, PALETTE[i % len(PALETTE)])))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="attribution")
    return _style(fig, title, height=340)


def layer_relevance_figure(
    layers: Sequence[str], sums: Sequence[float], output_relevance: float | None = None,
    title: str = "Relevance sum per layer",
) -> go.Figure:
    """Relevance sum after each layer (output first, at the top) as horizontal bars, so long
    layer names stay readable; a dashed line marks the output value so gains and losses are
    visible."""
    fig = go.Figure(go.Bar(y=list(layers), x=np.asarray(sums, dtype=float), orientation="h",
                           marker_color=METHOD_COLOURS["lrp"]))
    if output_relevance is not None:
        fig.add_vline(x=float(output_relevance), line={"dash": "dash"},
                      annotation_text="output relevance", annotation_position="top")
    fig.update_yaxes(autorange="reversed", automargin=True, tickfont={"size": 10})
    fig.update_xaxes(title_text="sum of relevance")
    return _style(fig, title, height=max(320, 110 + 14 * len(layers)))


def add_reference_lines(fig: go.Figure, prediction: float | None, baseline: float | None,
                        **subplot: int) -> None:
    """The input's (solid) and the baseline's (dashed) predictions as labelled horizontal
    lines, the higher one labelled above it and the lower below, so close lines stay
    readable; ``subplot``: ``row``/``col`` of a subplot figure."""
    refs = sorted(((float(v), text, dash) for v, text, dash in
                   ((prediction, "input", "solid"), (baseline, "baseline", "dash"))
                   if v is not None), reverse=True)
    for i, (value, text, dash) in enumerate(refs):
        fig.add_hline(y=value, line={"color": "#888", "dash": dash, "width": 1},
                      annotation_text=f"{text} {value:.3f}",
                      annotation_position="top left" if i == 0 else "bottom left", **subplot)


def deletion_curves_figure(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    aucs: Mapping[str, float] | None = None,
    title: str = "Deletion curves (most relevant removed first)",
    prediction: float | None = None,
    baseline: float | None = None,
    y_title: str = "prediction",
) -> go.Figure:
    """Prediction against fraction of features removed, one line per method; ``prediction``
    and ``baseline`` (the input's and the all-removed input's predictions) are drawn as
    reference lines; an AUC that is NaN (an ill-conditioned window) is left out of the
    legend."""
    fig = go.Figure()
    add_reference_lines(fig, prediction, baseline)
    for i, (method, (frac, score)) in enumerate(curves.items()):
        label = method.upper()
        if aucs and method in aucs and np.isfinite(aucs[method]):
            label += f" (AUC {aucs[method]:.3f})"
        fig.add_trace(go.Scatter(
            x=np.asarray(frac), y=np.asarray(score), mode="lines", name=label,
            line={"color": METHOD_COLOURS.get(method, PALETTE[i % len(PALETTE)]),
                  "dash": "dot" if method == "random" else "solid"}))
    fig.update_xaxes(title_text="fraction removed")
    fig.update_yaxes(title_text=y_title)
    return _style(fig, title, height=340)


def rank_agreement_figure(matrix: pd.DataFrame, title: str = "Rank agreement") -> go.Figure:
    """A square method x method correlation matrix as an annotated heatmap."""
    z = matrix.to_numpy(dtype=float)
    fig = go.Figure(go.Heatmap(z=z, x=list(matrix.columns), y=list(matrix.index), zmin=-1, zmax=1,
                               colorscale="RdBu", text=np.round(z, 2), texttemplate="%{text}"))
    return _style(fig, title, height=320)


#: Colours of the characteristic-frequency markers (rul_core.signal.spectrum.MARKER_NAMES).
MARKER_COLOURS = {"f_r": "#555555", "FTF": "#9467bd", "BPFO": "#d62728", "BPFI": "#2ca02c",
                  "BSF": "#ff7f0e"}


def marker_traces(markers: Sequence[object], y0: float, y1: float,
                  label_position: str = "top center", stagger: float = 0.0
                  ) -> list[go.Scatter]:
    """Vertical lines at characteristic frequencies from ``y0`` to ``y1``, one legend entry
    (and legend group: a click hides its lines and labels) per name, and each line labelled
    ("BPFO", "2×BPFO"). The labels of the i-th name sit at ``y1 + i * stagger``, so that close
    frequencies of different names stay readable; with ``stagger`` > 0 that name's lines reach
    up to its labels. ``markers``: objects with ``name``, ``order``, ``frequency`` and
    ``label`` (:class:`rul_core.signal.spectrum.FaultMarker`)."""
    groups: dict[str, list] = {}
    for m in markers:
        groups.setdefault(str(m.name), []).append(m)  # type: ignore[attr-defined]
    traces: list[go.Scatter] = []
    for i, (name, ms) in enumerate(groups.items()):
        colour = MARKER_COLOURS.get(name, PALETTE[i % len(PALETTE)])
        f = np.array([m.frequency for m in ms], dtype=float)
        label_y = float(y1) + i * float(stagger)
        top = max(float(y1), label_y)
        xs = np.column_stack([f, f, np.full_like(f, np.nan)]).ravel()
        ys = np.tile([y0, top, np.nan], f.size).astype(float)
        orders = [m.order for m in ms]
        span = f"×1–{max(orders)}" if len(ms) > 1 else ""
        legend = f"{name} {f[0]:.4g} Hz" + (f" ({span})" if span else "")
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", name=legend, legendgroup=name,
                                 line={"color": colour, "dash": "dash", "width": 1},
                                 hoverinfo="skip"))
        traces.append(go.Scatter(
            x=f, y=np.full(f.size, label_y), mode="text", text=[m.label for m in ms],
            textposition=label_position, textfont={"color": colour, "size": 10},
            legendgroup=name, showlegend=False, name=name,
            hovertemplate="%{text}: %{x:.2f} Hz<extra></extra>"))
    return traces


def spectrum_figure(
    freqs: np.ndarray,
    values: np.ndarray,
    markers: Sequence[object] = (),
    title: str = "Spectrum",
    unit: str = "g (peak)",
    name: str = "spectrum",
) -> go.Figure:
    """A one-sided spectrum (amplitude or envelope) against frequency in Hz, with the
    characteristic frequencies of ``markers`` as labelled dashed lines (:func:`marker_traces`,
    a legend entry per kind, each kind's labels a step higher than the previous kind's)."""
    freqs = np.asarray(freqs, dtype=float)
    values = np.asarray(values, dtype=float)
    top = float(np.nanmax(values)) if values.size and np.nanmax(values) > 0 else 1.0
    fig = go.Figure(go.Scatter(x=freqs, y=values, mode="lines", name=name,
                               line={"width": 1, "color": PALETTE[0]},
                               hovertemplate="%{x:.2f} Hz<br>%{y:.4g}<extra></extra>"))
    names = len({str(m.name) for m in markers})  # type: ignore[attr-defined]
    fig.add_traces(marker_traces(markers, 0.0, 1.05 * top, stagger=0.07 * top))
    fig.update_xaxes(title_text="frequency (Hz)",
                     range=[float(freqs.min()), float(freqs.max())] if freqs.size else None)
    fig.update_yaxes(title_text=f"amplitude ({unit})",
                     range=[0.0, (1.15 + 0.07 * max(names - 1, 0)) * top])
    fig = _style(fig, title, height=400)
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0})
    return fig


def life_spectrum_figure(
    freqs: np.ndarray,
    rows: np.ndarray,
    values: np.ndarray,
    markers: Sequence[object] = (),
    title: str = "Spectrum over life",
    unit: str = "g (peak)",
    y_title: str = "snapshot",
    marker_row: float | None = None,
) -> go.Figure:
    """A spectrum per snapshot as a heatmap (frequency across, snapshot ``rows`` up, failure at
    the top), with the characteristic frequencies of ``markers`` as dashed lines over the
    whole life (:func:`marker_traces`, labelled from the top row down, a step per kind) and
    ``marker_row`` (the snapshot shown above it) as a dotted white line."""
    freqs = np.asarray(freqs, dtype=float)
    rows = np.asarray(rows, dtype=float)
    fig = go.Figure(go.Heatmap(x=freqs, y=rows, z=display_grid(values), colorscale="Viridis",
                               colorbar={"title": {"text": unit.replace(" (", "<br>(")}},
                               hovertemplate="%{x:.2f} Hz<br>" + y_title
                               + " %{y}<br>%{z:.4g}<extra></extra>"))
    if rows.size:
        span = float(rows[-1] - rows[0]) or 1.0
        fig.add_traces(marker_traces(markers, float(rows[0]), float(rows[-1]),
                                     label_position="bottom center", stagger=-0.05 * span))
    fig.update_xaxes(title_text="frequency (Hz)",
                     range=[float(freqs.min()), float(freqs.max())] if freqs.size else None)
    fig.update_yaxes(title_text=y_title)
    if marker_row is not None:
        fig.add_hline(y=float(marker_row), line={"dash": "dot", "color": "white", "width": 1})
    fig = _style(fig, title, height=460)
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0})
    return fig


def level_label(level: float) -> str:
    """A kurtogram level as the classic display writes it: 0, 1, 1.6, 2, 2.6, ..."""
    return f"{level:.1f}".removesuffix(".0")


def kurtogram_figure(
    freqs: np.ndarray,
    levels: np.ndarray,
    values: np.ndarray,
    best: tuple[float, float, float, float] | None = None,
    title: str = "Kurtogram",
) -> go.Figure:
    """A fast kurtogram as the classic display: frequency across (``freqs``, the column
    centres in Hz), one row per level down from level 0 at the top (``levels``: 0, 1, 1.585,
    ...), ``values`` (levels x columns) the kurtosis of the band covering each column. The
    colour scale starts at 0 (a negative kurtosis, a band dominated by a tone, shows as 0;
    the hover gives the value). ``best``: (level, low Hz, high Hz, kurtosis) of the chosen
    band, outlined in red with its own legend entry."""
    freqs = np.asarray(freqs, dtype=float)
    levels = np.asarray(levels, dtype=float)
    values = np.asarray(values, dtype=float)
    rows = np.arange(levels.size)
    labels = [level_label(v) for v in levels]
    top = float(np.nanmax(values)) if values.size else 0.0
    fig = go.Figure(go.Heatmap(
        x=freqs, y=rows, z=display_grid(values), zmin=0.0, zmax=max(top, 1e-9),
        customdata=display_grid(np.broadcast_to(levels[:, None], values.shape)),
        colorscale="Viridis", colorbar={"title": {"text": "kurtosis<br>(complex<br>envelope)"}},
        hovertemplate="%{x:.0f} Hz, level %{customdata:.1f}<br>kurtosis %{z:.3g}<extra></extra>",
        name="kurtogram", showscale=True))
    if best is not None:
        level, lo, hi, k = (float(v) for v in best)
        row = int(np.argmin(np.abs(levels - level)))
        fig.add_trace(go.Scatter(
            x=[lo, hi, hi, lo, lo], y=[row - 0.5, row - 0.5, row + 0.5, row + 0.5, row - 0.5],
            mode="lines", line={"color": "#d62728", "width": 3},
            name=f"chosen band: level {level_label(level)}, {lo:.0f}–{hi:.0f} Hz, "
                 f"kurtosis {k:.3g}",
            hoverinfo="skip"))
    half = (freqs[1] - freqs[0]) / 2.0 if freqs.size > 1 else 0.0
    fig.update_xaxes(title_text="frequency (Hz)",  # the columns' outer edges: 0 to fs/2
                     range=[float(freqs[0] - half), float(freqs[-1] + half)] if half else None)
    fig.update_yaxes(title_text="level", tickmode="array", tickvals=rows.tolist(),
                     ticktext=labels, autorange="reversed")
    fig = _style(fig, title, height=max(340, 150 + 22 * levels.size))
    fig.update_layout(showlegend=best is not None,  # plotly hides a legend of one trace
                      legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0})
    return fig
