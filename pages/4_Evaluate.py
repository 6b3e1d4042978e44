"""Evaluate: RUL over life with its band, time left, the PHM 2012 protocol, metrics per bearing
x condition, comparison."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from rul_core import app_ui, phm2012, plots, views

PAGE = "Evaluate"
app_ui.header(PAGE)

(evaluation,) = app_ui.require_modules("Evaluation (rul_core.evaluation)",
                                       "rul_core.evaluation")

dataset = app_ui.require_dataset()
models = app_ui.session_models()
if not models:
    st.info("No model yet: train one on the Train page or load a bundle there.")
    st.stop()

default_models = ([st.session_state["model_label"]]
                  if st.session_state.get("model_label") in models else list(models)[:1])
app_ui.keep_valid("eval_models", list(models), default_models)
chosen = st.multiselect("Models to compare", list(models), default=default_models,
                        key="eval_models")
first = models[chosen[0]] if chosen else None
trained_names = {r.name for r in first.train_runs} if first is not None else set()
default_runs = [n for n in dataset.run_names if n not in trained_names] or dataset.run_names
app_ui.keep_valid("eval_runs", dataset.run_names, default_runs)  # another dataset since
run_names = st.multiselect("Bearings to evaluate", dataset.run_names, default=default_runs,
                           key="eval_runs")
on = st.radio("Metrics over", ("window", "snapshot"), horizontal=True, key="eval_on",
              help="Windows: the papers' protocol. Snapshots: the mean of each snapshot's "
                   "windows, as a monitoring system would report.")

if not chosen or not run_names:
    st.info("Pick at least one model and one bearing.")
    st.stop()

results: dict[tuple, object] = st.session_state.setdefault("eval_results", {})
runs = [dataset.run(n) for n in run_names]
key_runs = tuple(app_ui.run_key(r)[:16] for r in runs)
# by the model's identity, not its label: a bundle loaded again under a label is another model
keys = {m: (app_ui.model_key(m, models[m]), key_runs, on) for m in chosen}
todo = [m for m in chosen if keys[m] not in results]
if todo:
    bar = st.progress(0.0, text="Evaluating…")
    for i, label in enumerate(todo):
        def progress(ev, i=i, label=label):
            bar.progress(min(1.0, (i + ev.fraction) / len(todo)), text=f"{label}: {ev.message}")

        res = app_ui.guarded(evaluation.evaluate, models[label], runs, on=on, progress=progress,
                             context=f"evaluate {label}")
        if res is not None:
            results[keys[label]] = res
    bar.empty()

current = {m: results[keys[m]] for m in chosen if keys[m] in results}
if not current:
    st.stop()

# ----------------------------------------------------------------------------- RUL over life
st.subheader("RUL over life")
app_ui.keep_valid("eval_run_pick", run_names)
run_pick = st.selectbox("Bearing", run_names, key="eval_run_pick")
curves = [views.rul_curve(res.snapshots, run_pick, label) for label, res in current.items()]
seen = bool(next(iter(current.values())).snapshots.query("run == @run_pick")["seen"].iloc[0])
fig = plots.rul_figure(curves, f"{run_pick}: predicted vs true RUL "
                               f"({'seen' if seen else 'unseen'} condition)")
app_ui.show_figure(fig, f"rul-{run_pick}", PAGE,
                   caption=f"Band: {int(100 * next(iter(current.values())).level)} % interval.")
st.download_button(
    f"Download the predictions (CSV: {len(current)} model{'s' if len(current) > 1 else ''} × "
    f"{len(run_names)} bearing{'s' if len(run_names) > 1 else ''}, every snapshot)",
    evaluation.predictions_frame(current).to_csv(index=False),
    file_name="rul_predictions.csv", mime="text/csv", key="eval_download",
    help="True and predicted normalised RUL with the interval at every snapshot of every "
         "bearing evaluated above (`python -m rul_core evaluate --predictions FILE` writes "
         "the same).")

# ----------------------------------------------------------------------------- time left
st.subheader("Remaining time to failure")
app_ui.keep_valid("eval_time_model", list(current))
time_label = st.selectbox("Model", list(current), key="eval_time_model")
times = app_ui.guarded(views.remaining_time_curves, models[time_label],
                       current[time_label].snapshots.query("run == @run_pick"),
                       context="time left")
if times is not None:
    upto = len(times)
    if len(times) > 1:
        app_ui.clamp_state("eval_time_upto", len(times))  # a shorter bearing since
        upto = st.slider("Snapshots recorded so far", 1, len(times), len(times),
                         key="eval_time_upto",
                         help="The estimate at a snapshot uses only that snapshot and the ones "
                              "before: what a monitoring system would have said then.")
    now = times.iloc[upto - 1]
    c1, c2, c3 = st.columns(3)
    c1.metric("Running for", f"{now['time_min']:.1f} min")
    c2.metric("Estimated time left", f"{now['rul_min']:.1f} min",
              help=f"Band {now['lower_min']:.1f}–{now['upper_min']:.1f} min. The normalised RUL "
                   f"is turned into time by inverting the model's label scheme "
                   f"({models[time_label].label_scheme}).")
    c3.metric("Actual time left", f"{now['actual_min']:.1f} min",
              help="Assumes the recording runs to failure (true for the learning sets).")
    shown = times.iloc[:upto]
    fig = plots.rul_figure(
        [{"x": shown["time_min"], "pred": shown["rul_min"], "lower": shown["lower_min"],
          "upper": shown["upper_min"], "true": shown["actual_min"], "name": time_label}],
        f"{run_pick}: estimated vs actual time left", x_title="running time (min)",
        y_title="time left (min)", true_name="actual time left",
    )
    app_ui.show_figure(fig, f"time-left-{run_pick}", PAGE)

# ----------------------------------------------------------------------------- PHM 2012
st.subheader("PHM 2012 challenge protocol")
app_ui.keep_valid("eval_phm_model", list(current))
phm_label = st.selectbox("Model", list(current), key="eval_phm_model")
challenge = app_ui.guarded(phm2012.protocol_tables, models[phm_label], runs,
                           current[phm_label].snapshots, context="PHM 2012 protocol")
if challenge is not None:
    scored, replayed = challenge["scored"], challenge["replayed"]
    if len(scored):
        score = float(scored["accuracy"].mean())
        st.metric(f"Challenge score ({len(scored)} of 11 test bearings)", f"{score:.4f}",
                  delta=f"{score - challenge['winner']:+.4f} against the 2012 winner "
                        f"({challenge['winner']})",
                  help="Mean accuracy A of the time left estimated after each truncated test "
                       "bearing's last snapshot, against the published actual RULs.")
        app_ui.show_table(scored.round(4), f"phm2012-{phm_label}",
                          f"PHM 2012 test bearings: {phm_label}", PAGE)
    if len(replayed):
        c1, c2 = st.columns(2)
        c1.metric("Proxy at the challenge's cuts", f"{replayed['proxy'].mean():.4f}",
                  help="Each bearing cut where each of the eleven test bearings was cut (as a "
                       "fraction of its life); mean accuracy A of the time left estimated there.")
        c2.metric("Grid proxy (cuts at 50–98 % of life)", f"{replayed['grid_proxy'].mean():.4f}",
                  help="The same at 13 evenly spaced cuts: uses nothing from the challenge's "
                       "answers, so choose settings on this one.")
        app_ui.show_table(replayed.round(4), f"phm2012-replay-{phm_label}",
                          f"PHM 2012 replay on bearings recorded to failure: {phm_label}", PAGE)
    for note in challenge["notes"]:
        st.caption(note)
    st.caption("Time left after a snapshot: the median total life implied by the last 5 "
               "snapshots minus the time elapsed; A halves at 5 % late and at 20 % early. "
               "Bearings not named like a challenge test bearing are assumed recorded up to "
               "failure. For a cautious band quantile, use `python -m rul_core phm2012 "
               "--quantile q`.")

# ----------------------------------------------------------------------------- tables
over = f"over {on}s"  # what every metric below averages
st.subheader(f"Metrics per bearing × condition ({over})")
cols = ["run", "condition", "seen", "n", "rmse", "mae", "score", "alpha_lambda", "picp", "piaw",
        "ais"]
for label, res in current.items():
    table = res.table[[c for c in cols if c in res.table.columns]]
    app_ui.show_table(table, f"table-{label}",
                      f"Metrics per bearing × condition ({over}): {label}", PAGE)
    app_ui.show_table(res.seen_unseen, f"seen-{label}",
                      f"Seen vs unseen conditions ({over}): {label}", PAGE)

if len(current) > 1:
    st.subheader("Comparison")
    summary = pd.DataFrame({label: res.summary() for label, res in current.items()}).T
    app_ui.show_table(summary, "compare", f"Model comparison (all evaluated {on}s)", PAGE)
    side_metric = st.selectbox(
        "Side-by-side metric", list(evaluation.LOWER_IS_BETTER), key="eval_side_metric",
        format_func=evaluation.METRIC_NAMES.get,
        help="One metric per table, one column per model, as in the papers' ablation "
             "tables; 'best' names the best model of each row (ties joined by =).")
    side = evaluation.ablation_table(current, metrics=(side_metric,), flat=True, best=True)
    app_ui.show_table(side.round(4), "ablation",
                      f"{evaluation.METRIC_NAMES[side_metric]} of the models side by side per "
                      f"bearing × condition ({over}; the papers' ablation tables)", PAGE)
st.caption("Score: CARLE eq. 16 on the normalised RUL in percent of life; RMSE/MAE on the "
           "normalised RUL.")
