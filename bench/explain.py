"""Explanation benchmark: LRP speed on the paper-size multimodal model, and the faithfulness
of LRP, LIME and SHAP on a trained quick multimodal model over real FEMTO windows.

Usage::

    python bench/explain.py [--model BUNDLE] [--windows 8] [--epochs 4] [--threads 2]

Without ``--model`` a quick multimodal model is trained for a few epochs on a subsample of
FEMTO Bearing1_1 (every 8th snapshot) and explained on windows of Bearing1_2 (read-only from
/work/shared/data/real/femto_npz). Prints tables; returns 1 if the 2 s LRP budget is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

FEMTO = Path("/work/shared/data/real/femto_npz")
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
    from rul_core.explain.lrp import explain_lrp
    from rul_core.models import ModelConfig, build_model

    model = build_model(ModelConfig("multimodal", preset="paper"))
    rng = np.random.default_rng(0)
    x = [rng.integers(0, 3, (1, 64, 500, 1)).astype(np.float32) / 2,
         rng.random((1, 7, 1), dtype=np.float32)]
    out = {}
    for rules in ("paper", "conservative"):
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


def trained_model(bundle: str | None, epochs: int):
    """(keras model, pipeline stuff) from a bundle, or trained here on FEMTO Bearing1_1."""
    if bundle:
        from rul_core.bundle import load_bundle

        return load_bundle(bundle)
    from rul_core.models import ModelConfig
    from rul_core.training import train

    config = ModelConfig("multimodal", preset="quick", seed=0)
    t0 = time.perf_counter()
    trained = train(config, [femto_run("Bearing1_1", 8), femto_run("Bearing2_1", 8)],
                    epochs=epochs, label_scheme="piecewise")
    print(f"trained quick multimodal for {epochs} epochs in {time.perf_counter() - t0:.1f} s; "
          f"metrics {trained.metrics}")
    return trained


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None)
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lime-samples", type=int, default=500)
    ap.add_argument("--skip-faithfulness", action="store_true")
    args = ap.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    speed = bench_lrp_speed()
    print(f"\nLRP, paper-size multimodal (64x500 image + 7 TF), 1 window, {args.threads} threads:")
    for k, v in speed.items():
        print(f"  {k:28s} {v:.3f}")
    ok = speed["paper_s"] < 2.0 and speed["conservative_s"] < 2.0
    print(f"  budget 2 s: {'met' if ok else 'MISSED'}")
    if args.skip_faithfulness:
        return 0 if ok else 1

    from rul_core.explain.compare import CompareSettings, compare_windows
    from rul_core.training import prepare_run

    trained = trained_model(args.model, args.epochs)
    model = trained.models[0]
    bg = prepare_run(trained.config, femto_run("Bearing1_1", 8), trained.normaliser,
                     trained.pipeline_config).inputs
    test = prepare_run(trained.config, femto_run("Bearing1_2", 8), trained.normaliser,
                       trained.pipeline_config).inputs
    n = test[0].shape[0]
    idx = np.linspace(0, n - 1, args.windows).round().astype(int)
    settings = CompareSettings(lime_samples=args.lime_samples, shap_samples=100,
                               shap_background=30, n_random=10)
    t0 = time.perf_counter()
    res = compare_windows(model, test, idx, bg, settings)
    print(f"\nFaithfulness over {len(idx)} windows of FEMTO Bearing1_2 "
          f"({time.perf_counter() - t0:.1f} s); 25 image bands + 7 TF features; "
          "deletion AUC lower = better, insertion higher = better:")
    print(res.faithfulness_frame().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nRank agreement (mean over windows):")
    print(res.agreement_frame().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nModality share of |attribution| (mean over windows):")
    import pandas as pd

    mods = pd.concat([w.modality_frame() for w in res.windows])
    print(mods.groupby(["method", "modality"])["abs_share"].mean().unstack().to_string(
        float_format=lambda v: f"{v:.3f}"))
    print(f"\nmost faithful (largest insertion - deletion AUC): {res.most_faithful()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
