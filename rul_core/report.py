"""Session figure registry and export: PNG/SVG/PDF (Kaleido on a local Chromium, or
matplotlib) and a self-contained HTML report that works offline (plotly.js embedded inline).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as _dt
import html
import io
import os
import re
import shutil
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from rul_core import atomic
from rul_core.errors import RulError

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

FORMATS = ("png", "svg", "pdf")
MIME_TYPES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}
DEFAULT_BROWSER = "/usr/bin/chromium"
DEFAULT_SIZE = (1000, 500)
MAX_SCALE = 4.0  # PNG pixels x4: 4000 px across a default figure


class ExportError(RulError):
    """A figure could not be exported by the requested renderer."""


@dataclass
class ReportItem:
    """One figure or table of the session, with where it came from."""

    key: str
    title: str
    page: str = ""
    figure: go.Figure | None = None
    table: pd.DataFrame | None = None
    caption: str = ""
    created: str = field(default_factory=lambda: _dt.datetime.now().isoformat(timespec="seconds"))

    @property
    def kind(self) -> str:
        """'figure' or 'table'."""
        return "figure" if self.figure is not None else "table"


class FigureRegistry:
    """Figures and tables produced during a session, keyed so a re-render replaces its entry."""

    def __init__(self, max_items: int = 200) -> None:
        self._items: OrderedDict[str, ReportItem] = OrderedDict()
        self.max_items = max_items

    def add_figure(
        self, key: str, figure: go.Figure, title: str | None = None, page: str = "",
        caption: str = "",
    ) -> ReportItem:
        """Register (or replace) a figure under ``key``."""
        title = title or _figure_title(figure) or key
        return self._put(ReportItem(key, title, page, figure=figure, caption=caption))

    def add_table(
        self, key: str, table: pd.DataFrame, title: str, page: str = "", caption: str = ""
    ) -> ReportItem:
        """Register (or replace) a table under ``key``."""
        return self._put(ReportItem(key, title, page, table=table.copy(), caption=caption))

    def _put(self, item: ReportItem) -> ReportItem:
        self._items.pop(item.key, None)
        self._items[item.key] = item
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        return item

    def remove(self, key: str) -> None:
        """Forget one entry (no error if absent)."""
        self._items.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._items.clear()

    def get(self, key: str) -> ReportItem:
        """The entry under ``key`` (KeyError naming the available keys otherwise)."""
        if key not in self._items:
            raise KeyError(f"no report item {key!r}; available: {', '.join(self._items)}")
        return self._items[key]

    def items(self) -> list[ReportItem]:
        """All entries in the order they were (last) registered."""
        return list(self._items.values())

    def keys(self) -> list[str]:
        """Keys in order."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _figure_title(fig: go.Figure) -> str:
    title = fig.layout.title.text if fig.layout.title is not None else None
    return str(title) if title else ""


# --------------------------------------------------------------------------- static export


