"""Representations: the ImR raster, scalogram and TF features of any window of a run."""

from __future__ import annotations

import streamlit as st

from rul_core import app_ui, plots

PAGE = "Representations"
app_ui.header(PAGE)

views, _ = app_ui.require_modules("The signal pipeline (ImR, CWT, TF features)",
                                  "rul_core.views", "rul_core.signal.features:tf_features")

dataset = app_ui.require_dataset()

run = app_ui.pick_run(dataset, key="repr_run")
try:
    settings, normaliser, skey = app_ui.view_context(run)
    per_snapshot = views.n_windows(run, settings)
except Exception as exc:
    app_ui.show_error(exc, f"cannot prepare {run.name}")
    st.stop()
if per_snapshot == 0:
    st.error(f"{run.name}: snapshots of {run.n_samples} samples are shorter than one window "
             f"of {settings.window_length} samples.")
    st.stop()
total = run.n_snapshots * per_snapshot
idx = app_ui.pick_window("Window over life", total, key="repr_window",
                        help=f"{per_snapshot} windows of {settings.window_length} samples "
                             f"per snapshot, stride {settings.stride}; Noise lab and Explain "
                             "start on the window chosen here")
snap, win = divmod(int(idx), per_snapshot)
st.caption(f"Snapshot {snap} of {run.n_snapshots - 1}, window {win} "
           f"(samples {win * settings.stride}–{win * settings.stride + settings.window_length})"
           f" · normalised with the run's own min/max after a Gaussian filter "
           f"(σ = {settings.sigma}).")

view = app_ui.guarded(app_ui.window_view, app_ui.run_key(run), snap, win, skey, run, normaliser,
                      settings, context="window features")
if view is None:
    st.stop()
ch = run.channel_names
col_a, col_b = st.columns(2)
with col_a:
    fig = plots.imr_figure(view.image, f"ImR raster — {ch[settings.imr_channel]} channel")
    app_ui.show_figure(fig, "imr", PAGE)
with col_b:
    fig = plots.raw_signal_figure(view.signal, run.fs, ch, "Normalised window", unit="[0, 1]")
    app_ui.show_figure(fig, "window", PAGE)

notice = views.cone_notice(run, settings)
scal = view.scalogram
fig = plots.scalogram_figure(scal.magnitude, scal.frequencies, run.fs, scal.coi_frequency,
                             f"Scalogram — {ch[settings.tf_channel]} channel (cmor2.0-0.81)")
app_ui.show_figure(fig, "scalogram", PAGE, caption=notice)
st.info(notice)

fig = plots.tf_bars_figure(view.tf, ch)
app_ui.show_figure(fig, "tf", PAGE)

trend = app_ui.guarded(app_ui.tf_trend, app_ui.run_key(run), skey, run, normaliser, settings,
                       context="TF features over the run")
if trend is not None:
    tf, _ = trend
    fig = plots.tf_trends_figure(range(tf.shape[0]), tf, ch, marker_x=idx)
    app_ui.show_figure(fig, "tf-trend", PAGE)
