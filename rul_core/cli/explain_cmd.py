"""``python -m rul_core explain``: LRP, LIME and SHAP for one window of a run, side by side.

Writes into ``--out``: one ``.npz`` (attributions) and one ``.png`` (figure) per method, named
after it (``lrp.npz``/``lrp.png``, ``lime.*``, ``shap.*``), plus ``compare.json`` with the
normalised attributions, modality shares, rank agreement, faithfulness AUCs and seconds.
The background for LIME/SHAP (and the TF baseline of the faithfulness curves) is the other
windows of ``--background`` (a dataset path; default: the explained run itself).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from rul_core.atomic import atomic_dir, check_replaceable
from rul_core.cli.model_cmds import _common, _layout, _load, _progress, _workspace
from rul_core.errors import RulError
from rul_core.progress import ProgressFn, emit


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``explain`` subcommand."""
    p = sub.add_parser("explain", help="LRP/LIME/SHAP attributions of one window, compared")
    p.add_argument("--model", required=True, help="model bundle directory")
    p.add_argument("--run", required=True, help="dataset path (folder/archive) with the run")
    p.add_argument("--run-name", default=None, help="which run of the dataset (default: first)")
    p.add_argument("--window", type=int, default=0, help="window index in the run (default 0)")
    p.add_argument("--methods", default="lrp,lime,shap",
                   help="comma list of lrp,lime,shap (default: all three)")
    p.add_argument("--rules", choices=("paper", "conservative", "epsilon"), default=None,
                   help="LRP rules (default: epsilon, biases in the denominators, the set "
                        "whose rankings tracked Multimodal-RUL and CARLE in bench/explain.py; "
                        "conservative for RC-LSTM, where it tracked best; paper: the "
                        "multimodal paper's rules as printed)")
    p.add_argument("--out", required=True,
                   help="output folder: new, empty or an earlier explain output (replaced)")
    p.add_argument("--background", default=None, help="dataset path for background windows")
    p.add_argument("--n-bands", type=int, default=25,
                   help="features compared: ImR column bands, or RC-LSTM signal segments "
                        "(default 25)")
    p.add_argument("--lime-samples", type=int, default=1000,
                   help="LIME perturbations (default 1000)")
    p.add_argument("--shap-samples", type=int, default=200,
                   help="SHAP GradientExplainer samples for the window (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of LIME and SHAP sampling (default 0)")
    _layout(p)
    _common(p)
    p.set_defaults(func=run_explain)


def _explain_file(name: str) -> bool:
    """True for the names explain writes (``compare.json``, ``<method>.npz``/``.png``)."""
    from rul_core.explain.compare import METHODS

    stem, _, suffix = name.rpartition(".")
    return name == "compare.json" or (stem in METHODS and suffix in ("npz", "png"))


def _load_run(path: str, name: str | None, args: argparse.Namespace, ws: Any,
              progress: ProgressFn | None = None) -> Any:
    """Run ``name`` (default: the first) of the dataset at ``path``, parsed through the
    workspace's cache like the other model commands."""
    ds = _load(path, args.layout, ws, progress)
    if not ds.runs:
        raise RulError(f"{path}: expected at least one run, found none")
    if name is None:
        return ds.runs[0]
    try:
        return ds.run(name)
    except KeyError as exc:
        raise RulError(f"{path}: {exc.args[0]}") from None


def _prepared_inputs(trained: Any, run: Any, progress: ProgressFn | None = None
                     ) -> list[np.ndarray]:
    from rul_core.training import prepare_run

    return prepare_run(trained.config, run, trained.normaliser, trained.pipeline_config,
                       progress=progress,
                       snapshot_every=trained.snapshot_every).inputs  # as the model was trained


