"""How much do the TF features say about the time left? Simple regressors, same protocol.

Leave-one-bearing-out over the six FEMTO learning bearings, like ``bench/phm2012.py``, but with
scikit-learn regressors on the per-snapshot mean of the 14 TF features (the CARLE input,
baseline-standardised per run as in training), optionally plus two health indicators (log RMS
over the first 10 snapshots, its running maximum) and the running time. Scores: the PHM 2012
proxy at the challenge's cuts and at an answer-free grid of cuts
(:func:`rul_core.phm2012.truncation_proxy`), and RMSE of the normalised label. If these cannot
beat the constant prediction, the networks' inputs do not hold the answer either. Runs in a
minute on 2 CPU cores.

    python bench/phm2012_baselines.py --stride 3 --caps 3000 6000 12000
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from phm2012 import BEARINGS, SNAPSHOT_S, load_femto_npz, machine_line, markdown

from rul_core import labels as lb
from rul_core import phm2012 as ph


def snapshot_features(stride: int, health: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per bearing: (snapshot features, snapshot times)."""
    from rul_core.models import ModelConfig
    from rul_core.signal import pipeline as pl
    from rul_core.training import default_pipeline_config

    runs = {b: load_femto_npz(b, stride=stride) for b in BEARINGS}
    pc = default_pipeline_config(ModelConfig("carle"))
    norm = pl.fit_normaliser(list(runs.values()), pc)
    out = {}
    for b, run in runs.items():
        w = pl.extract_windows(run, norm, pc)
        tf = np.asarray(w.tf, dtype=np.float64).reshape(len(w), -1)
        snap = np.asarray(w.snapshot_index)
        x = np.stack([tf[snap == j].mean(axis=0) for j in range(run.n_snapshots)])
        if health:
            rms = np.sqrt((run.snapshots.astype(np.float64) ** 2).mean(axis=1))
            log_ratio = np.log(rms / rms[:10].mean(axis=0))
            smooth = pd.DataFrame(log_ratio).rolling(5, min_periods=1).mean().to_numpy()
            age_h = np.asarray(run.timestamps)[:, None] / 3600.0
            x = np.hstack([x, log_ratio, np.maximum.accumulate(smooth, axis=0), age_h])
        out[b] = (x, np.asarray(run.timestamps, dtype=np.float64))
    return out


def regressors() -> dict[str, object]:
    """Name -> factory (None = constant training-label mean)."""
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import Ridge

    return {
        "constant": None,
        "ridge": lambda: Ridge(alpha=1.0),
        "random forest (200, leaf 20)": lambda: RandomForestRegressor(
            200, min_samples_leaf=20, max_features=0.5, n_jobs=2, random_state=0),
        "gradient boosting": lambda: HistGradientBoostingRegressor(
            max_iter=200, min_samples_leaf=40, random_state=0),
    }


def lobo_rows(feats: dict, scheme: str, params: dict, tag: str) -> list[dict]:
    """One row per regressor: mean proxies and RMSE over the six held-out bearings."""
    data = {b: (x, lb.label_run(len(x), scheme, **params), t) for b, (x, t) in feats.items()}
    rows = []
    for name, make in regressors().items():
        ch, grid, err = [], [], []
        for held in BEARINGS:
            xtr = np.concatenate([data[b][0] for b in BEARINGS if b != held])
            ytr = np.concatenate([data[b][1] for b in BEARINGS if b != held])
            x, y, t = data[held]
            pred = np.full(len(y), ytr.mean()) if make is None else make().fit(xtr, ytr).predict(x)
            snaps = pd.DataFrame({"snapshot": np.arange(len(y)), "time_s": t, "rul": pred})
            ch.append(ph.truncation_proxy(snaps, scheme, params)["accuracy"].mean())
            grid.append(ph.truncation_proxy(snaps, scheme, params, cuts=ph.grid_cuts())[
                "accuracy"].mean())
            err.append(float(np.sqrt(np.mean((pred - y) ** 2))))
        rows.append({"labels": tag, "regressor": name, "PHM 2012 proxy": float(np.mean(ch)),
                     "grid proxy": float(np.mean(grid)), "mean RMSE": float(np.mean(err))})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stride", type=int, default=3)
    p.add_argument("--caps", type=float, nargs="+", default=[3000.0, 6000.0, 12000.0],
                   help="capped-label caps in seconds")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    print(f"# TF features -> time left: simple regressors (LOBO, FEMTO learning set)\n\n"
          f"{machine_line()}\n\nevery {args.stride}. snapshot counted back from failure\n")
    for health in (False, True):
        feats = snapshot_features(args.stride, health)
        rows = []
        for cap in args.caps:
            max_rul = max(1, round(cap / (SNAPSHOT_S * args.stride)))
            rows += lobo_rows(feats, "capped", {"max_rul": max_rul}, f"capped {cap:g} s")
        rows += lobo_rows(feats, "piecewise", {"knee_fraction": 0.3}, "piecewise 0.3")
        rows += lobo_rows(feats, "linear", {}, "linear")
        what = "14 TF features + log RMS ratio, its running max, running time" if health else (
            "14 TF features")
        print(f"## Inputs: {what}\n")
        print(markdown(rows, ["labels", "regressor", "PHM 2012 proxy", "grid proxy",
                              "mean RMSE"]))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
