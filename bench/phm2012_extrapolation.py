"""Health-indicator extrapolation: a physical baseline for the PHM 2012 proxy, no learning.

At each cut of a held-out learning bearing (snapshots <= the cut only):

1. a health indicator (HI) per snapshot: the peak |acceleration| (g) or the RMS (g), the
   larger of the two channels, smoothed causally by a running median of ``w`` snapshots;
2. degradation onset: the first snapshot that starts 3 in a row above the early-life band
   ``mu + k sd`` (and above 1.3 mu), ``mu``/``sd`` of the first 30 snapshots of the smoothed HI
   (as :func:`rul_core.labels.detect_knee`, one-sided); once found it stays found;
3. degrading: an exponential fit over the last ``M`` snapshots since onset — least squares of
   ``log HI`` (``exp`` fit) or ``log(HI - mu)`` (``a+b·exp`` fit, ``a`` the healthy level) on
   time — extrapolated to the failure threshold: 20 g for the peak (how the FEMTO runs stop),
   or the median over the training bearings of their smoothed HI at the last snapshot
   ("learned"); the time left is multiplied by a ``shrink`` factor (early errors cost 4x less
   than late ones) and clipped to [10 s, the longest training life];
4. healthy, or a flat/unstable fit (slope <= 0, or beyond the longest training life): a prior
   from the *other* bearings only — a quantile ``q`` of their time from detected onset to
   failure (``onset``: a healthy bearing has at least that left, give or take) or of their
   life minus the elapsed time (``life``, over those that lived longer); policy ``min`` also
   caps a degrading estimate by the prior.

Scores as ``bench/phm2012_baselines.py``: leave-one-bearing-out over the six learning bearings
(thresholds and priors from the other five), the per-snapshot estimates in seconds go through
the protocol of :func:`rul_core.phm2012.truncation_proxy` (median of the implied lives of the
last 5 snapshots, cut where the test bearings were cut, or on the answer-free grid of 13 cuts
over 50..98 % of life), at full resolution (a snapshot every 10 s). Settings are chosen on the
grid only: "nested" picks, for each held-out bearing, the variant with the best mean grid proxy
over inner leave-one-out folds of its five training bearings (priors and thresholds of an inner
fold from the four others), so the held-out bearing never takes part in its own choice.
Runs in about a minute on 2 CPU cores (the HI is cached in ``--cache`` if given).

    python bench/phm2012_extrapolation.py
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from phm2012 import BEARINGS, NPZ_DIR, SNAPSHOT_S, load_femto_npz, machine_line, markdown

from rul_core import metrics as mt
from rul_core import phm2012 as ph

PEAK_FAIL_G = 20.0  # a FEMTO run stops when the vibration exceeds 20 g
N_HEALTHY = 30  # snapshots of the early-life baseline (5 min)
CONSECUTIVE = 3
MIN_RATIO = 1.3  # the onset band is at least 1.3x the healthy level (a smoothed HI has tiny sd)
MIN_RUL_S = 10.0
LAST_K = ph.DEFAULT_LAST_K


@dataclass(frozen=True)
class Variant:
    hi: str  # "peak" or "rms"
    threshold: str  # "20g" (peak only) or "learned"
    fit: str  # "exp" (log HI) or "a+b·exp" (log(HI - mu))
    prior: str  # "const" (best constant on the training grid), "onset" or "life"
    q: float  # prior quantile over the training bearings ("onset", "life")
    policy: str  # "prior": flat/unstable -> prior; "min": also cap a degrading estimate by
    # it; "never": the prior everywhere (no extrapolation)
    shrink: float
    k: float = 3.0  # onset band: mu + k sd
    w: int = 5  # running median (snapshots)
    m: int = 60  # fit window (snapshots since onset, at most)

    def name(self) -> str:
        return (f"{self.hi}@{self.threshold} {self.fit} k{self.k:g} w{self.w} M{self.m} "
                f"prior {self.prior} q{self.q:g} {self.policy} x{self.shrink:g}")


def load_hi(cache: Path | None) -> dict[str, dict[str, np.ndarray]]:
    """Per bearing: raw per-snapshot peak |acc| and RMS (g, max over channels), times (s)."""
    if cache is not None and cache.exists():
        with np.load(cache) as z:
            return {b: {k: z[f"{b}/{k}"] for k in ("peak", "rms", "t")} for b in BEARINGS}
    out = {}
    for b in BEARINGS:
        run = load_femto_npz(b)  # acc int32 milli-g in the npz; the Run holds g
        x = run.snapshots
        out[b] = {"peak": np.abs(x).max(axis=(1, 2)).astype(np.float64),
                  "rms": np.sqrt((x.astype(np.float64) ** 2).mean(axis=1)).max(axis=1),
                  "t": np.asarray(run.timestamps, dtype=np.float64)}
        del run, x
    if cache is not None:
        np.savez(cache, **{f"{b}/{k}": v for b, d in out.items() for k, v in d.items()})
    return out


class Bearing:
    """One bearing's smoothed HIs, onsets and fits, cached per setting."""

    def __init__(self, name: str, raw: dict[str, np.ndarray]) -> None:
        self.name = name
        self.raw = raw
        self.t = raw["t"]
        self.n = self.t.size
        self.e = ph.elapsed_s(self.t)
        self.life = float(self.t[-1] - self.t[0] + SNAPSHOT_S)
        self._cache: dict = {}

    def smooth(self, hi: str, w: int) -> np.ndarray:
        key = ("s", hi, w)
        if key not in self._cache:  # pandas rolling looks back only: causal
            self._cache[key] = pd.Series(self.raw[hi]).rolling(w, min_periods=1).median(
            ).to_numpy()
        return self._cache[key]

    def onset(self, hi: str, w: int, k: float) -> tuple[int | None, float]:
        """(first onset index or None, healthy level mu); known from snapshot onset+2 on."""
        key = ("o", hi, w, k)
        if key not in self._cache:
            s = self.smooth(hi, w)
            mu, sd = s[:N_HEALTHY].mean(), s[:N_HEALTHY].std()
            out = s > max(mu + k * sd, MIN_RATIO * mu)
            out[:N_HEALTHY] = False
            runs = np.convolve(out.astype(int), np.ones(CONSECUTIVE, int), mode="valid")
            hits = np.flatnonzero(runs == CONSECUTIVE)
            self._cache[key] = (int(hits[0]) if hits.size else None, float(mu))
        return self._cache[key]

    def fits(self, hi: str, w: int, k: float, fit: str, m: int) -> tuple[np.ndarray, ...]:
        """Per snapshot j: (slope c per s, fitted y at t_j, y offset mu or 0), NaN before the
        onset is known; y = log HI or log(HI - mu), fitted over max(onset, j-m+1)..j."""
        key = ("f", hi, w, k, fit, m)
        if key in self._cache:
            return self._cache[key]
        s = self.smooth(hi, w)
        on, mu = self.onset(hi, w, k)
        off = mu if fit == "a+b·exp" else 0.0
        slope = np.full(self.n, np.nan)
        yhat = np.full(self.n, np.nan)
        if on is not None:
            y = np.log(np.maximum(s - off, 1e-3 * mu))
            x = self.e / 3600.0  # hours, for conditioning
            c = [np.concatenate([[0.0], np.cumsum(v)]) for v in
                 (np.ones(self.n), x, y, x * x, x * y)]
            j = np.arange(on + CONSECUTIVE - 1, self.n)
            a = np.maximum(on, j - m + 1)
            s0, s1, s2, s3, s4 = (ci[j + 1] - ci[a] for ci in c)
            den = s0 * s3 - s1 * s1
            with np.errstate(invalid="ignore", divide="ignore"):
                b = np.where(den > 0, (s0 * s4 - s1 * s2) / den, 0.0)
            intercept = (s2 - b * s1) / s0
            slope[j] = b / 3600.0
            yhat[j] = intercept + b * x[j]
        self._cache[key] = (slope, yhat, off)
        return self._cache[key]

    def final_hi(self, hi: str, w: int) -> float:
        return float(self.smooth(hi, w)[-1])

    def onset_to_failure(self, hi: str, w: int, k: float) -> float:
        on, _ = self.onset(hi, w, k)
        return self.life if on is None else float(self.t[-1] - self.t[on])