def _figure(path: Path, method: str, cmp: Any, maps: dict[str, np.ndarray],
            signal: Any = None) -> None:
    """Per-method PNG: the image map (if any) or the signal sequence under its segment
    attributions (RC-LSTM), then the per-feature bar chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_top = "image" in maps or signal is not None
    fig, axes = plt.subplots(1 + has_top, 1, figsize=(10, 3.2 * (1 + has_top)))
    axes = np.atleast_1d(axes)
    if "image" in maps:
        img = np.asarray(maps["image"])[0, ..., 0]
        lim = float(np.abs(img).max()) or 1.0
        im = axes[0].imshow(img, origin="lower", aspect="auto", cmap="bwr", vmin=-lim, vmax=lim)
        axes[0].set_title(f"{method}: ImR attribution")
        fig.colorbar(im, ax=axes[0])
    elif signal is not None:
        _signal_axes(fig, axes[0], method, signal)
    v = cmp.normalised[method]
    ax = axes[-1]
    colours = {"tf": "tab:blue", "image": "tab:gray", "signal": "tab:purple"}
    ax.bar(range(len(v)), v, color=[colours.get(m, "tab:gray") for m in cmp.modality])
    ax.set_xticks(range(len(v)))
    ax.set_xticklabels(cmp.feature_names, rotation=90, fontsize=6)
    shown = {"tf": "TF features blue", "image": "image bands grey",
             "signal": "signal segments purple, oldest first"}
    legend = ", ".join(shown[m] for m in dict.fromkeys(cmp.modality) if m in shown)
    ax.set_title(f"{method}: normalised attribution ({legend})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _signal_axes(fig: Any, ax: Any, method: str, signal: Any) -> None:
    """The input sequence (each channel a line) over its segments coloured by attribution."""
    from matplotlib import cm, colors

    values = signal.segment_maps[method]
    lim = float(np.abs(values).max()) or 1.0
    norm = colors.Normalize(-lim, lim)
    for k, value in enumerate(values):
        ax.axvspan(signal.edges[k], signal.edges[k + 1], color=cm.bwr(norm(value)), lw=0)
    for c in range(signal.samples.shape[1]):
        ax.plot(signal.samples[:, c], lw=0.5, color="black" if c == 0 else "tab:orange")
    step = signal.samples.shape[0] / signal.steps
    for k in range(1, signal.steps):
        ax.axvline(k * step, ls=":", lw=0.8, color="grey")
    ax.set_xlim(0, signal.samples.shape[0])
    ax.set_title(f"{method}: attribution over the input sequence ({signal.steps} windows, "
                 "oldest first)")
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap="bwr"), ax=ax)


def _method_maps(method: str, detail: Any) -> dict[str, np.ndarray]:
    """Arrays to store in ``<method>.npz``."""
    if method == "lrp":
        out = {f"relevance_{k}": v for k, v in detail.relevance.items()}
        out["prediction"] = detail.prediction
        out["layer_names"] = np.array([r.name for r in detail.layers])
        out["layer_relevance_in"] = np.array([float(np.mean(r.relevance_in))
                                              for r in detail.layers])
        out["layer_relevance_out"] = np.array([float(np.mean(r.relevance_out))
                                               for r in detail.layers])
        return out
    if method == "lime":
        out = {}
        for k, res in detail.items():
            out[f"weights_{k}"] = res.weights
            out[f"mean_{k}"] = res.mean
            out[f"std_{k}"] = res.std
        return out
    out = {f"shap_{k}": v for k, v in detail.values.items()}
    out["expected_value"] = np.array(detail.expected_value)
    out["additivity_gap"] = detail.additivity_gap
    return out


def _image_map(method: str, detail: Any, cmp: Any) -> dict[str, np.ndarray]:
    if method == "lrp" and "image" in detail.relevance:
        return {"image": detail.relevance["image"]}
    if method == "shap" and "image" in detail.values:
        return {"image": detail.values["image"]}
    if method == "lime" and "image" in detail:
        return {}
    return {}


def run_explain(args: argparse.Namespace) -> int:
    """Explain window ``--window`` of the run with the chosen methods; write files to --out."""
    from rul_core.bundle import load_bundle
    from rul_core.explain.compare import (
        METHODS,
        CompareSettings,
        compare_window,
        default_rules,
    )
    from rul_core.views import model_signal_view

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise RulError(f"--methods: expected a comma list of {list(METHODS)}, found {bad}")
    out = check_replaceable(args.out, _explain_file, "explain output")
    trained = load_bundle(args.model)
    model = trained.models[0]
    ws = _workspace(args)
    bar = _progress(args)
    try:
        run = _load_run(args.run, args.run_name, args, ws, bar)
        inputs = _prepared_inputs(trained, run, bar)
        n = inputs[0].shape[0]
        if not 0 <= args.window < n:
            raise RulError(f"--window: expected 0..{n - 1} for run '{run.name}', found "
                           f"{args.window}")
        background = inputs
        if args.background:
            background = _prepared_inputs(trained, _load_run(args.background, None, args, ws,
                                                             bar), bar)
        rules = args.rules or default_rules(trained.config.name)
        settings = CompareSettings(methods=methods, rules=rules, n_bands=args.n_bands,
                                   lime_samples=args.lime_samples,
                                   shap_samples=args.shap_samples, seed=args.seed)
        emit(bar, "compare", 0, len(methods) + 1)  # the bar shows before the first method
        cmp = compare_window(model, inputs, args.window, background, settings, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    signal = model_signal_view(cmp, model, inputs, args.window)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out) as tmp:
        for m in methods:
            detail = cmp.details[m]
            np.savez(tmp / f"{m}.npz", normalised=cmp.normalised[m],
                     features=np.array(cmp.feature_names), **_method_maps(m, detail))
            _figure(tmp / f"{m}.png", m, cmp, _image_map(m, detail, cmp), signal)
        summary = cmp.to_json()
        summary.update({"model": str(args.model), "run": run.name, "rules": rules})
        (tmp / "compare.json").write_text(json.dumps(summary, indent=2))
    faith = cmp.faithfulness_frame()
    print(faith.to_string(index=False))
    if note := cmp.faithfulness_note():
        print(note)
    print(f"wrote {', '.join(f'{m}.npz/{m}.png' for m in methods)}, compare.json to {out}")
    return 0