def browser_path() -> str | None:
    """The Chromium Kaleido should drive: $BROWSER_PATH, else Debian's /usr/bin/chromium, else
    any chrome/chromium on PATH; None when none exists."""
    env = os.environ.get("BROWSER_PATH")
    if env and Path(env).is_file():
        return env
    if Path(DEFAULT_BROWSER).is_file():
        return DEFAULT_BROWSER
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def kaleido_available() -> bool:
    """True when kaleido >= 1 is importable and a browser exists for it."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False
    return browser_path() is not None


def _fig_size(fig: go.Figure) -> tuple[int, int]:
    w = fig.layout.width or DEFAULT_SIZE[0]
    h = fig.layout.height or DEFAULT_SIZE[1]
    return int(w), int(h)


def render_kaleido(
    figures: Sequence[go.Figure], fmt: str = "png", scale: float = 1.0, timeout_s: float = 120.0
) -> list[bytes]:
    """Render figures with Kaleido in one headless Chromium session (offline: the plotly.js of
    the installed plotly package, MathJax off)."""
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} not supported; expected one of {FORMATS}")
    path = browser_path()
    if path is None:
        raise ExportError("no Chromium found for Kaleido (set BROWSER_PATH or install chromium)")
    try:
        import kaleido
    except ImportError as exc:
        raise ExportError("kaleido is not installed") from exc

    async def _batch() -> list[bytes]:
        async with kaleido.Kaleido(n=1, timeout=timeout_s, mathjax=False, path=path) as k:
            out = []
            for fig in figures:
                w, h = _fig_size(fig)
                opts = {"format": fmt, "width": w, "height": h, "scale": scale}
                out.append(await k.calc_fig(fig.to_dict(), opts=opts))
            return out

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(asyncio.run, _batch())
        try:
            result = future.result(timeout=timeout_s * max(1, len(figures)) + 30)
        except Exception as exc:  # Kaleido/choreographer raise many types
            raise ExportError(f"Kaleido export failed: {type(exc).__name__}: {exc}") from exc
    return [bytes(b) for b in result]


def export_figures(
    figures: Sequence[go.Figure], fmt: str = "png", engine: str = "auto", scale: float = 1.0
) -> tuple[list[bytes], str]:
    """Export figures to ``fmt`` bytes; ``engine`` is 'kaleido', 'matplotlib' or 'auto'
    (Kaleido when a browser exists, matplotlib when it is missing or fails). ``scale``
    multiplies the pixels of a PNG (2: twice the width and height, for print); vector formats
    keep their size. Returns the bytes and the engine actually used."""
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} not supported; expected one of {FORMATS}")
    if engine not in ("auto", "kaleido", "matplotlib"):
        raise ExportError(f"engine {engine!r} unknown; expected auto, kaleido or matplotlib")
    if not 0.25 <= scale <= MAX_SCALE:
        raise ExportError(f"scale {scale:g} out of range; expected 0.25 to {MAX_SCALE:g}")
    if engine in ("auto", "kaleido") and (engine == "kaleido" or kaleido_available()):
        try:
            return render_kaleido(figures, fmt, scale if fmt == "png" else 1.0), "kaleido"
        except ExportError:
            if engine == "kaleido":
                raise
    return [render_matplotlib(f, fmt, scale=scale) for f in figures], "matplotlib"


def export_figure(
    fig: go.Figure, fmt: str = "png", engine: str = "auto", scale: float = 1.0
) -> tuple[bytes, str]:
    """Export one figure; see :func:`export_figures`."""
    data, used = export_figures([fig], fmt, engine, scale)
    return data[0], used


# --------------------------------------------------------------------------- matplotlib fallback


_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"</?(b|i|em|strong|span|sup|sub)\b[^>]*>", re.IGNORECASE)


def _plain(text: object) -> str:
    """Plotly label text for matplotlib: <br> becomes a line break, simple tags go, entities
    are decoded."""
    return html.unescape(_TAG.sub("", _BR.sub("\n", str(text))))


def _axis_key(ref: str, axis: str) -> str:
    """'x2' -> 'xaxis2', 'y' -> 'yaxis'."""
    suffix = ref[1:] if ref and len(ref) > 1 else ""
    return f"{axis}axis{suffix}"


def _colour(value: object, default: str | None = None) -> object:
    if isinstance(value, str) and value.startswith("rgba("):
        parts = [float(p) for p in value[5:-1].split(",")]
        return (parts[0] / 255, parts[1] / 255, parts[2] / 255, parts[3])
    if isinstance(value, str) and value.startswith("rgb("):
        parts = [float(p) for p in value[4:-1].split(",")]
        return (parts[0] / 255, parts[1] / 255, parts[2] / 255)
    return value if isinstance(value, str) else default


_CMAPS = {"Greys": "Greys", "Viridis": "viridis", "RdBu_r": "RdBu_r", "RdBu": "RdBu"}


def _cmap_name(trace: dict) -> str:
    cs = trace.get("colorscale")
    name = "viridis"
    if isinstance(cs, str):
        name = _CMAPS.get(cs, "viridis")
    elif isinstance(cs, (list, tuple)) and cs:
        first = str(cs[0][1]).lower()
        last = str(cs[-1][1]).lower()
        if "5,48,97" in first + last and "103,0,31" in first + last:  # plotly RdBu (red low)
            name = "RdBu_r" if "5,48,97" in first else "RdBu"
        elif first in ("rgb(0,0,0)", "#000000", "black") or "255,255,255" in first:
            name = "Greys"
    if trace.get("reversescale"):
        name = name[:-2] if name.endswith("_r") else name + "_r"
    return name


def render_matplotlib(
    fig: go.Figure, fmt: str = "png", dpi: int = 100, scale: float = 1.0
) -> bytes:
    """Draw a plotly figure with matplotlib (no browser needed) and save it as ``fmt`` bytes,
    text kept as text (embedded TrueType in PDF, <text> in SVG); ``scale`` multiplies a
    PNG's pixels, as Kaleido's does; see :func:`matplotlib_figure`."""
    import matplotlib
    import matplotlib.pyplot as plt

    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} not supported; expected one of {FORMATS}")
    mfig = matplotlib_figure(fig, dpi)
    buf = io.BytesIO()
    try:
        with matplotlib.rc_context({"pdf.fonttype": 42, "svg.fonttype": "none"}):
            mfig.savefig(buf, format=fmt, dpi=dpi * scale)
    finally:
        plt.close(mfig)
    return buf.getvalue()


def matplotlib_figure(fig: go.Figure, dpi: int = 100) -> MplFigure:
    """Redraw a plotly figure as a matplotlib Figure (the caller closes it). Supports the trace
    types this package produces: scatter/scattergl (lines, markers, filled bands), bar,
    heatmap, contour and table, on any subplot grid, with log axes, titles and subplot
    titles."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    spec = fig.to_plotly_json()
    layout = spec.get("layout", {})
    w, h = _fig_size(fig)
    mfig = plt.figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    axes: dict[tuple[str, str], object] = {}
    # plotly's margins (px, at least room for tick labels and axis titles), widened the way
    # plotly's automargin does for a legend (right, or below when horizontal) and colour bar
    pm = layout.get("margin") or {}
    px = {"l": max(pm.get("l", 80), 80), "r": max(pm.get("r", 80), 20),
          "t": max(pm.get("t", 100), 50), "b": max(pm.get("b", 80), 50)}
    entries = _legend_entries(spec)
    leg = layout.get("legend") or {}
    below = leg.get("orientation") == "h" and float(leg.get("y", 1)) < 0
    chars = max((len(line) for e in entries for line in e.split("\n")), default=0)
    ncol, legend_px = 1, 0
    if entries and below:
        ncol = max(1, min(len(entries), int((w - px["l"] - px["r"]) // (6 * chars + 40))))
        legend_px = 16 * -(-len(entries) // ncol) + 12
        px["b"] += legend_px
    elif entries:
        px["r"] += 6 * chars + 40
    bar_px = 80 if any(tr.get("type") == "heatmap" and tr.get("showscale", True)
                       for tr in spec.get("data", [])) else 0
    px["r"] += bar_px
    margin = {k: v / (w if k in "lr" else h) for k, v in px.items()}
    plot_right = 1 - margin["r"]  # the right edge of the plot area
    cbar_box = (plot_right + 10 / w, margin["b"], 12 / w, 0.92 * (1 - margin["b"] - margin["t"]))

    def get_ax(xref: str, yref: str):
        key = (xref or "x", yref or "y")
        if key not in axes:
            xa = layout.get(_axis_key(key[0], "x"), {}) or {}
            ya = layout.get(_axis_key(key[1], "y"), {}) or {}
            x0, x1 = xa.get("domain", [0, 1])
            y0, y1 = ya.get("domain", [0, 1])
            left = margin["l"] + x0 * (1 - margin["l"] - margin["r"])
            width = (x1 - x0) * (1 - margin["l"] - margin["r"])
            bottom = margin["b"] + y0 * (1 - margin["b"] - margin["t"])
            height = (y1 - y0) * (1 - margin["b"] - margin["t"])
            ax = mfig.add_axes((left, bottom, width * 0.97, height * 0.92))
            if ya.get("type") == "log":
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(_plain_number_formatter())
            if xa.get("type") == "log":
                ax.set_xscale("log")
                ax.xaxis.set_major_formatter(_plain_number_formatter())
            xt = (xa.get("title") or {}).get("text")
            yt = (ya.get("title") or {}).get("text")
            if xt:
                ax.set_xlabel(_plain(xt), fontsize=8)
            if yt:
                ax.set_ylabel(_plain(yt), fontsize=8)
            if ya.get("tickvals") is not None:  # plotly's explicit ticks (log frequency axes)
                ax.set_yticks(ya["tickvals"], ya.get("ticktext") or None)
                ax.minorticks_off()
            if xa.get("tickvals") is not None:  # e.g. windows t-2, t-1, t
                ax.set_xticks(xa["tickvals"], xa.get("ticktext") or None)
            elif xa.get("tickmode") == "linear" and xa.get("dtick") and xa.get("type") != "log":
                from matplotlib.ticker import MultipleLocator  # e.g. whole epochs

                ax.xaxis.set_major_locator(MultipleLocator(float(xa["dtick"]),
                                                           float(xa.get("tick0", 0))))
            if ya.get("range") and ya.get("type") != "log":
                ax.set_ylim(*ya["range"])
            if ya.get("autorange") == "reversed":
                ax.invert_yaxis()
            ax.tick_params(labelsize=7)
            if xa.get("showticklabels") is False:  # upper panels of shared x axes
                ax.tick_params(labelbottom=False)
            if ya.get("showticklabels") is False:
                ax.tick_params(labelleft=False)
            axes[key] = ax
        return axes[key]

    bar_groups: dict[tuple[str, str], list[dict]] = {}
    for tr in spec.get("data", []):
        ttype = tr.get("type", "scatter")
        if ttype == "table":
            _mpl_table(mfig, tr)
            continue
        ax = get_ax(tr.get("xaxis", "x"), tr.get("yaxis", "y"))
        if ttype in ("scatter", "scattergl"):
            _mpl_scatter(ax, tr)
        elif ttype == "bar":
            bar_groups.setdefault((tr.get("xaxis", "x"), tr.get("yaxis", "y")), []).append(tr)
        elif ttype in ("heatmap", "contour"):
            _mpl_grid(ax, tr, ttype, cbar_box)
    for key, bars in bar_groups.items():
        _mpl_bars(axes[key], bars, grouped=layout.get("barmode") == "group")
    _mpl_link_axes(axes, layout)
    for shape in layout.get("shapes", []) or []:
        _mpl_shape(axes, shape)
    title = (layout.get("title") or {}).get("text")
    if title:
        mfig.suptitle(_plain(title), x=0.01, ha="left", fontsize=11)
    for ann in layout.get("annotations", []) or []:
        if ann.get("text") and "paper" not in (ann.get("xref"), ann.get("yref")):
            _mpl_axis_annotation(axes, ann)
        if ann.get("xref") == "paper" and ann.get("yref") == "paper" and ann.get("text"):
            x = margin["l"] + float(ann.get("x", 0)) * (1 - margin["l"] - margin["r"])
            y = margin["b"] + float(ann.get("y", 0)) * (1 - margin["b"] - margin["t"])
            mfig.text(x, y, _plain(ann["text"]), ha="center" if
                      ann.get("xanchor", "center") == "center" else "left", va="bottom", fontsize=8)
    handles: dict[str, object] = {}
    for ax in axes.values():
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if entries and handles:
        anchor = ((margin["l"], legend_px / h) if below
                  else (plot_right + (bar_px + 10) / w, 1 - margin["t"]))
        mfig.legend(list(handles.values()), list(handles), loc="upper left", ncol=ncol,
                    bbox_to_anchor=anchor, fontsize=7, frameon=False)
    return mfig


def _plain_number_formatter():
    """Log-axis tick labels as plotly writes them (0.1, 1, 10, 1000), not matplotlib's 10⁻¹."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _pos: f"{value:g}")


def _mpl_link_axes(axes: dict, layout: dict) -> None:
    """Give axes that plotly links (``matches``, e.g. make_subplots' shared x axes) one range,
    as plotly draws them: the union of their data, not each panel's own."""
    for dim, pos in (("x", 0), ("y", 1)):
        for key, ax in axes.items():
            target = (layout.get(_axis_key(key[pos], dim)) or {}).get("matches")
            other = next((a for k, a in axes.items() if k[pos] == target and a is not ax), None)
            if other is None:
                continue
            shared = ax.get_shared_x_axes() if dim == "x" else ax.get_shared_y_axes()
            if not shared.joined(ax, other):
                try:
                    (ax.sharex if dim == "x" else ax.sharey)(other)
                except ValueError:  # already linked to a third axis: keep its own range
                    continue
            other.relim()
            other.autoscale_view()


def _legend_entries(spec: dict) -> list[str]:
    """The names plotly shows in the legend, [] when it shows none: traces not hidden from it,
    and only when ``layout.showlegend`` is true, or unset with two or more such traces or one
    explicitly shown."""
    shown = [tr for tr in spec.get("data", [])
             if tr.get("type", "scatter") in ("scatter", "scattergl", "bar")
             and tr.get("showlegend", True) and tr.get("name")]
    setting = (spec.get("layout") or {}).get("showlegend")
    if setting is False or not shown:
        return []
    if setting is None and len(shown) < 2 and not shown[0].get("showlegend"):
        return []
    return list(dict.fromkeys(_plain(tr["name"]) for tr in shown))


def _arr(v: object) -> np.ndarray | None:
    if v is None:
        return None
    if isinstance(v, dict) and "bdata" in v:  # plotly typed-array JSON
        import base64

        flat = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        shape = v.get("shape")
        if isinstance(shape, str):
            shape = [int(s) for s in shape.split(",") if s.strip()]
        return flat.reshape(shape) if shape else flat
    return np.asarray(v)


def _mpl_scatter(ax, tr: dict) -> None:
    x, y = _arr(tr.get("x")), _arr(tr.get("y"))
    if y is None:
        return
    if x is None:
        x = np.arange(len(y))
    line = tr.get("line") or {}
    colour = _colour(line.get("color"))
    name = _plain(tr["name"]) if tr.get("name") and tr.get("showlegend", True) else None
    style = {"dash": "--", "dot": ":"}.get(line.get("dash", ""), "-")
    if tr.get("fill") == "toself":
        fill = _colour(tr.get("fillcolor"), "lightgrey")
        width = float(line.get("width", 2))  # plotly outlines a fill unless width is 0
        ax.fill(x, y, facecolor=fill, edgecolor=colour or fill, linewidth=0.5 * width,
                linestyle=style, label=name)
        return
    mode = tr.get("mode", "lines")
    if "text" in mode and tr.get("text") is not None:  # e.g. the labels of marker lines
        font = tr.get("textfont") or {}
        va = "bottom" if str(tr.get("textposition", "")).startswith("top") else "top"
        for xi, yi, text in zip(x, y, np.atleast_1d(tr["text"]), strict=False):
            ax.text(float(xi), float(yi), _plain(text), ha="center", va=va, fontsize=7,
                    color=_colour(font.get("color"), "black"), clip_on=True)
        if mode == "text":
            return
    marker = "o" if "markers" in mode else None
    ls = style if "lines" in mode else "none"
    ax.plot(x, y, color=colour, linestyle=ls, marker=marker, markersize=3,
            linewidth=line.get("width", 1.2), label=name, alpha=float(tr.get("opacity", 1.0)))


def _mpl_bars(ax, bars: list[dict], grouped: bool) -> None:
    """Bars on a categorical axis: x for vertical bars, y for ``orientation='h'``."""
    horizontal = bars[0].get("orientation") == "h"
    cat_key, val_key = ("y", "x") if horizontal else ("x", "y")
    cats: list[str] = []
    for tr in bars:
        for c in _arr(tr.get(cat_key)).tolist():
            if str(c) not in cats:
                cats.append(str(c))
    n = len(bars) if grouped else 1
    width = 0.8 / n
    for i, tr in enumerate(bars):
        xs = [cats.index(str(c)) for c in _arr(tr.get(cat_key)).tolist()]
        off = (i - (n - 1) / 2) * width if grouped else 0.0
        marker = tr.get("marker") or {}
        err = (tr.get("error_y") or {}).get("array")
        pos, values = np.asarray(xs) + off, _arr(tr.get(val_key))
        if horizontal:
            ax.barh(pos, values, height=width, color=_colour(marker.get("color")),
                    label=tr.get("name"))
            continue
        ax.bar(pos, values, width=width,
               color=_colour(marker.get("color")), label=tr.get("name"),
               yerr=_arr(err) if err is not None else None)
    if horizontal:
        ax.set_yticks(range(len(cats)))
        ax.set_yticklabels(cats, fontsize=7)
        return
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels(cats, rotation=45 if len(cats) > 6 else 0, fontsize=7)


def _mpl_grid(ax, tr: dict, ttype: str, cbar_box: tuple[float, float, float, float]) -> None:
    """A heatmap (its colour bar, if shown, in ``cbar_box`` beside the plot area, as plotly
    places it) or a contour's single line level."""
    z = _arr(tr.get("z"))
    if z is None:
        return
    z = np.asarray(z, dtype=float)
    x = _arr(tr.get("x"))
    y = _arr(tr.get("y"))
    x = np.arange(z.shape[1]) if x is None else np.asarray(x)
    y = np.arange(z.shape[0]) if y is None else np.asarray(y)
    if ttype == "contour":
        level = ((tr.get("contours") or {}).get("start"))
        if level is not None and np.nanmin(z) < level < np.nanmax(z):
            ax.contour(x, y, z, levels=[level], colors="black", linewidths=0.4)
        return
    kwargs = {"cmap": _cmap_name(tr), "shading": "auto"}
    if tr.get("zmin") is not None and tr.get("zmax") is not None:
        kwargs.update(vmin=tr["zmin"], vmax=tr["zmax"])
    mesh = ax.pcolormesh(x, y, z, rasterized=True, **kwargs)
    if tr.get("texttemplate"):
        _mpl_cell_text(ax, mesh, tr, z, x, y)
    if tr.get("showscale", True):
        bar = ax.figure.colorbar(mesh, cax=ax.figure.add_axes(cbar_box, label="<colorbar>"))
        bar.ax.tick_params(labelsize=7)
        bar_title = ((tr.get("colorbar") or {}).get("title") or {}).get("text")
        if bar_title:
            bar.ax.set_title(_plain(bar_title), fontsize=8, loc="left")


def _plotly_number(value: object) -> str:
    """A cell value as plotly prints it: 1.0 -> '1', 0.25 -> '0.25'."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _mpl_cell_text(ax, mesh, tr: dict, z: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    """Write a heatmap's ``texttemplate`` (``%{text}`` or ``%{z}``) into its cells, white on
    dark cells; categorical ``x``/``y`` sit at 0, 1, 2..."""
    xs = x if np.issubdtype(x.dtype, np.number) else np.arange(len(x))
    ys = y if np.issubdtype(y.dtype, np.number) else np.arange(len(y))
    text = _arr(tr.get("text"))
    cells = text.tolist() if text is not None else z.tolist()
    template = str(tr["texttemplate"])
    for i, row in enumerate(cells):
        for j, value in enumerate(row):
            label = template.replace("%{text}", _plotly_number(value))
            label = label.replace("%{z}", _plotly_number(float(z[i, j])))
            r, g, b, _ = mesh.cmap(mesh.norm(z[i, j]))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(xs[j], ys[i], label, ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")


def _mpl_table(mfig, tr: dict) -> None:
    header = [str(v) for v in (tr.get("header") or {}).get("values", [])]
    cols = [[str(v) for v in col] for col in (tr.get("cells") or {}).get("values", [])]
    rows = list(zip(*cols, strict=False)) if cols else []
    ax = mfig.add_axes((0.02, 0.02, 0.96, 0.85))
    ax.axis("off")
    if rows:
        table = ax.table(cellText=rows, colLabels=header, loc="upper left")
        table.auto_set_font_size(False)
        table.set_fontsize(7)


def _mpl_shape(axes: dict, shape: dict) -> None:
    if shape.get("type") != "line":
        return
    xref = str(shape.get("xref", "x")).replace(" domain", "")
    yref = str(shape.get("yref", "y")).replace(" domain", "")
    ax = axes.get((xref if xref != "paper" else "x", yref if yref != "paper" else "y"))
    if ax is None:
        return
    line = shape.get("line") or {}
    style = {"dash": "--", "dot": ":"}.get(line.get("dash", ""), "-")
    kwargs = {"color": _colour(line.get("color"), "black"), "linestyle": style,
              "linewidth": 0.8 * float(line.get("width", 1))}
    if shape.get("x0") == shape.get("x1") and "domain" in str(shape.get("yref", "")):
        ax.axvline(float(shape["x0"]), **kwargs)
    elif shape.get("y0") == shape.get("y1") and "domain" in str(shape.get("xref", "")):
        ax.axhline(float(shape["y0"]), **kwargs)


def _mpl_axis_annotation(axes: dict, ann: dict) -> None:
    """An annotation placed on a subplot (data or 'x domain' coordinates), e.g. the label of
    a reference line; arrows are not drawn."""
    from matplotlib.transforms import blended_transform_factory

    xref, yref = str(ann.get("xref", "x")), str(ann.get("yref", "y"))
    ax = axes.get((xref.replace(" domain", ""), yref.replace(" domain", "")))
    if ax is None:
        return
    transform = blended_transform_factory(ax.transAxes if "domain" in xref else ax.transData,
                                          ax.transAxes if "domain" in yref else ax.transData)
    ha = {"left": "left", "right": "right"}.get(ann.get("xanchor", ""), "center")
    va = {"top": "top", "bottom": "bottom"}.get(ann.get("yanchor", ""), "center")
    ax.text(ann.get("x", 0), ann.get("y", 0), _plain(ann["text"]), transform=transform,
            ha=ha, va=va, fontsize=8, clip_on=False)


# --------------------------------------------------------------------------- HTML report


def plotlyjs_source() -> str:
    """The plotly.js bundle shipped with the plotly package (for offline embedding)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def plain_index(table: object) -> bool:
    """Whether a table's index is only 0, 1, 2... (a RangeIndex), which tables hide."""
    return isinstance(table, pd.DataFrame) and isinstance(table.index, pd.RangeIndex)


def html_report(
    items: Iterable[ReportItem], title: str = "Bearing RUL workbench report", notes: str = ""
) -> str:
    """A single self-contained HTML page: plotly.js inline (no network), one section per
    figure (interactive) or table (HTML table)."""
    items = list(items)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}th{background:#e8eef7}"
        "section{margin-bottom:2.5em}.cap{color:#555;font-size:13px}</style>",
        f'<script type="text/javascript">{plotlyjs_source()}</script>',
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='cap'>Generated {_dt.datetime.now().isoformat(timespec='seconds')} "
        f"— {sum(i.kind == 'figure' for i in items)} figures, "
        f"{sum(i.kind == 'table' for i in items)} tables.</p>",
    ]
    if notes:
        parts.append(f"<p>{html.escape(notes)}</p>")
    for n, item in enumerate(items, 1):
        parts.append(f"<section id='item-{n}'><h2>{n}. {html.escape(item.title)}</h2>")
        if item.page:
            parts.append(f"<p class='cap'>From page: {html.escape(item.page)}</p>")
        if item.figure is not None:
            parts.append(item.figure.to_html(full_html=False, include_plotlyjs=False,
                                             div_id=f"fig-{n}"))
        elif item.table is not None:
            parts.append(item.table.to_html(float_format=lambda v: f"{v:.4g}", border=0,
                                            index=not plain_index(item.table)))
        if item.caption:
            parts.append(f"<p class='cap'>{html.escape(item.caption)}</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _slug(text: str) -> str:
    keep = [c if c.isalnum() else "_" for c in text.lower()]
    return "".join(keep).strip("_")[:60] or "figure"


def _number_width(count: int) -> int:
    """Digits for file numbers so that names sort in report order (at least two: 01 … 99,
    then 001 … 200 for a longer report)."""
    return max(2, len(str(count)))


def _export_each(
    figures: Sequence[go.Figure], fmt: str, engine: str, scale: float = 1.0
) -> tuple[list[bytes | None], set[str], list[str]]:
    """Export in one batch; if that fails, figure by figure, so one bad figure costs only
    itself. Returns the bytes (None where it failed), the engines used and, per figure, the
    reason it failed ('' where it did not)."""
    try:
        blobs, used = export_figures(figures, fmt, engine, scale)
        return list(blobs), {used}, [""] * len(figures)
    except Exception:  # retried one by one below, where the culprit is named
        pass
    out: list[bytes | None] = []
    engines: set[str] = set()
    reasons: list[str] = []
    for fig in figures:
        try:
            blob, used = export_figure(fig, fmt, engine, scale)
        except Exception as exc:  # every failure is reported, none stops the others
            out.append(None)
            reasons.append(f"{type(exc).__name__}: {exc}")
        else:
            out.append(blob)
            engines.add(used)
            reasons.append("")
    return out, engines, reasons


def export_zip(
    items: Sequence[ReportItem], formats: Sequence[str] = FORMATS, engine: str = "auto",
    include_html: bool = True, title: str = "Bearing RUL workbench report", scale: float = 1.0,
) -> tuple[bytes, str, list[str]]:
    """A zip with every figure in each format, every table as CSV and (optionally) the HTML
    report. Returns the zip bytes, the static engine(s) used and one line per figure file
    that could not be exported ('file (title): reason', also written to export_errors.txt
    in the zip); the other figures are exported regardless."""
    figs = [i for i in items if i.figure is not None]
    tables = [i for i in items if i.table is not None]
    width = _number_width(max(len(figs), len(tables)))
    engines: set[str] = set()
    failed: list[str] = []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for fmt in formats:
            if not figs:
                break
            blobs, used, reasons = _export_each([i.figure for i in figs], fmt, engine, scale)
            engines |= used
            for n, (item, blob, why) in enumerate(zip(figs, blobs, reasons, strict=True), 1):
                name = f"{n:0{width}d}_{_slug(item.title)}.{fmt}"
                if blob is None:
                    failed.append(f"{name} ({item.title}): {why}")
                else:
                    zf.writestr(name, blob)
        for n, item in enumerate(tables, 1):
            zf.writestr(f"table_{n:0{width}d}_{_slug(item.title)}.csv", item.table.to_csv())
        if include_html:
            zf.writestr("report.html", html_report(items, title))
        if failed:
            zf.writestr("export_errors.txt", "\n".join(failed) + "\n")
    return buf.getvalue(), ", ".join(sorted(engines)) or "none", failed


def save_report(folder: str | Path, blob: bytes, title: str,
                now: _dt.datetime | None = None) -> Path:
    """Save a report ZIP in ``folder`` under a new name (title and time); never overwrite one."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return atomic.write_new(folder, f"{_slug(title) or 'report'}_{stamp}", ".zip", blob)
