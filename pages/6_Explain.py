"""Explain: LRP, LIME and SHAP side by side on one window, agreement, faithfulness, global view."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from rul_core import app_ui, plots

PAGE = "Explain"
app_ui.header(PAGE)

views, compare = app_ui.require_modules("Explanations (rul_core.explain)",
                                        "rul_core.views", "rul_core.explain.compare")

dataset = app_ui.require_dataset()
label, trained = app_ui.pick_model("explain_model")
if trained is None:
    st.stop()
if trained.forest is not None:
    st.caption("This model's final RUL comes from a random forest on the network's embedding; "
               "the explanations here are of the network's own output.")

run = app_ui.pick_run(dataset, key="explain_run")
settings, _, _ = app_ui.view_context(run)
per_snapshot = views.n_windows(run, settings)
if per_snapshot == 0:
    st.error(f"{run.name}: snapshots are shorter than one window.")
    st.stop()
idx = app_ui.pick_window("Window over life", run.n_snapshots * per_snapshot, key="explain_window")
snap, win = divmod(int(idx), per_snapshot)

with st.expander("Settings", expanded=False):
    c1, c2, c3, c4 = st.columns(4)
    first_rules = compare.default_rules(trained.config.name)  # each default keeps its choice
    rules = c1.selectbox(
        "LRP rules", compare.LRP_RULES, key=f"explain_rules_{first_rules}",
        index=compare.LRP_RULES.index(first_rules),
        help="epsilon (default for Multimodal-RUL and CARLE): LRP-ε with the biases in the "
             "denominators (they absorb relevance), the set whose rankings tracked those "
             "models on real FEMTO windows; conservative (default for RC-LSTM, where it "
             "tracked best): input relevance sums to the output, biases kept out of the "
             "denominators; paper: the Multimodal-RUL paper's rules as printed (they lose "
             "relevance, and on RC-LSTM's recurrent cell keep only the last step's). "
             "README, Explanations.")
    methods = c2.multiselect("Methods", compare.METHODS, default=list(compare.METHODS),
                             key="explain_methods")
    lime_samples = c3.number_input("LIME samples", 50, 5000, 300, 50, key="explain_lime_n")
    lime_seeds = c4.number_input("LIME seeds", 1, 10, 3, key="explain_lime_seeds")
    shap_samples = c1.number_input("SHAP samples", 10, 2000, 100, 10, key="explain_shap_n")
    n_bands = c2.number_input("Image bands / signal segments", 5, 100, 25, 5,
                              key="explain_bands",
                              help="The features compared: column bands of the ImR, or "
                                   "(RC-LSTM) segments of the input signal sequence.")
cmp_settings = compare.CompareSettings(
    methods=tuple(methods), rules=rules, n_bands=int(n_bands), lime_samples=int(lime_samples),
    lime_seeds=tuple(range(int(lime_seeds))), shap_samples=int(shap_samples),
    shap_background=30, n_random=5)


@st.cache_resource(max_entries=4, show_spinner="Choosing background windows…")
def _background(model_key: str, run_keys: tuple[str, ...], _trained, _runs):
    return views.explain_background(_trained, _runs, max_windows=60)


train_names = [r.name for r in trained.train_runs if r.name in dataset.run_names]
bg_runs = [dataset.run(n) for n in train_names] or [run]
if not train_names:
    st.caption(f"The model's training bearings are not in this dataset; background windows "
               f"come from {run.name}.")
model_key = app_ui.model_key(label, trained)
tf_channels = trained.config.resolved().get("tf_channels")


def _names(features: list[str]) -> list[str]:
    """'vertical: log E' instead of 'ch0:log_E' (the model's TF channels in this run)."""
    return compare.readable_feature_names(features, tf_channels, run.channel_names)

state_key = (model_key, app_ui.run_key(run)[:16], int(idx), repr(cmp_settings))


def _show_window(res) -> None:
    """The comparison of one window: maps, bars, layer sums, curves, agreement, faithfulness."""
    comp = res.comparison
    st.markdown(f"**Prediction** {comp.prediction:.3f} (baseline input: "
                f"{comp.baseline_prediction:.3f}) · cost: "
                + ", ".join(f"{m.upper()} {s:.2f} s" for m, s in comp.seconds.items()))

    if res.image is not None and res.image_maps:
        maps = plots.normalise_attributions(res.image_maps, quantile=0.98)
        fig = plots.attribution_overlay_figure(res.image, maps, "ImR attributions (each scaled to "
                                               "its 98th percentile |value| = 1, one colour scale)")
        app_ui.show_figure(fig, "image-maps", PAGE)

    if res.signal is not None and res.signal.segment_maps:
        sig = res.signal
        every = int(trained.snapshot_every)
        fig = plots.signal_attribution_figure(
            sig.samples, sig.steps, sig.edges, sig.segment_maps,
            "Signal attributions over the input sequence (shares of |attribution| per segment, "
            "one colour scale" + (f"; one window every {every} snapshots)" if every > 1 else ")"),
            channel_names=run.channel_names)
        app_ui.show_figure(fig, "signal-maps", PAGE)

    frame = comp.attribution_frame()
    for modality, title, key in (
            ("tf", "TF-feature attributions (shares of |attribution|)", "tf-attr"),
            ("signal", "Signal attributions per segment of the input sequence (oldest first; "
                       "shares of |attribution|)", "signal-attr")):
        rows = frame[frame["modality"] == modality]
        if len(rows):
            attr = {m: rows[m].to_numpy() for m in comp.normalised}
            spread = {m: np.asarray(v)[frame["modality"].to_numpy() == modality]
                      for m, v in comp.spread.items()}
            fig = plots.feature_attribution_figure(attr, _names(rows["feature"].tolist()), title,
                                                   errors=spread or None)
            app_ui.show_figure(fig, key, PAGE, caption="Error bars: LIME's spread across seeds.")

    col_a, col_b = st.columns(2)
    with col_a:
        lrp = comp.details.get("lrp")
        if lrp is not None:
            table = lrp.layer_table()
            fig = plots.layer_relevance_figure(table["layer"].tolist(),
                                               table["relevance_out"].tolist(),
                                               float(np.mean(lrp.prediction)),
                                               f"LRP relevance sum per layer ({lrp.rules} rules)")
            app_ui.show_figure(fig, "layers", PAGE)
    with col_b:
        curves = {m: (np.linspace(0, 1, len(c["deletion_pred"])), c["deletion_pred"])
                  for m, c in comp.curves.items()}
        faith = comp.faithfulness_frame()
        aucs = dict(zip(faith["method"], faith["deletion_auc"], strict=True))
        fig = plots.deletion_curves_figure(curves, aucs, prediction=comp.prediction,
                                           baseline=comp.baseline_prediction,
                                           y_title="prediction (normalised RUL)")
        app_ui.show_figure(fig, "deletion", PAGE, caption=(
            "AUC: the area under (prediction − baseline) / (input − baseline), lower = more "
            "faithful."))

    agree = comp.agreement_frame()
    if len(agree):
        ms = sorted(comp.normalised)
        mat = pd.DataFrame(np.eye(len(ms)), index=ms, columns=ms)
        for _, r in agree[agree["scope"] == "all"].iterrows():
            mat.loc[r["method_a"], r["method_b"]] = mat.loc[r["method_b"], r["method_a"]] = (
                r["spearman"])
        col_c, col_d = st.columns(2)
        with col_c:
            app_ui.show_figure(plots.rank_agreement_figure(mat, "Rank agreement (Spearman, all "
                                                           "features)"), "agreement", PAGE)
        with col_d:
            app_ui.show_table(agree, "agreement-table", "Rank agreement between methods", PAGE)
    if note := comp.faithfulness_note():
        st.info(note)
    app_ui.show_table(faith, "faithfulness", "Faithfulness (deletion: lower is better; insertion: "
                      "higher is better)", PAGE)


if st.button("Explain this window", type="primary", key="explain_go", disabled=not methods):
    bar = st.progress(0.0, text="Explaining…")
    background = app_ui.guarded(_background, model_key, tuple(app_ui.run_key(r)[:16]
                                                              for r in bg_runs),
                                trained, bg_runs, context="background")
    if background is not None:
        result = app_ui.guarded(views.explain_window, trained, run, snap, win, background,
                                cmp_settings,
                                progress=lambda ev: bar.progress(ev.fraction, text=ev.message),
                                context="explain")
        if result is not None:
            st.session_state["explain_result"] = (state_key, result)
    bar.empty()

stored = st.session_state.get("explain_result")
if stored is None:
    st.info("Pick a window and press **Explain this window**.")
else:
    if stored[0] != state_key:
        st.caption("Showing the last explanation (settings or window changed since).")
    _show_window(stored[1])

st.subheader("Global importance over the run")
n_glob = st.number_input("Windows (spread over the run)", 2, 50, 4, key="explain_global_n")
global_key = (model_key, app_ui.run_key(run)[:16], int(n_glob), repr(cmp_settings))
if st.button("Compute global importance", key="explain_global"):
    bar = st.progress(0.0, text="Explaining windows…")
    background = app_ui.guarded(_background, model_key, tuple(app_ui.run_key(r)[:16]
                                                              for r in bg_runs),
                                trained, bg_runs, context="background")
    if background is not None:
        glob = app_ui.guarded(views.explain_run, trained, run, background, int(n_glob),
                              cmp_settings,
                              progress=lambda ev: bar.progress(ev.fraction, text=ev.message),
                              context="global importance")
        if glob is not None:
            st.session_state["explain_global_result"] = (global_key, glob)
    bar.empty()
stored_global = st.session_state.get("explain_global_result")
if stored_global is not None:
    if stored_global[0] != global_key:
        st.caption("Showing the last global importance (model, run or settings changed since).")
    glob = stored_global[1]
    gi = glob.global_importance()
    methods_g = [c for c in gi.columns if c not in ("feature", "modality")]
    fig = plots.feature_attribution_figure({m: gi[m].to_numpy() for m in methods_g},
                                           _names(gi["feature"].tolist()),
                                           "Global importance: mean |attribution| over windows")
    app_ui.show_figure(fig, "global", PAGE)
    app_ui.show_table(glob.faithfulness_frame(), "global-faithfulness",
                      "Faithfulness over these windows (mean and sd over the windows that have "
                      "areas; windows: how many)", PAGE)
    best, n_ok = glob.most_faithful(), glob.n_conditioned
    if best is None:
        st.caption(f"No faithfulness ranking: in none of these {len(glob.windows)} windows does "
                   "removing every feature move the prediction enough to normalise by.")
    else:
        st.caption(f"Most faithful over these windows: **{best.upper()}** (largest insertion − "
                   f"deletion area, over the {n_ok} of {len(glob.windows)} windows where removing "
                   "every feature moves the prediction enough to measure).")

# Last, once the page is drawn: trace what explaining this model runs in a background thread
# (once per model), so the first click does not wait for it (rul_core.explain.warm)
views.warm_explain(trained, rules)