def estimates(v: Variant, held: Bearing, train: list[Bearing]) -> tuple[np.ndarray, np.ndarray]:
    """(time left in s at every snapshot of ``held``, whether the extrapolation was used)."""
    cap = max(b.life for b in train)
    if v.threshold == "20g":
        thr = PEAK_FAIL_G
    else:
        thr = float(np.median([b.final_hi(v.hi, v.w) for b in train]))
    if v.prior == "const":
        prior = np.full(held.n, best_constant(train))
    elif v.prior == "onset":
        prior = np.full(held.n, np.quantile([b.onset_to_failure(v.hi, v.w, v.k) for b in train],
                                            v.q))
    else:
        lives = np.array([b.life for b in train])
        rem = lives[None, :] - held.e[:, None]
        rem = np.where(rem > 0, rem, np.nan)
        with np.errstate(all="ignore"):
            prior = np.nanquantile(rem, v.q, axis=1) if rem.size else np.nan
        # outlived every training bearing: the shortest time any of them lived after onset
        floor = min(b.onset_to_failure(v.hi, v.w, v.k) for b in train)
        prior = np.where(np.isfinite(prior), prior, floor)
    slope, yhat, off = held.fits(v.hi, v.w, v.k, v.fit, v.m)
    target = np.log(max(thr - off, 1e-6))
    with np.errstate(invalid="ignore", divide="ignore"):
        ext = np.where(slope > 0, (target - yhat) / slope, np.inf)
    degrading = np.isfinite(slope)
    usable = degrading & np.isfinite(ext) & (ext * v.shrink <= cap) & (v.policy != "never")
    est = np.where(usable, np.clip(ext * v.shrink, MIN_RUL_S, cap), prior)
    if v.policy == "min":
        est = np.where(usable, np.minimum(est, prior), est)
    return np.clip(est, MIN_RUL_S, cap), usable


