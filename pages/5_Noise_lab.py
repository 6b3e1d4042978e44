"""Noise lab: add noise to a window, see features and predictions change; severity sweeps."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from rul_core import app_ui, plots

PAGE = "Noise lab"
app_ui.header(PAGE)

views, noise_mod = app_ui.require_modules("Noise models (rul_core.signal.noise)",
                                          "rul_core.views", "rul_core.signal.noise")

dataset = app_ui.require_dataset()

run = app_ui.pick_run(dataset, key="noise_run")
settings, normaliser, skey = app_ui.view_context(run)
per_snapshot = views.n_windows(run, settings)
if per_snapshot == 0:
    st.error(f"{run.name}: snapshots are shorter than one window.")
    st.stop()
c1, c2, c3, c4 = st.columns(4)
kinds = list(noise_mod.NOISE_KINDS)
kind = c1.selectbox("Noise", kinds, key="noise_kind",
                    format_func=lambda k: k.replace("_", " ").replace("and", "&"))
severity = c2.slider("Severity", 0.0, 3.0, 1.0, 0.25, key="noise_severity",
                     help="Multiplies the papers' default amplitude (uniform, Gaussian) or "
                          "fractions (salt & pepper); 0 = clean.")
seed = c3.number_input("Seed", 0, 10_000, 0, key="noise_seed")
n_windows = run.n_snapshots * per_snapshot
idx = app_ui.pick_window(f"Window (0–{n_windows - 1})", n_windows, key="noise_window", where=c4,
                         slider=False,
                         help=f"{per_snapshot} windows per snapshot, oldest first; starts on the "
                              "window last chosen on Representations or Explain")
snap, win = divmod(int(idx), per_snapshot)
st.caption(f"Snapshot {snap} of {run.n_snapshots - 1}, window {win} of {per_snapshot - 1} "
           "in it.")
noise = noise_mod.NoiseModel(kind, float(severity), int(seed)) if severity > 0 else None


def _noisy(sig, noise=noise, snap=snap):
    return noise(sig[None], [snap])[0] if noise is not None else sig


clean = app_ui.window_view(app_ui.run_key(run), snap, win, skey, run, normaliser, settings)
noisy = clean if noise is None else app_ui.guarded(
    views.window_view, run, snap, win, normaliser, settings, noise=_noisy, context="noisy window")
if noisy is None:
    st.stop()
ch = run.channel_names
col_a, col_b = st.columns(2)
with col_a:
    app_ui.show_figure(plots.imr_figure(clean.image, "ImR — clean"), "imr-clean", PAGE)
    app_ui.show_figure(plots.raw_signal_figure(clean.signal, run.fs, ch, "Window — clean",
                                               unit="[0, 1]"), "sig-clean", PAGE)
with col_b:
    app_ui.show_figure(plots.imr_figure(noisy.image, f"ImR — {kind} × {severity:g}"),
                       "imr-noisy", PAGE)
    app_ui.show_figure(plots.raw_signal_figure(noisy.signal, run.fs, ch,
                                               f"Window — {kind} × {severity:g}",
                                               unit="[0, 1]"), "sig-noisy", PAGE)
scal = noisy.scalogram
app_ui.show_figure(plots.scalogram_figure(scal.magnitude, scal.frequencies, run.fs,
                                          scal.coi_frequency,
                                          f"Scalogram — {kind} × {severity:g}"),
                   "scalogram-noisy", PAGE)
feat = pd.DataFrame(
    [clean.tf[settings.tf_channel], noisy.tf[settings.tf_channel]],
    index=["clean", "noisy"], columns=list(plots.TF_FEATURE_NAMES))
app_ui.show_table(feat, "tf-change", f"TF features ({ch[settings.tf_channel]}) clean vs noisy",
                  PAGE)

# ----------------------------------------------------------------------------- predictions
st.subheader("Prediction of this window")
models = app_ui.session_models()
if not models:
    st.info("No model yet: train one on the Train page or load a bundle there.")
    st.stop()
rows = []
run_hash = app_ui.run_key(run)
for label, trained in models.items():
    key = app_ui.model_key(label, trained)
    # the noise is applied by the model's own pipeline, on its own normalisation
    clean_p = app_ui.guarded(app_ui.window_prediction, key, run_hash, snap, win, "", trained,
                             run, context=f"predict {label}")
    noisy_p = (clean_p if noise is None else app_ui.guarded(
        app_ui.window_prediction, key, run_hash, snap, win, repr(noise), trained, run, noise,
        context=f"predict {label} with noise"))
    if clean_p and noisy_p:
        rows.append({"model": label, "clean RUL": clean_p["mean"], "noisy RUL": noisy_p["mean"],
                     "change": noisy_p["mean"] - clean_p["mean"],
                     "noisy interval": f"[{noisy_p['lower']:.3f}, {noisy_p['upper']:.3f}]"})
if rows:
    app_ui.show_table(pd.DataFrame(rows).set_index("model"), "pred-change",
                      "Prediction change under noise", PAGE)
    if any(min(r["clean RUL"], r["noisy RUL"]) < 0 for r in rows):
        st.caption("An estimate below 0 is the model's raw output (RC-LSTM's Gaussian mean is "
                   "not bounded): it reads the window as past failure, 0 time left. Metrics "
                   "and explanations use the raw value.")

# ----------------------------------------------------------------------------- sweep
st.subheader("Severity sweep")
st.caption("A model trained with noisy copies of its bearings (Train page, Noise augmentation) "
           "can be swept next to the same model trained clean.")
app_ui.keep_valid("sweep_models", list(models))
sweep_models = st.multiselect("Models", list(models), default=list(models), key="sweep_models")
trained_names = set()
for m in sweep_models:
    trained_names |= {r.name for r in models[m].train_runs}
default_runs = [n for n in dataset.run_names if n not in trained_names][:2] or [run.name]
app_ui.keep_valid("sweep_runs", dataset.run_names, default_runs)
sweep_runs = st.multiselect("Bearings", dataset.run_names, default=default_runs,
                            key="sweep_runs")
levels_text = st.text_input("Severities", "0, 0.5, 1, 2, 3", key="sweep_levels")
try:
    levels = sorted({float(v) for v in levels_text.replace(";", ",").split(",") if v.strip()})
except ValueError:
    st.error("Severities: expected numbers separated by commas, e.g. 0, 0.5, 1, 2")
    levels = []
if st.button("Run sweep", key="sweep_run", disabled=not (sweep_models and sweep_runs and levels)):
    bar = st.progress(0.0, text="Sweeping…")
    found = app_ui.guarded(
        views.noise_sweep_predictions, {m: models[m] for m in sweep_models},
        [dataset.run(n) for n in sweep_runs], kind, levels, int(seed),
        progress=lambda ev: bar.progress(ev.fraction, text=ev.message), context="sweep")
    bar.empty()
    if found is not None:
        st.session_state["noise_sweep_result"] = (kind, views.sweep_table(found, levels))
if st.session_state.get("noise_sweep_result"):
    s_kind, result = st.session_state["noise_sweep_result"]
    col_e, col_r = st.columns(2)
    with col_e:
        app_ui.show_figure(plots.error_vs_severity_figure(views.sweep_curves(result), s_kind),
                           "sweep", PAGE)
    with col_r:
        app_ui.show_figure(plots.error_vs_severity_figure(
            views.sweep_curves(result, "rank_correlation"), s_kind,
            metric="rank correlation"), "sweep-rank", PAGE)
    st.caption("Rank correlation: Spearman's, of the estimate with the label within each "
               "bearing, averaged over the bearings. Near 0, the estimate no longer falls as "
               "the bearing wears, however low its RMSE stays.")
    app_ui.show_table(result, "sweep-table", "Severity sweep", PAGE)
