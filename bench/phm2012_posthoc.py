"""Post-processing of saved PHM 2012 leave-one-out predictions, without retraining.

``bench/phm2012.py --save-predictions DIR`` writes each fold's held-out snapshot means to
``DIR/<model>-<ablation>-seed<s>-<bearing>.csv``. This script replays the challenge protocol
(:func:`rul_core.phm2012.truncation_proxy`) on them for choices that need no new training:

- ``each (mean)``: each seed on its own (the bench's numbers), averaged over seeds;
- ``mean of n``: the snapshot predictions averaged over the n seeds of one model — what a deep
  ensemble of independently seeded members would predict (point estimate; its ``q<q>`` columns
  are the members' quantiles averaged, an approximation of the mixture's quantile);
- ``median of n``: the same with the seeds' median at each snapshot (n > 2), which one
  member far off does not move;
- ``blend ...``: the same average over every listed model/ablation and seed;
- the smoothing window ``last_k`` of :func:`rul_core.phm2012.estimate_rul_s` and the band
  quantile columns ``q<q>``.

Every row reports the challenge-cut proxy and the answer-free grid proxy (mean over the held-out
bearings); choose on the grid column only, or the choice learns from the challenge's answers.

    python bench/phm2012_posthoc.py /tmp/pred --max-rul-s 3000
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from phm2012 import markdown

from rul_core.phm2012 import DEFAULT_LAST_K, grid_cuts, truncation_proxy

NAME = re.compile(
    r"(?P<model>[a-z_]+)-(?P<ablation>[a-z0-9_]+)-seed(?P<seed>\d+)-(?P<bearing>.+)\.csv")


def load_predictions(folder: Path) -> dict[tuple[str, str, int, str], pd.DataFrame]:
    """{(model, ablation, seed, bearing): snapshot table} of every saved fold in ``folder``."""
    out = {}
    for path in sorted(folder.glob("*.csv")):
        m = NAME.fullmatch(path.name)
        if m is None:
            print(f"skipped {path.name}: not <model>-<ablation>-seed<s>-<bearing>.csv",
                  file=sys.stderr)
            continue
        key = (m["model"], m["ablation"], int(m["seed"]), m["bearing"])
        out[key] = pd.read_csv(path)
    if not out:
        raise SystemExit(f"no saved predictions in {folder}")
    return out


def combined_table(tables: Iterable[pd.DataFrame], how: str = "mean") -> pd.DataFrame:
    """Element-wise mean (or ``how="median"``) of snapshot tables of the same run, over the
    snapshot times they all hold (a run kept every 6th snapshot and one kept every 3rd, both
    counted back from failure, meet on the every-6th times); snapshots renumbered from 0."""
    tables = list(tables)
    times = set(tables[0]["time_s"])
    for t in tables[1:]:
        times &= set(t["time_s"])
    if len(times) < 3:
        raise ValueError("the tables share fewer than 3 snapshot times")
    keep = [t[t["time_s"].isin(times)].sort_values("time_s").reset_index(drop=True)
            for t in tables]
    cols = set.intersection(*(set(t.columns) for t in keep)) - {"snapshot", "time_s"}
    out = pd.DataFrame({"snapshot": np.arange(len(keep[0])), "time_s": keep[0]["time_s"]})
    for c in sorted(cols):
        stack = [t[c].to_numpy() for t in keep]
        out[c] = np.median(stack, axis=0) if how == "median" else np.mean(stack, axis=0)
    return out


def proxies(
    table: pd.DataFrame, max_rul_s: float, column: str = "rul", last_k: int = DEFAULT_LAST_K,
    log_scale_s: float = 0.0,
) -> tuple[float, float]:
    """(challenge-cut proxy, grid proxy) of one held-out run's snapshot table, capped labels
    (compressed logarithmically with scale ``log_scale_s`` when it is not 0)."""
    spacing = float(np.median(np.diff(table["time_s"].to_numpy())))
    params: dict = {"max_rul": max(1, round(max_rul_s / spacing))}
    if log_scale_s:
        params["log_scale"] = log_scale_s / spacing
    challenge = truncation_proxy(table, "capped", params, column=column, last_k=last_k)
    grid = truncation_proxy(table, "capped", params, column=column, last_k=last_k,
                            cuts=grid_cuts())
    return float(challenge["accuracy"].mean()), float(grid["accuracy"].mean())


def score(
    by_bearing: dict[str, pd.DataFrame], max_rul_s: float, column: str, last_k: int,
    log_scale_s: float = 0.0,
) -> tuple[float, float, float]:
    """(challenge-cut proxy, grid proxy, worst bearing's grid proxy) over the held-out bearings."""
    pairs = [proxies(t, max_rul_s, column, last_k, log_scale_s) for t in by_bearing.values()]
    return (float(np.mean([p for p, _ in pairs])), float(np.mean([g for _, g in pairs])),
            float(np.min([g for _, g in pairs])))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--max-rul-s", type=float, default=3000.0, help="the capped labels' cap (s)")
    p.add_argument("--log-scale-s", type=float, default=0.0,
                   help="the capped labels' logarithmic scale (s; 0: linear labels)")
    p.add_argument("--last-k", type=int, nargs="+", default=[1, 3, DEFAULT_LAST_K, 10, 20])
    p.add_argument("--models", nargs="*", default=None,
                   help="model/ablation pairs for the blend, e.g. rc_lstm/full (default: all)")
    args = p.parse_args(argv)

    preds = load_predictions(args.folder)
    groups: dict[str, dict[int, dict[str, pd.DataFrame]]] = {}
    for (model, ablation, seed, bearing), t in preds.items():
        groups.setdefault(f"{model}/{ablation}", {}).setdefault(seed, {})[bearing] = t
    rows = []

    def add(name: str, seeds: str, by_bearing: dict[str, pd.DataFrame]) -> None:
        first = next(iter(by_bearing.values()))
        columns = ["rul", *sorted(c for c in first.columns if re.fullmatch(r"q[0-9.]+", c))]
        for column in columns:
            for k in args.last_k:
                proxy, grid, worst = score(by_bearing, args.max_rul_s, column, k,
                                           args.log_scale_s)
                rows.append({"predictor": name, "seeds": seeds, "column": column, "last_k": k,
                             "proxy": proxy, "grid": grid, "worst grid": worst})

    for name, by_seed in groups.items():
        singles = [score(b, args.max_rul_s, "rul", DEFAULT_LAST_K, args.log_scale_s)
                   for b in by_seed.values()]
        rows.append({"predictor": name, "seeds": "each (mean)", "column": "rul",
                     "last_k": DEFAULT_LAST_K,
                     "proxy": float(np.mean([s[0] for s in singles])),
                     "grid": float(np.mean([s[1] for s in singles])),
                     "worst grid": float(np.mean([s[2] for s in singles]))})
        bearings = set.intersection(*(set(b) for b in by_seed.values()))
        seed_mean = {b: combined_table(by_seed[s][b] for s in by_seed) for b in sorted(bearings)}
        add(name, f"mean of {len(by_seed)}", seed_mean)
        if len(by_seed) > 2:
            seed_median = {b: combined_table((by_seed[s][b] for s in by_seed), how="median")
                           for b in sorted(bearings)}
            add(name, f"median of {len(by_seed)}", seed_median)
    chosen = args.models or list(groups)
    members = [(n, s) for n in chosen for s in groups.get(n, {})]
    if len(chosen) > 1 and members:
        bearings = set.intersection(*(set(groups[n][s]) for n, s in members))
        blend = {b: combined_table(groups[n][s][b] for n, s in members) for b in sorted(bearings)}
        add("blend " + "+".join(chosen), f"mean of {len(members)}", blend)
    rows.sort(key=lambda r: -r["grid"])
    print(markdown(rows, ["predictor", "seeds", "column", "last_k", "proxy", "grid",
                          "worst grid"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