_CONST: dict[tuple[str, ...], float] = {}


def best_constant(train: list[Bearing]) -> float:
    """The constant time left (s) with the best mean grid proxy over the training bearings
    (their actual time left at the grid cuts; 200 log-spaced candidates, 10 s..10 h)."""
    key = tuple(b.name for b in train)
    if key not in _CONST:
        cand = np.geomspace(10.0, 36000.0, 200)
        acc = np.zeros(cand.size)
        for b in train:
            for _, f in ph.grid_cuts():
                j = ph.truncation_index(b.n, f)
                act = np.full(cand.size, b.t[-1] - b.t[j])
                acc += mt.phm2012_accuracy(act, cand)
        _CONST[key] = float(cand[np.argmax(acc)])
    return _CONST[key]


def cut_scores(b: Bearing, est: np.ndarray, cuts: list[tuple[str, float]]) -> np.ndarray:
    """Accuracy A at each cut: :func:`rul_core.phm2012.truncation_proxy` on ``est`` (median of
    the last ``LAST_K`` implied lives minus the elapsed time), without pandas."""
    life = b.e + est
    acc = []
    for _, f in cuts:
        j = ph.truncation_index(b.n, f)
        actual = b.t[-1] - b.t[j]
        guess = max(0.0, float(np.median(life[max(0, j - LAST_K + 1): j + 1])) - b.e[j])
        acc.append(mt.phm2012_accuracy(np.array([actual]), np.array([guess]))[0])
    return np.asarray(acc)


