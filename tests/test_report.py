"""Figure export (Kaleido on Chromium and the matplotlib fallback), the HTML report, and the
plot helpers' known answers."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from rul_core import plots, report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _figures() -> list:
    x = np.arange(50)
    return [
        plots.rul_figure([{"x": x, "pred": 1 - x / 50, "true": 1 - x / 49, "lower": 0.9 - x / 50,
                           "upper": 1.1 - x / 50, "name": "m"}]),
        plots.imr_figure(np.eye(64, 500, dtype=np.uint8) * 2),
        plots.attribution_overlay_figure(np.eye(64, 500), {"lrp": np.eye(64, 500),
                                                           "shap": -np.eye(64, 500)}),
        plots.tf_bars_figure(np.arange(14.0).reshape(2, 7), ["h", "v"]),
        plots.scalogram_figure(np.ones((20, 50)), np.geomspace(75.0, 25 / 3, 20), 25600.0,
                               np.full(50, 30.0)),
        plots.table_figure(pd.DataFrame({"run": ["a", "b"], "rmse": [0.123456, 0.2]}), "t"),
        plots.deletion_curves_figure({"lrp": (np.linspace(0, 1, 5), [0.5, 0.3, 0.2, 0.1, 0.1])},
                                     prediction=0.5, baseline=0.1),
        plots.spectrum_figure(np.arange(0, 500.0), np.abs(np.sin(np.arange(500.0))),
                              _markers()),
        plots.life_spectrum_figure(np.arange(0, 500.0), np.arange(0, 40, 4),
                                   np.random.default_rng(0).random((10, 500)), _markers(),
                                   unit="dB re 1 g"),
    ]


def _markers() -> list:
    from rul_core.signal.spectrum import LDK_UER204, fault_markers

    return fault_markers(35.0, LDK_UER204, harmonics=3, max_hz=500.0)


def test_spectrum_figures_mark_each_fault_frequency_in_its_own_legend_group():
    """One legend entry per frequency (a click hides its lines and labels together), a dashed
    line from the bottom to above the highest peak at each harmonic, labelled there."""
    markers = _markers()
    values = np.zeros(500)
    values[108] = 2.0
    fig = plots.spectrum_figure(np.arange(500.0), values, markers, unit="g (envelope, peak)")
    assert fig.data[0].name == "spectrum"
    legend = [t.name for t in fig.data if t.showlegend is not False][1:]
    assert legend == ["f_r 35 Hz (×1–3)", "FTF 13.49 Hz (×1–3)", "BPFO 107.9 Hz (×1–3)",
                      "BPFI 172.1 Hz (×1–2)", "BSF 72.33 Hz (×1–3)"]  # 3 x BPFI > 500 Hz
    bpfo = [t for t in fig.data if t.legendgroup == "BPFO"]
    lines, labels = bpfo
    np.testing.assert_allclose(lines.x[::3], [107.9074, 215.8148, 323.7221], atol=1e-4)
    assert np.isnan(lines.x[2::3]).all() and np.isnan(lines.y[2::3]).all()  # separate lines
    np.testing.assert_allclose(lines.y[0::3], 0.0)
    # 1.05 x the highest peak, a step of 0.07 x it per kind before (f_r, FTF): 2.1 + 0.28
    np.testing.assert_allclose(lines.y[1::3], 2.38)
    np.testing.assert_allclose(labels.y, 2.38)
    assert list(labels.text) == ["BPFO", "2×BPFO", "3×BPFO"] and labels.mode == "text"
    assert fig.layout.yaxis.range[1] == pytest.approx(2.0 * (1.15 + 0.07 * 4))
    assert lines.line.color == labels.textfont.color == plots.MARKER_COLOURS["BPFO"]
    assert fig.layout.yaxis.title.text == "amplitude (g (envelope, peak))"
    heat = plots.life_spectrum_figure(np.arange(500.0), np.array([0, 5, 10]),
                                      np.ones((3, 500)), markers, marker_row=5)
    assert [(sh.y0, sh.y1, sh.line.dash) for sh in heat.layout.shapes] == [(5, 5, "dot")]
    assert heat.data[0].type == "heatmap" and heat.data[0].z.dtype == np.float32
    lines = next(t for t in heat.data if t.legendgroup == "BPFO")
    np.testing.assert_allclose(lines.y[:2], [0.0, 10.0])  # the whole life
    labels = [t for t in heat.data if t.legendgroup == "BPFO"][1]
    np.testing.assert_allclose(labels.y, 10.0 - 2 * 0.5)  # from the top down, 5 % a kind


def test_minmax_downsample_keeps_extremes_and_order():
    y = np.zeros(10_000)
    y[1234], y[8000] = 5.0, -7.0
    x = np.arange(y.size)
    xs, ys = report_ds = plots.minmax_downsample(x, y, 400)
    assert report_ds[0].size == 400
    assert ys.max() == 5.0 and xs[np.argmax(ys)] == 1234
    assert ys.min() == -7.0 and xs[np.argmin(ys)] == 8000
    assert np.all(np.diff(xs) >= 0)
    short = plots.minmax_downsample(x[:100], y[:100], 400)
    assert short[0].size == 100  # short traces unchanged


def test_log_frequency_axis_is_labelled_in_hertz():
    """Plotly labels a log axis spanning under a decade with bare mantissas ("2" for 20 Hz);
    the scalogram's frequency axis gets round values in Hz instead."""
    assert plots.log_ticks(25 / 3, 75.0) == [9.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
    assert plots.log_ticks(8.0, 12_800.0) == [10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
                                              2000.0, 5000.0, 10_000.0]
    assert plots.log_ticks(0.0, 10.0) == []
    axis = next(f for f in _figures() if f.layout.yaxis.type == "log").layout.yaxis
    assert axis.type == "log"
    assert list(axis.tickvals) == plots.log_ticks(25 / 3, 75.0)
    assert list(axis.ticktext) == ["9", "10", "20", "30", "40", "50", "60", "70"]
    wide = plots.scalogram_figure(np.ones((3, 4)), np.array([100.0, 1500.0, 12_000.0]), 25600.0)
    assert list(wide.layout.yaxis.ticktext) == ["100", "200", "500", "1k", "2k", "5k", "10k"]


def test_scalogram_is_sent_as_float32_rows_in_frequency_order():
    """The scalogram's values go to the browser as float32 (half the figure JSON) and sorted
    by ascending frequency with their rows, the values unchanged to float32 precision."""
    rng = np.random.default_rng(0)
    power = rng.random((30, 1000))
    freqs = np.geomspace(90.0, 10.0, 30)  # pywt's scales run from high to low frequency
    fig = plots.scalogram_figure(power, freqs, 25600.0)
    heat = fig.data[0]
    assert heat.z.dtype == np.float32
    np.testing.assert_array_equal(heat.y, freqs[::-1])
    np.testing.assert_allclose(heat.z, power[::-1], rtol=1e-7)
    sent = json.loads(fig.to_json())["data"][0]["z"]
    assert sent["dtype"] == "f4" and len(sent["bdata"]) == 4 * power.size * 4 // 3


def test_normalise_attributions_same_scale():
    maps = plots.normalise_attributions({"a": np.array([2.0, -4.0]), "b": np.array([0.5, 0.25])})
    np.testing.assert_allclose(maps["a"], [0.5, -1.0])
    np.testing.assert_allclose(maps["b"], [1.0, 0.5])
    assert plots.shared_abs_max({"a": np.array([2.0, -4.0])}) == 4.0
    robust = plots.normalise_attributions({"a": np.array([1.0, 1.0, 1.0, 100.0])}, 0.5)
    np.testing.assert_allclose(robust["a"], [1.0, 1.0, 1.0, 1.0])  # outlier clipped


def test_registry_replaces_by_key_and_keeps_order():
    reg = report.FigureRegistry(max_items=3)
    figs = _figures()
    reg.add_figure("p/a", figs[0])
    reg.add_figure("p/b", figs[1])
    reg.add_figure("p/a", figs[3])  # re-render replaces and moves to the end
    assert reg.keys() == ["p/b", "p/a"]
    assert reg.get("p/a").figure is figs[3]
    reg.add_table("p/t", pd.DataFrame({"x": [1]}), "T")
    reg.add_figure("p/c", figs[2])
    assert reg.keys() == ["p/a", "p/t", "p/c"]  # oldest dropped beyond max_items
    with pytest.raises(KeyError, match="available"):
        reg.get("nope")


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_matplotlib_renderer_draws_every_figure(fmt):
    for fig in _figures():
        data = report.render_matplotlib(fig, fmt)
        if fmt == "png":
            assert data.startswith(PNG_MAGIC)
        else:
            assert b"<svg" in data[:500]
        assert len(data) > 2000


def test_matplotlib_png_has_the_figure_size():
    from PIL import Image

    fig = _figures()[0]
    fig.update_layout(width=640, height=320)
    img = Image.open(io.BytesIO(report.render_matplotlib(fig, "png")))
    assert img.size == (640, 320)


def test_png_scale_multiplies_the_pixels_for_print(monkeypatch):
    """scale=2 doubles a PNG's width and height in the matplotlib fallback, through the ZIP
    too; an absurd scale is refused before anything is drawn."""
    from PIL import Image

    monkeypatch.setattr(report, "browser_path", lambda: None)
    fig = _figures()[0]
    fig.update_layout(width=640, height=320)
    data, used = report.export_figure(fig, "png", "auto", scale=2)
    assert used == "matplotlib" and Image.open(io.BytesIO(data)).size == (1280, 640)
    reg = report.FigureRegistry()
    reg.add_figure("p/a", fig, title="RUL curve")
    blob, _, _ = report.export_zip(reg.items(), ["png"], scale=3)
    png = zipfile.ZipFile(io.BytesIO(blob)).read("01_rul_curve.png")
    assert Image.open(io.BytesIO(png)).size == (1920, 960)
    with pytest.raises(report.ExportError, match="scale 40 out of range"):
        report.export_figure(fig, "png", scale=40)


def test_auto_falls_back_to_matplotlib_without_browser(monkeypatch):
    monkeypatch.setattr(report, "browser_path", lambda: None)
    data, used = report.export_figure(_figures()[0], "png", "auto")
    assert used == "matplotlib" and data.startswith(PNG_MAGIC)
    with pytest.raises(report.ExportError, match="no Chromium"):
        report.export_figure(_figures()[0], "png", "kaleido")


def test_auto_falls_back_when_kaleido_fails(monkeypatch):
    def boom(*a, **k):
        raise report.ExportError("Kaleido export failed: simulated")

    monkeypatch.setattr(report, "render_kaleido", boom)
    monkeypatch.setattr(report, "kaleido_available", lambda: True)
    _, used = report.export_figure(_figures()[1], "svg", "auto")
    assert used == "matplotlib"


def test_bad_format_is_a_clear_error():
    with pytest.raises(report.ExportError, match="format 'eps'"):
        report.export_figure(_figures()[0], "eps")


@pytest.mark.skipif(not Path(report.DEFAULT_BROWSER).is_file(),
                    reason="/usr/bin/chromium missing: run `make chromium` (Kaleido path untested)")
def test_kaleido_renders_png_and_svg_offline():
    figs = _figures()[:2]
    pngs = report.render_kaleido(figs, "png")
    assert [p[:8] for p in pngs] == [PNG_MAGIC, PNG_MAGIC]
    from PIL import Image

    w, h = report._fig_size(figs[0])
    assert Image.open(io.BytesIO(pngs[0])).size == (w, h)
    (big,), _ = report.export_figures(figs[:1], "png", "kaleido", scale=2)
    assert Image.open(io.BytesIO(big)).size == (2 * w, 2 * h)  # pixels for print
    (svg,), used = report.export_figures(figs[:1], "svg", "kaleido", scale=2)
    assert used == "kaleido" and svg.startswith(b"<svg")
    assert b"true RUL" in svg  # the legend text is in the vector output


def test_html_report_is_self_contained():
    reg = report.FigureRegistry()
    for i, f in enumerate(_figures()[:2]):
        reg.add_figure(f"p/{i}", f, page="Data", caption=f"caption {i}")
    reg.add_table("p/t", pd.DataFrame({"run": ["Bearing1_1"], "rmse": [0.25]}), "Metrics")
    reg.add_table("p/m", pd.DataFrame({"model": ["carl"], "rmse": [0.3]}).set_index("model"),
                  "By model")
    doc = report.html_report(reg.items(), "My <report>")
    assert "<th>0</th>" not in doc  # a plain 0, 1, 2... index is left out
    assert "<th>carl</th>" in doc  # a named index stays
    assert "<title>My &lt;report&gt;</title>" in doc
    assert len(doc) > 1_000_000  # plotly.js is inline
    assert not re.search(r"<script[^>]+src=", doc)  # nothing fetched from the network
    assert doc.count('class="plotly-graph-div"') == 2
    assert "Bearing1_1" in doc and "caption 1" in doc


def test_export_zip_contains_figures_tables_and_html(monkeypatch):
    monkeypatch.setattr(report, "browser_path", lambda: None)
    reg = report.FigureRegistry()
    reg.add_figure("p/a", _figures()[0], title="RUL curve")
    reg.add_table("p/t", pd.DataFrame({"rmse": [0.1]}), "Metrics")
    blob, used, failed = report.export_zip(reg.items(), ["png", "svg"])
    names = sorted(zipfile.ZipFile(io.BytesIO(blob)).namelist())
    assert used == "matplotlib" and failed == []
    assert names == ["01_rul_curve.png", "01_rul_curve.svg", "report.html",
                     "table_01_metrics.csv"]


def test_export_zip_names_sort_in_report_order_past_99(monkeypatch):
    monkeypatch.setattr(report, "export_figures",
                        lambda figs, fmt, engine, scale: ([b"x"] * len(figs), "stub"))
    reg = report.FigureRegistry()
    fig = go.Figure()
    for n in range(1, 102):
        reg.add_figure(f"p/{n}", fig, title=f"fig {n}")
    blob, _, _ = report.export_zip(reg.items(), ["png"], include_html=False)
    names = zipfile.ZipFile(io.BytesIO(blob)).namelist()
    assert sorted(names) == names  # a file browser shows them in report order
    assert names[0] == "001_fig_1.png" and names[-1] == "101_fig_101.png"


def test_save_report_never_overwrites_an_earlier_one(tmp_path):
    import datetime as dt

    now = dt.datetime(2026, 11, 28, 13, 5, 9)
    first = report.save_report(tmp_path / "reports", b"one", "My report!", now=now)
    second = report.save_report(tmp_path / "reports", b"two", "My report!", now=now)
    assert first.name == "my_report_20261128-130509.zip"
    assert second.name == "my_report_20261128-130509-2.zip"
    assert (first.read_bytes(), second.read_bytes()) == (b"one", b"two")
    assert sorted(f.name for f in first.parent.iterdir()) == sorted([first.name, second.name])


def test_write_new_leaves_no_temporary_file_when_the_write_fails(tmp_path, monkeypatch):
    from rul_core import atomic

    def broken_link(src, dst):
        raise FileExistsError(dst)

    monkeypatch.setattr(atomic.os, "link", broken_link)
    with pytest.raises(FileExistsError, match="no free name"):
        atomic.write_new(tmp_path, "r", ".zip", b"x")
    assert list(tmp_path.iterdir()) == []


def test_write_new_without_hard_links_reserves_the_name(tmp_path, monkeypatch):
    from rul_core import atomic

    def no_links(src, dst):
        raise PermissionError("hard links not supported")

    (tmp_path / "r.zip").write_bytes(b"old")
    monkeypatch.setattr(atomic.os, "link", no_links)
    path = atomic.write_new(tmp_path, "r", ".zip", b"new")
    assert path.name == "r-2.zip" and path.read_bytes() == b"new"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["r-2.zip", "r.zip"]
    assert (tmp_path / "r.zip").read_bytes() == b"old"


def test_deletion_curves_draw_the_input_and_baseline_and_skip_missing_areas():
    x = np.linspace(0, 1, 3)
    fig = plots.deletion_curves_figure(
        {"lrp": (x, [0.47, 0.2, 0.46]), "shap": (x, [0.47, 0.5, 0.46])},
        {"lrp": 0.25, "shap": float("nan")}, prediction=0.47, baseline=0.46)
    assert [t.name for t in fig.data] == ["LRP (AUC 0.250)", "SHAP"]
    lines = {round(sh.y0, 3): sh.line.dash for sh in fig.layout.shapes}
    assert lines == {0.47: "solid", 0.46: "dash"}
    # the higher line's label above it, the lower one's below, so close lines stay readable
    places = {a.text: a.yanchor for a in fig.layout.annotations}
    assert places == {"input 0.470": "bottom", "baseline 0.460": "top"}
    low = plots.deletion_curves_figure({"lrp": (x, [0.4, 0.5, 0.6])}, prediction=0.4,
                                       baseline=0.6)
    assert {a.text: a.yanchor for a in low.layout.annotations} == {
        "input 0.400": "top", "baseline 0.600": "bottom"}
    assert not plots.deletion_curves_figure({"lrp": (x, [1, 0, 0])}).layout.shapes


def test_loss_figure_groups_a_cross_validations_members_by_fold():
    """A 2-fold cross-validation of a 3-member ensemble has 12 curves: one legend entry per
    fold and kind, each fold one colour, validation dashed, members faded."""
    hist = {}
    for fold in (1, 2):
        for member in (1, 2, 3):
            tag = f"fold {fold}" + (f", member {member}" if member > 1 else "")
            hist[f"loss ({tag})"] = [1.0, 0.5]
            hist[f"val_loss ({tag})"] = [1.1, 0.6]
    fig = plots.loss_figure(hist)
    assert len(fig.data) == 12
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == ["loss (fold 1)", "val_loss (fold 1)", "loss (fold 2)", "val_loss (fold 2)"]
    by_fold = {f: {t.line.color for t in fig.data if t.legendgroup.endswith(f)}
               for f in ("fold 1", "fold 2")}
    assert all(len(c) == 1 for c in by_fold.values()) and by_fold["fold 1"] != by_fold["fold 2"]
    assert {t.line.dash for t in fig.data if t.legendgroup.startswith("val_loss")} == {"dash"}
    assert [t.opacity for t in fig.data[:4]] == [1.0, 1.0, 0.55, 0.55]
    assert "val_loss (fold 2, member 3)" in fig.data[-1].hovertemplate
    # one training, no folds: every curve its own legend entry, a member's pair one colour
    single = plots.loss_figure({"loss": [1, 0.5], "val_loss": [1, 0.6],
                                "loss (member 2)": [1, 0.4], "val_loss (member 2)": [1, 0.7]})
    assert [t.showlegend for t in single.data] == [True] * 4
    colours = [t.line.color for t in single.data]
    assert colours[0] == colours[1] != colours[2] == colours[3]


def test_loss_figure_axis_shows_negative_losses_and_whole_epochs():
    """RC-LSTM's Gaussian NLL goes below zero: a log axis would drop those points."""
    nll = plots.loss_figure({"loss": [0.8, -0.2, -0.9], "val_loss": [0.9, 0.1, -0.5]})
    assert nll.layout.yaxis.type == "linear"
    assert nll.layout.xaxis.dtick == 1 and nll.layout.xaxis.tick0 == 1
    mse = plots.loss_figure({"loss": [0.5, 0.2, 0.1]})
    assert mse.layout.yaxis.type == "log" and "log" in mse.layout.yaxis.title.text
    long = plots.loss_figure({"loss": np.linspace(1.0, 0.1, 95)})
    assert long.layout.xaxis.dtick == 10  # at most ~10 ticks, whole epochs


def test_rul_figure_several_bands_stay_apart_and_legend_moves_below():
    x = np.arange(20)
    curves = [{"x": x, "pred": 1 - x / 20 + k / 10, "lower": 0.9 - x / 20, "upper": 1.1 - x / 20,
               "name": f"model {k}"} for k in range(3)]
    one = plots.rul_figure(curves[:1])
    assert one.data[0].fillcolor.endswith(",0.2)") and one.data[0].line.width == 0
    three = plots.rul_figure(curves)
    bands = [t for t in three.data if t.fill == "toself"]
    assert len(bands) == 3
    assert all(b.fillcolor.endswith(",0.08)") and b.line.dash == "dot" for b in bands)
    assert three.layout.legend.orientation == "h" and three.layout.legend.y < 0
    sweep = plots.error_vs_severity_figure({f"carle/full (quick) 10:0{k}:00": ([0, 1], [0.1, 0.2])
                                            for k in range(3)}, "gaussian")
    assert sweep.layout.legend.orientation == "h" and sweep.layout.legend.y < 0


def test_tf_figures_name_units_and_use_svg_traces():
    """No WebGL traces (each takes one of the browser's few WebGL contexts) and every panel
    says what the feature is and its unit; long runs are downsampled."""
    tf = np.random.default_rng(0).random((10_000, 2, 7))
    fig = plots.tf_trends_figure(np.arange(10_000), tf, ["horizontal", "vertical"],
                                 max_points=1000)
    assert {type(t).__name__ for t in fig.data} == {"Scatter"}
    assert all(t.x.size <= 1000 for t in fig.data)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == list(plots.TF_FEATURE_TITLES)
    assert "f_d: dominant frequency (Hz)" in titles and "h: histogram entropy (nats)" in titles
    sig = plots.raw_signal_figure(np.zeros((50_000, 2)), 25600.0, ["h", "v"])
    assert {type(t).__name__ for t in sig.data} == {"Scatter"}
    bars = plots.tf_bars_figure(np.arange(14.0).reshape(2, 7), ["h", "v"])
    assert [a.text for a in bars.layout.annotations][1] == "f_d<br>dominant<br>frequency (Hz)"
    assert len(plots.TF_FEATURE_SHORT_TITLES) == len(plots.TF_FEATURE_TITLES) == 7


def test_tf_trends_mark_the_window_in_every_panel_under_its_traces():
    """One dashed line at the shown window in each of the 7 panels, across the panel's
    height, and each channel's trace in its feature's panel (built in one pass: add_vline per
    panel was half of the figure's time)."""
    tf = np.random.default_rng(0).random((20, 2, 7))
    fig = plots.tf_trends_figure(np.arange(20), tf, ["h", "v"], marker_x=4)
    refs = [(sh.xref, sh.yref, sh.x0, sh.x1, sh.y0, sh.y1) for sh in fig.layout.shapes]
    assert refs == [("x", "y domain", 4.0, 4.0, 0, 1)] + [
        (f"x{k}", f"y{k} domain", 4.0, 4.0, 0, 1) for k in range(2, 8)]
    assert [(t.name, t.yaxis) for t in fig.data] == [
        (name, "y" if j == 0 else f"y{j + 1}") for j in range(7) for name in ("h", "v")]
    np.testing.assert_array_equal(fig.data[5].y, tf[:, 1, 2])  # v, the third feature
    assert plots.tf_trends_figure(np.arange(20), tf, ["h", "v"]).layout.shapes == ()


def _drawn(fig):
    """The matplotlib redraw of ``fig`` (closed again after the test)."""
    import matplotlib.pyplot as plt

    mfig = report.matplotlib_figure(fig)
    plt.close(mfig)
    return mfig


def test_matplotlib_draws_horizontal_bars_along_x():
    """The layer-relevance chart is horizontal: layer names on y (output at the top), sums on
    x; the fallback drew vertical bars with the sums as x categories."""
    fig = plots.layer_relevance_figure(["output", "lstm", "input"], [1.0, 0.9, 0.6], 1.0)
    ax = _drawn(fig).axes[0]
    bars = [p for p in ax.patches if p.get_width() > 0 and p.get_height() > 0]
    assert sorted(round(b.get_width(), 6) for b in bars) == [0.6, 0.9, 1.0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["output", "lstm", "input"]
    assert ax.yaxis_inverted()  # the first layer (output) at the top, as in plotly
    assert ax.get_xlabel() == "sum of relevance"


def test_matplotlib_rank_agreement_keeps_colours_and_cell_values():
    """plotly's 'RdBu' (red at -1, blue at +1) came out as viridis, and the annotated
    correlation values were dropped."""
    m = pd.DataFrame([[1.0, -0.5], [-0.5, 1.0]], index=["lrp", "shap"], columns=["lrp", "shap"])
    ax = _drawn(plots.rank_agreement_figure(m)).axes[0]
    mesh = ax.collections[0]
    low, high = mesh.cmap(0.0), mesh.cmap(1.0)
    assert low[0] > low[2] and high[2] > high[0]  # red at the low end, blue at the high end
    assert mesh.get_clim() == (-1.0, 1.0)
    assert sorted(t.get_text() for t in ax.texts) == ["-0.5", "-0.5", "1", "1"]  # as plotly


def test_matplotlib_breaks_lines_at_br_instead_of_printing_the_tag():
    """The TF-bar panel titles (and the scalogram's colour-bar unit) are written with <br>;
    the fallback printed the tags literally, and the long titles ran into each other."""
    mfig = _drawn(plots.tf_bars_figure(np.arange(14.0).reshape(2, 7), ["h", "v"]))
    texts = [t.get_text() for t in mfig.texts]
    assert "f_d\ndominant\nfrequency (Hz)" in texts
    assert not any("<br" in t for t in texts)


def test_matplotlib_colour_bars_keep_their_titles():
    """The colour bar's title carries the unit (|W| (normalised), attribution); the fallback
    drew the bar without it."""
    fig = plots.scalogram_figure(np.ones((20, 50)), np.geomspace(75.0, 25 / 3, 20), 25600.0)
    bar = _drawn(fig).axes[-1]
    assert bar.get_title("left") == "|W|\n(normalised)"  # above the bar, as in plotly


def test_matplotlib_keeps_explicit_x_tick_labels():
    """The signal-attribution x axis is labelled by window (t−2, t−1, t); the fallback showed
    raw sample numbers instead."""
    fig = plots.signal_attribution_figure(np.zeros((300, 1)), 3, np.linspace(0, 300, 4),
                                          {"lrp": np.array([0.1, -0.2, 0.3])})
    ax = _drawn(fig).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["t−2", "t−1", "t"]
    np.testing.assert_allclose(ax.get_xticks(), [50.0, 150.0, 250.0])


def test_matplotlib_links_shared_axes_like_plotly():
    """make_subplots(shared_xaxes=True) gives every panel one x range (the union of their
    data); the fallback let each panel autoscale to its own."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True)
    fig.add_trace(go.Scatter(x=[0, 1], y=[1, 2]), 1, 1)
    fig.add_trace(go.Scatter(x=[5, 9], y=[1, 2]), 2, 1)
    top, bottom = _drawn(fig).axes
    assert top.get_xlim() == bottom.get_xlim()
    assert top.get_xlim()[0] < 0 and top.get_xlim()[1] > 9
    assert top.get_ylim() != (0.0, 1.0)  # y stays each panel's own


def test_matplotlib_log_ticks_are_plain_numbers():
    """A log loss axis is labelled 0.1, 1, 10 as plotly writes it, not 10^-1 in mathtext."""
    fig = plots.loss_figure({"loss": [20.0, 2.0, 0.2, 0.05]})
    mfig = _drawn(fig)
    mfig.canvas.draw()
    labels = [t.get_text() for t in mfig.axes[0].get_yticklabels() if t.get_text()]
    assert "0.1" in labels and "1" in labels and "10" in labels
    assert not any("$" in text for text in labels)


def test_matplotlib_labels_reference_lines_like_plotly():
    """Reference lines carry their meaning in an annotation tied to the axis ('input 0.600',
    'baseline 0.200', 'output relevance') and are grey; the fallback dropped every annotation
    not in paper coordinates and drew the lines black."""
    import matplotlib.colors as mcolors

    x = np.linspace(0, 1, 3)
    fig = plots.deletion_curves_figure({"lrp": (x, [0.6, 0.3, 0.2])}, prediction=0.6,
                                       baseline=0.2)
    ax = _drawn(fig).axes[0]
    labels = {t.get_text(): t for t in ax.texts}
    assert set(labels) == {"input 0.600", "baseline 0.200"}
    assert labels["input 0.600"].get_position() == (0, 0.6)  # left edge, at the line
    assert labels["input 0.600"].get_va() == "bottom" and labels["baseline 0.200"].get_va() == "top"
    refs = [ln for ln in ax.lines if list(ln.get_xdata()) == [0, 1]]
    assert sorted(ln.get_ydata()[0] for ln in refs) == [0.2, 0.6]
    assert all(mcolors.to_hex(ln.get_color()) == "#888888" for ln in refs)
    layers = plots.layer_relevance_figure(["output", "input"], [1.0, 0.6], 1.0)
    assert [t.get_text() for t in _drawn(layers).axes[0].texts] == ["output relevance"]


def _extent(artist, mfig):
    """An artist's box in figure pixels (after drawing)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(mfig)
    canvas.draw()
    return artist.get_window_extent(canvas.get_renderer())


def test_matplotlib_keeps_axis_titles_and_colour_bars_inside_the_image():
    """At the report heights (300-340 px) the x-axis title was cut off at the bottom, and a
    colour bar's tick labels at the right edge."""
    x = np.arange(20)
    mfig = _drawn(plots.label_figure(x, {"linear": 1 - x / 19}))
    assert _extent(mfig.axes[0].xaxis.label, mfig).y0 >= 0
    overlay = _drawn(plots.attribution_overlay_figure(np.eye(64, 500), {
        "lrp": np.eye(64, 500), "shap": -np.eye(64, 500)}))
    width = overlay.get_size_inches()[0] * overlay.dpi
    assert all(_extent(t, overlay).x1 <= width for t in overlay.axes[-1].get_yticklabels())


def test_matplotlib_colour_bar_does_not_squeeze_its_subplot():
    """Plotly puts the colour bar beside the plot area; the fallback took its room from the
    subplot it belongs to, so stacked panels (signal attribution) or side-by-side panels
    (image attributions) came out with different widths."""
    fig = plots.signal_attribution_figure(np.zeros((300, 1)), 3, np.linspace(0, 300, 4),
                                          {"lrp": np.ones(3), "shap": -np.ones(3)})
    top, bottom = [a for a in _drawn(fig).axes if a.get_label() != "<colorbar>"][:2]
    assert top.get_position().width == pytest.approx(bottom.get_position().width)
    overlay = plots.attribution_overlay_figure(np.eye(64, 500), {
        "lrp": np.eye(64, 500), "shap": -np.eye(64, 500)})
    left, right = [a for a in _drawn(overlay).axes if a.get_label() != "<colorbar>"][:2]
    assert left.get_position().width == pytest.approx(right.get_position().width)


def test_matplotlib_legend_sits_where_plotly_puts_it():
    """Plotly's legend is outside the plot area: at the right by default, under the x axis
    when horizontal (several models, the scalogram); the fallback put it inside the axes, over
    the data (over the scalogram's high frequencies, over the first TF-bar panel)."""
    x = np.arange(20)
    curves = [{"x": x, "pred": 1 - x / 20, "true": 1 - x / 20, "name": f"model {k}"}
              for k in range(3)]
    for fig, where in ((plots.rul_figure(curves[:1]), "right"),
                       (plots.rul_figure(curves), "below"),
                       (plots.tf_bars_figure(np.ones((2, 7)), ["h", "v"]), "right"),
                       (plots.scalogram_figure(np.ones((20, 50)), np.geomspace(75.0, 9, 20),
                                               25600.0, np.full(50, 30.0)), "below")):
        mfig = _drawn(fig)
        legend = mfig.legends[0] if mfig.legends else mfig.axes[0].get_legend()
        assert legend is not None
        box = _extent(legend, mfig)
        plots_ = [_extent(a, mfig) for a in mfig.axes if a.get_label() != "<colorbar>"]
        if where == "right":
            assert box.x0 >= max(p.x1 for p in plots_)
        else:
            assert box.y1 <= min(p.y0 for p in plots_)
        assert box.x0 >= 0 and box.y0 >= 0  # and inside the image
    assert len(mfig.legends[0].get_texts()) == 2  # the scalogram's two entries
    single = plots.error_vs_severity_figure({"carle": ([0, 1], [0.1, 0.2])}, "gaussian")
    mfig = _drawn(single)
    assert not mfig.legends and mfig.axes[0].get_legend() is None  # plotly: no legend for one


def test_matplotlib_shared_x_axes_label_only_the_bottom_panel():
    """Stacked panels with a shared x axis (raw signal, TF trends, signal attribution) have
    tick labels only under the bottom panel in plotly; the fallback repeated them under every
    panel, where they ran into the next panel's title."""
    fig = plots.raw_signal_figure(np.zeros((300, 2)), 1000.0, ["horizontal", "vertical"])
    mfig = _drawn(fig)
    _extent(mfig, mfig)  # draw, so the tick labels exist
    top, bottom = mfig.axes
    assert not any(t.get_visible() and t.get_text() for t in top.get_xticklabels())
    assert any(t.get_visible() and t.get_text() for t in bottom.get_xticklabels())


def test_matplotlib_keeps_the_dotted_edges_of_overlapping_bands():
    """With several interval bands the fills are faint and their dotted edges show where each
    band ends; the fallback drew the fills without edges."""
    x = np.arange(20)
    curves = [{"x": x, "pred": 1 - x / 20, "lower": 0.9 - x / 20 - k / 20,
               "upper": 1.1 - x / 20 + k / 20, "name": f"model {k}"} for k in range(2)]
    ax = _drawn(plots.rul_figure(curves)).axes[0]
    bands = [p for p in ax.patches if p.get_label().endswith("interval")]
    assert len(bands) == 2
    assert all(b.get_linewidth() > 0 and b.get_linestyle() == ":" for b in bands)
    one = _drawn(plots.rul_figure(curves[:1])).axes[0]
    assert [p.get_linewidth() for p in one.patches] == [0.0]  # a single band: no edge


def test_pdf_export_for_papers(monkeypatch):
    """Papers want vector PDF; only PNG and SVG were offered."""
    assert "pdf" in report.FORMATS and report.MIME_TYPES["pdf"] == "application/pdf"
    data, used = report.export_figure(_figures()[0], "pdf", "matplotlib")
    assert used == "matplotlib" and data.startswith(b"%PDF")
    if Path(report.DEFAULT_BROWSER).is_file():
        data, used = report.export_figure(_figures()[0], "pdf", "kaleido")
        assert used == "kaleido" and data.startswith(b"%PDF")


def test_matplotlib_vector_text_stays_text():
    """Journals' PDF checks reject Type 3 fonts and editors need real text in an SVG; the
    fallback wrote Type 3 fonts into PDFs and every SVG letter as a path."""
    fig = _figures()[0]
    pdf = report.render_matplotlib(fig, "pdf")
    assert b"/Type3" not in pdf and b"/FontFile2" in pdf  # TrueType, embedded
    svg = report.render_matplotlib(fig, "svg").decode()
    assert re.search(r"<text[^>]*>\s*Predicted vs true RUL\s*</text>", svg)
    assert re.search(r"<text[^>]*>\s*true RUL\s*</text>", svg)  # the legend, too


def test_export_zip_keeps_going_past_a_failed_figure_and_names_it(monkeypatch):
    """One figure that cannot be drawn aborted the whole ZIP with an error that did not say
    which figure; now the others are exported and the failure is listed (in the result and
    in the ZIP) with its reason."""
    real = report.render_matplotlib

    def flaky(fig, fmt="png", dpi=100, scale=1.0):
        if fig.layout.title.text == "Broken":
            raise ValueError("cannot draw this trace")
        return real(fig, fmt, dpi, scale)

    monkeypatch.setattr(report, "render_matplotlib", flaky)
    reg = report.FigureRegistry()
    reg.add_figure("p/a", _figures()[0], title="RUL curve")
    reg.add_figure("p/b", plots.trends_figure(np.arange(3), {"a": np.ones(3)}, "Broken", "y"))
    reg.add_figure("p/c", _figures()[1], title="Raster")
    blob, used, failed = report.export_zip(reg.items(), ["png"], "matplotlib")
    zf = zipfile.ZipFile(io.BytesIO(blob))
    assert sorted(zf.namelist()) == ["01_rul_curve.png", "03_raster.png", "export_errors.txt",
                                     "report.html"]
    assert used == "matplotlib"
    assert failed == ["02_broken.png (Broken): ValueError: cannot draw this trace"]
    assert zf.read("export_errors.txt").decode().splitlines() == failed


def test_matplotlib_loss_axis_counts_whole_epochs():
    """The loss chart's x axis has one tick per whole epoch (plotly tickmode 'linear'); the
    fallback labelled fractional epochs (0.75, 1.25 ...)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    mfig = _drawn(plots.loss_figure({"loss": [0.5, 0.3, 0.2], "val_loss": [0.6, 0.4, 0.3]}))
    FigureCanvasAgg(mfig).draw()
    ax = mfig.axes[0]
    lo, hi = ax.get_xlim()
    shown = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert shown == [1.0, 2.0, 3.0]
    long = _drawn(plots.loss_figure({"loss": np.linspace(1.0, 0.1, 95)})).axes[0]
    lo, hi = long.get_xlim()
    assert [t for t in long.get_xticks() if lo <= t <= hi][:3] == [1.0, 11.0, 21.0]
