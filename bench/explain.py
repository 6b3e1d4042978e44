"""Explanation benchmark: LRP speed on the paper-size multimodal model, and the faithfulness
of LRP, LIME and SHAP on a trained quick model (multimodal, CARLE or RC-LSTM) over real FEMTO
windows.

Usage::

    python bench/explain.py [--model BUNDLE | --model-name {multimodal,carle,rc_lstm}]
        [--seed 0] [--methods lrp,lime,shap] [--windows 8] [--epochs 4] [--threads 2]
        [--figure docs/explain_side_by_side.png] [--save-model DIR]

Without ``--model`` a quick ``--model-name`` model (default multimodal) is trained for a few
epochs on a subsample of FEMTO Bearing1_1 and Bearing2_1 (every 8th snapshot) and explained
on windows of Bearing1_2 (read-only from ../shared/data/real/femto_npz); ``--save-model``
keeps that bundle for ``--model``. The comparison uses the model's default LRP rules
(``compare.default_rules``). Prints tables (the faithfulness over the windows that have
areas; then LRP alone under the other rule sets on the same windows); returns 1 if the 2 s
LRP budget is missed.

``--figure`` (models with an ImR input) also explains one late-life window of Bearing1_2
(the last fifth of its windows, the one with the lowest predicted RUL) and writes one
side-by-side PNG: the LRP | LIME | SHAP ImR maps on one colour scale, the TF-feature
attributions of the three methods and the deletion curves with the random baseline
(``--figure ''`` skips it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

FEMTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "femto_npz"
COND = {"1": (1800.0, 4000.0), "2": (1650.0, 4200.0), "3": (1500.0, 5000.0)}


def femto_run(name: str, every: int):
    """A FEMTO learning-set bearing as a Run (g units), every ``every``-th snapshot."""
    from rul_core.data.run import Condition, Run

    with np.load(FEMTO / f"Learning_set__{name}.npz", allow_pickle=False) as d:
        acc = d["acc"][::every].astype(np.float32) / 1000.0
    rpm, load = COND[name[7]]
    return Run(name=name, snapshots=acc, fs=25600.0, channel_names=["horizontal", "vertical"],
               condition=Condition(rpm, load, f"condition {name[7]}"), dataset="femto")


def bench_lrp_speed(repeats: int = 3) -> dict[str, float]:
    """Seconds per single-window LRP explanation of the paper-size multimodal model."""
    from rul_core.explain.lrp import OFFERED_RULES, explain_lrp
    from rul_core.models import ModelConfig, build_model

    model = build_model(ModelConfig("multimodal", preset="paper"))
    rng = np.random.default_rng(0)
    x = [rng.integers(0, 3, (1, 64, 500, 1)).astype(np.float32) / 2,
         rng.random((1, 7, 1), dtype=np.float32)]
    out = {}
    for rules in OFFERED_RULES:
        t0 = time.perf_counter()
        explain_lrp(model, x, rules=rules)
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            exp = explain_lrp(model, x, rules=rules)
            times.append(time.perf_counter() - t0)
        out[f"{rules}_first_s"] = first
        out[f"{rules}_s"] = float(np.median(times))
        out[f"{rules}_conservation"] = float(exp.conservation()[0])
    return out


def trained_model(bundle: str | None, epochs: int, model_name: str = "multimodal",
                  seed: int = 0):
    """A TrainedModel from a bundle, or a quick ``model_name`` trained here (seeded) on FEMTO
    Bearing1_1 and Bearing2_1."""
    if bundle:
        from rul_core.bundle import load_bundle

        return load_bundle(bundle)
    from rul_core.models import ModelConfig
    from rul_core.training import train

    config = ModelConfig(model_name, preset="quick", seed=seed)
    t0 = time.perf_counter()
    trained = train(config, [femto_run("Bearing1_1", 8), femto_run("Bearing2_1", 8)],
                    epochs=epochs, label_scheme="piecewise")
    print(f"trained quick {model_name} (seed {seed}) for {epochs} epochs in "
          f"{time.perf_counter() - t0:.1f} s; metrics {trained.metrics}")
    return trained


def feature_counts(modality: list[str]) -> str:
    """'25 image + 7 tf' from a comparison's per-feature modality list."""
    names, counts = np.unique(np.asarray(modality), return_counts=True)
    return " + ".join(f"{c} {n}" for n, c in zip(names, counts, strict=True))


def late_low_window(model, inputs: list[np.ndarray], snapshot_index: np.ndarray,
                    last_fraction: float = 0.2) -> tuple[int, np.ndarray]:
    """Index of the window with the lowest prediction among the last ``last_fraction`` of the
    run's snapshots, and the predictions of all windows."""
    from rul_core.explain.common import predict

    preds = np.asarray(predict(model, inputs), dtype=float).reshape(-1)
    snap = np.asarray(snapshot_index)
    late = np.flatnonzero(snap >= snap.min() + (1.0 - last_fraction) * np.ptp(snap))
    return int(late[np.argmin(preds[late])]), preds