def variants(quick: bool) -> list[Variant]:
    his = [("peak", "20g"), ("peak", "learned"), ("rms", "learned")]
    priors = (("const", 0.0), ("onset", 0.25), ("onset", 0.5), ("life", 0.25), ("life", 0.5))
    grid = itertools.product(his, ("exp", "a+b·exp"), priors, ("prior", "min"),
                             (1.0, 0.8, 0.6, 0.4, 0.25), (60,) if quick else (30, 120))
    return [Variant(h, thr, fit, pr, q, pol, sh, m=m)
            for (h, thr), fit, (pr, q), pol, sh, m in grid]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--npz-dir", type=Path, default=NPZ_DIR)
    p.add_argument("--cache", type=Path, default=None,
                   help="npz of the per-snapshot HIs (written if missing; not a data file to "
                        "commit)")
    p.add_argument("--quick", action="store_true", help="one fit window M (fewer variants)")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message="All-NaN slice", category=RuntimeWarning)
    np.seterr(over="ignore")  # A of a hopeless late guess underflows to 0, as it should
    t0 = time.perf_counter()
    bearings = {b: Bearing(b, r) for b, r in load_hi(args.cache).items()}
    t_load = time.perf_counter() - t0
    vs = variants(args.quick)
    ch_cuts, gr_cuts = ph.challenge_cuts(), ph.grid_cuts()

    # outer LOBO: every variant's per-bearing scores (priors/thresholds from the other five)
    outer: dict[Variant, dict[str, tuple[float, float]]] = {}
    healthy: dict[Variant, dict[str, tuple[float, float]]] = {}
    for v in vs:
        outer[v], healthy[v] = {}, {}
        for h in BEARINGS:
            train = [bearings[b] for b in BEARINGS if b != h]
            est, used = estimates(v, bearings[h], train)
            outer[v][h] = (cut_scores(bearings[h], est, ch_cuts).mean(),
                           cut_scores(bearings[h], est, gr_cuts).mean())
            n = bearings[h].n
            healthy[v][h] = tuple(float(np.mean([not used[ph.truncation_index(n, f)]
                                                 for _, f in c])) for c in (ch_cuts, gr_cuts))

    # nested choice: for held-out h, the variant with the best mean grid proxy over inner LOBO
    # folds of the other five (each inner bearing predicted from the four others)
    inner_grid: dict[tuple[str, Variant], float] = {}
    for h in BEARINGS:
        rest = [b for b in BEARINGS if b != h]
        for v in vs:
            s = []
            for ib in rest:
                train = [bearings[b] for b in rest if b != ib]
                est, _ = estimates(v, bearings[ib], train)
                s.append(cut_scores(bearings[ib], est, gr_cuts).mean())
            inner_grid[h, v] = float(np.mean(s))

    def summary(label: str, pick: dict[str, Variant]) -> list[dict]:
        rows = []
        for h in BEARINGS:
            v = pick[h]
            rows.append({"variant": label, "bearing": h, "challenge cuts": outer[v][h][0],
                         "grid": outer[v][h][1], "no extrapolation (ch/grid)":
                         f"{healthy[v][h][0]:.0%} / {healthy[v][h][1]:.0%}",
                         "chosen": v.name()})
        rows.append({"variant": label, "bearing": "**mean**",
                     "challenge cuts": float(np.mean([r["challenge cuts"] for r in rows])),
                     "grid": float(np.mean([r["grid"] for r in rows])),
                     "no extrapolation (ch/grid)": "", "chosen": ""})
        return rows

    def mean_of(v: Variant, i: int) -> float:
        return float(np.mean([outer[v][h][i] for h in BEARINGS]))

    cols = ["variant", "bearing", "challenge cuts", "grid", "no extrapolation (ch/grid)",
            "chosen"]
    print(f"# Health-indicator extrapolation (LOBO, FEMTO learning set)\n\n{machine_line()}\n\n"
          f"{len(vs)} variants, HIs loaded in {t_load:.0f} s\n")

    nested = {h: max(vs, key=lambda v, h=h: inner_grid[h, v]) for h in BEARINGS}
    rows = summary("nested choice on the inner grid (all variants)", nested)
    for hi_thr in (("peak", "20g"), ("peak", "learned"), ("rms", "learned")):
        sub = [v for v in vs if (v.hi, v.threshold) == hi_thr]
        pick = {h: max(sub, key=lambda v, h=h: inner_grid[h, v]) for h in BEARINGS}
        rows += summary(f"nested choice, {hi_thr[0]}@{hi_thr[1]} only", pick)
    print("## Per held-out bearing: variant chosen on the grid inside its training set\n")
    print(markdown(rows, cols))

    best = max(vs, key=lambda v: mean_of(v, 1))
    print(f"\n## One variant for all six, chosen on the outer mean grid proxy (answer-free, but "
          f"the held-out bearings take part in the choice)\n\n`{best.name()}`\n")
    print(markdown(summary("best outer grid", dict.fromkeys(BEARINGS, best)), cols))
    split = {True: [], False: []}
    for h in BEARINGS:
        est, used = estimates(best, bearings[h], [bearings[b] for b in BEARINGS if b != h])
        acc = cut_scores(bearings[h], est, gr_cuts)
        for (_, f), a in zip(gr_cuts, acc, strict=True):
            split[bool(used[ph.truncation_index(bearings[h].n, f)])].append(a)
    print(f"\nits grid cuts (6 x 13): extrapolated at {len(split[True])}, mean A "
          f"{np.mean(split[True]) if split[True] else float('nan'):.3f}; prior at "
          f"{len(split[False])}, mean A {np.mean(split[False]):.3f}")

    print("\n## Shrink factor and prior, each HI (other settings: the HI's best outer grid "
          "variant); mean over the six held-out bearings\n")
    srows = []
    for hi_thr in (("peak", "20g"), ("peak", "learned"), ("rms", "learned")):
        sub = [v for v in vs if (v.hi, v.threshold) == hi_thr]
        b = max(sub, key=lambda v: mean_of(v, 1))
        for v in sub:
            same = (v.fit, v.k, v.w, v.m, v.policy) == (b.fit, b.k, b.w, b.m, b.policy)
            if same:
                srows.append({"HI": f"{v.hi}@{v.threshold}", "fit": v.fit,
                              "prior": f"{v.prior} q{v.q:g}", "policy": v.policy,
                              "shrink": v.shrink, "challenge cuts": mean_of(v, 0),
                              "grid": mean_of(v, 1),
                              "no extrapolation (grid)":
                                  f"{np.mean([healthy[v][h][1] for h in BEARINGS]):.0%}"})
    print(markdown(srows, ["HI", "fit", "prior", "policy", "shrink", "challenge cuts", "grid",
                           "no extrapolation (grid)"]))

    print("\n## Prior only (never extrapolate), for reference\n")
    prow = []
    for pr, q in (("const", 0.0), ("onset", 0.25), ("onset", 0.5), ("life", 0.25),
                  ("life", 0.5)):
        v = Variant("peak", "20g", "exp", pr, q, "never", 1.0)
        ch, gr = [], []
        for h in BEARINGS:
            est, _ = estimates(v, bearings[h], [bearings[b] for b in BEARINGS if b != h])
            ch.append(cut_scores(bearings[h], est, ch_cuts).mean())
            gr.append(cut_scores(bearings[h], est, gr_cuts).mean())
        prow.append({"prior": pr if pr == "const" else f"{pr} q{q:g}",
                     "challenge cuts": float(np.mean(ch)), "grid": float(np.mean(gr))})
    print(markdown(prow, ["prior", "challenge cuts", "grid"]))
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