def side_by_side_figure(comp, image: np.ndarray, title: str,
                        tf_channels: list[int] | None = None):
    """One figure: ImR maps (row 1), TF-feature bars and deletion curves (row 2), composed
    from the rul_core.plots builders used by the Explain page."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from rul_core import plots
    from rul_core.explain.common import readable_feature_names
    from rul_core.views import image_maps

    maps = plots.normalise_attributions(image_maps(comp, image), quantile=0.98)
    overlay = plots.attribution_overlay_figure(image, maps)
    frame = comp.attribution_frame()
    tf_sel = (frame["modality"] == "tf").to_numpy()
    bars = plots.feature_attribution_figure(
        {m: frame[m].to_numpy()[tf_sel] for m in comp.normalised},
        readable_feature_names(frame["feature"][tf_sel].tolist(), tf_channels,
                               ["horizontal", "vertical"]),
        errors={m: np.asarray(v)[tf_sel] for m, v in comp.spread.items()} or None)
    faith = comp.faithfulness_frame()
    aucs = dict(zip(faith["method"], faith["deletion_auc"], strict=True))
    deletion = plots.deletion_curves_figure(
        {m: (np.linspace(0, 1, len(c["deletion_pred"])), c["deletion_pred"])
         for m, c in comp.curves.items()}, aucs, prediction=comp.prediction,
        baseline=comp.baseline_prediction)

    names = list(maps)
    fig = make_subplots(
        rows=2, cols=6, specs=[[{"colspan": 2}, None, {"colspan": 2}, None, {"colspan": 2}, None],
                               [{"colspan": 3}, None, None, {"colspan": 3}, None, None]],
        row_heights=[0.5, 0.5], vertical_spacing=0.16, horizontal_spacing=0.05,
        subplot_titles=[f"{n.upper()}: ImR attribution" for n in names]
        + ["TF-feature attributions (share of |attribution|; LIME: ± spread over seeds)",
           "Deletion curves: prediction, most relevant removed first (AUC lower = better)"])
    for tr in overlay.data:
        col = 1 + 2 * (int((tr.xaxis or "x")[1:] or 1) - 1)
        if isinstance(tr, go.Heatmap) and tr.showscale:
            tr.update(colorbar={"len": 0.4, "y": 0.8, "thickness": 12,
                                "title": {"text": "scaled"}})
        fig.add_trace(tr, row=1, col=col)
    for tr in bars.data:
        fig.add_trace(tr.update(legend="legend"), row=2, col=1)
    for tr in deletion.data:
        fig.add_trace(tr.update(legend="legend2"), row=2, col=4)
    plots.add_reference_lines(fig, comp.prediction, comp.baseline_prediction, row=2, col=4)
    lit = np.flatnonzero(np.asarray(image).max(axis=1) > 0)
    rows = [lit.max() + 3.5, lit.min() - 3.5] if lit.size else [63.5, -0.5]
    for c in (1, 3, 5):  # zoomed to the rows the raster occupies, top level on top
        fig.update_yaxes(range=rows, autorange=False, row=1, col=c,
                         title_text="amplitude row" if c == 1 else None)
        fig.update_xaxes(title_text="column", row=1, col=c)
    fig.update_layout(barmode="group", template="plotly_white", width=1400, height=820,
                      title={"text": title, "x": 0.01, "font": {"size": 15}},
                      margin={"l": 60, "r": 30, "t": 90, "b": 50},
                      legend={"orientation": "h", "x": 0.0, "y": -0.08},
                      legend2={"orientation": "h", "x": 0.53, "y": -0.08})
    fig.update_yaxes(title_text="normalised attribution", row=2, col=1)
    fig.update_xaxes(title_text="fraction of features removed", row=2, col=4)
    fig.update_yaxes(title_text="prediction (normalised RUL)", row=2, col=4)
    return fig


def write_figure(path: str, model, trained, test, background, settings) -> None:
    """Explain the late-life low-prediction window of Bearing1_2 and write the PNG."""
    from rul_core import report
    from rul_core.atomic import write_bytes
    from rul_core.explain.common import input_names
    from rul_core.explain.compare import compare_window

    idx, preds = late_low_window(model, test.inputs, test.snapshot_index)
    snap = int(test.snapshot_index[idx])
    n_snap = int(test.snapshot_index.max()) + 1
    true = float(test.labels[idx]) if test.labels is not None else float("nan")
    t0 = time.perf_counter()
    comp = compare_window(model, test.inputs, idx, background, settings)
    print(f"\nFigure window: Bearing1_2 window {idx} of {len(preds)} (snapshot {snap} of "
          f"{n_snap} in the every-8th subsample, original snapshot {snap * 8}); prediction "
          f"{comp.prediction:.3f}, baseline input {comp.baseline_prediction:.3f}, "
          f"{trained.label_scheme} label {true:.3f}; explained in "
          f"{time.perf_counter() - t0:.1f} s:")
    print(comp.faithfulness_frame().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(comp.modality_frame().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    image = np.asarray(test.inputs[input_names(model).index("image")][idx, :, :, 0],
                       dtype=np.float32)
    title = (f"LRP ({settings.rules} rules) vs LIME vs SHAP, quick multimodal model, FEMTO "
             f"Bearing1_2 late-life window "
             f"{idx} (orig. snapshot {snap * 8}/{n_snap * 8}): predicted RUL "
             f"{comp.prediction:.2f}, label {true:.2f}<br><sup>ImR maps: each scaled to its "
             "98th-percentile |value| = 1, one colour scale (red raises, blue lowers the "
             "prediction); grey: raster outline</sup>")
    fig = side_by_side_figure(comp, image, title, trained.config.resolved().get("tf_channels"))
    data, engine = report.export_figure(fig, "png")
    out = write_bytes(path, data)
    print(f"figure: {out} ({len(data) / 1024:.0f} KiB, {engine})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None, metavar="BUNDLE",
                    help="explain this bundle instead of training a quick model")
    ap.add_argument("--model-name", default="multimodal",
                    choices=("multimodal", "carle", "rc_lstm"),
                    help="the quick model trained without --model")
    ap.add_argument("--seed", type=int, default=0, help="training seed without --model")
    ap.add_argument("--methods", default="lrp,lime,shap",
                    help="comma-separated methods compared (LRP always runs every rule set)")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lime-samples", type=int, default=500)
    ap.add_argument("--skip-faithfulness", action="store_true")
    ap.add_argument("--figure", default="docs/explain_side_by_side.png",
                    help="side-by-side PNG of one late-life window ('' to skip)")
    ap.add_argument("--save-model", default=None, metavar="DIR",
                    help="save the trained quick bundle here (reuse with --model)")
    args = ap.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    speed = bench_lrp_speed()
    print(f"\nLRP, paper-size multimodal (64x500 image + 7 TF), 1 window, {args.threads} threads:")
    for k, v in speed.items():
        print(f"  {k:28s} {v:.3f}")
    ok = all(v < 2.0 for k, v in speed.items() if k.endswith("_s") and "first" not in k)
    print(f"  budget 2 s: {'met' if ok else 'MISSED'}")
    if args.skip_faithfulness:
        return 0 if ok else 1

    from dataclasses import replace

    from rul_core.explain.compare import CompareSettings, compare_windows
    from rul_core.training import prepare_run

    trained = trained_model(args.model, args.epochs, args.model_name, args.seed)
    if args.save_model and not args.model:
        from rul_core.bundle import save_bundle

        print(f"saved the quick bundle to {save_bundle(trained, args.save_model)}")
    model = trained.models[0]
    bg = prepare_run(trained.config, femto_run("Bearing1_1", 8), trained.normaliser,
                     trained.pipeline_config).inputs
    test_run = prepare_run(trained.config, femto_run("Bearing1_2", 8), trained.normaliser,
                           trained.pipeline_config, label_scheme=trained.label_scheme,
                           label_params=trained.label_params)
    test = test_run.inputs
    n = test[0].shape[0]
    idx = np.linspace(0, n - 1, args.windows).round().astype(int)
    from rul_core.explain.compare import METHODS, default_rules

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        ap.error(f"--methods: unknown {unknown}; expected some of {list(METHODS)}")
    settings = CompareSettings(methods=methods, rules=default_rules(trained.config.name),
                               lime_samples=args.lime_samples, shap_samples=100,
                               shap_background=30, n_random=10)
    print(f"\nmodel: {trained.config.name} ({trained.config.preset}); comparison with the "
          f"{settings.rules} LRP rules (the default for this model)")
    t0 = time.perf_counter()
    res = compare_windows(model, test, idx, bg, settings)
    features = feature_counts(res.windows[0].modality)
    print(f"\nFaithfulness over {len(idx)} windows of FEMTO Bearing1_2 "
          f"({time.perf_counter() - t0:.1f} s); features: {features}; "
          "deletion AUC lower = better, insertion higher = better:")
    print(res.faithfulness_frame().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nRank agreement (mean over windows):")
    print(res.agreement_frame().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nModality share of |attribution| (mean over windows):")
    import pandas as pd

    mods = pd.concat([w.modality_frame() for w in res.windows])
    print(mods.groupby(["method", "modality"])["abs_share"].mean().unstack().to_string(
        float_format=lambda v: f"{v:.3f}"))
    from rul_core.explain.common import input_names
    from rul_core.explain.lrp import OFFERED_RULES

    lrp_rules = [r for r in OFFERED_RULES if r != settings.rules]
    for rules in lrp_rules:  # the other LRP rule sets on the same windows (LRP is cheap)
        other = compare_windows(model, test, idx, bg, replace(settings, methods=("lrp",),
                                                               rules=rules))
        print(f"\nLRP with the {rules} rules on the same windows:")
        print(other.faithfulness_frame().to_string(index=False,
                                                   float_format=lambda v: f"{v:.3f}"))
    print(f"\nmost faithful (largest insertion - deletion AUC, over the {res.n_conditioned} of "
          f"{len(res.windows)} windows whose prediction moves >= {settings.min_contrast:g} when "
          f"every feature is removed): {res.most_faithful()}")
    if args.figure and "image" in input_names(model):  # the figure shows ImR maps
        write_figure(args.figure, model, trained, test_run, bg, settings)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
