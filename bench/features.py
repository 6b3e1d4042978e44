"""Benchmark: ImR + TF features of a whole bearing against the papers' naive per-window code.

Default run: a synthetic XJTU-SY-sized bearing (123 snapshots x 32768 samples x 2 channels,
25.6 kHz, 2100 rpm; 7872 windows of 1000 samples, stride 500). ``--npz`` benches a real
FEMTO learning bearing from ``../shared/data/real/femto_npz`` instead.

The reference is what the authors' notebooks do: for every window ``pywt.cwt`` (method
``conv``, the pywt default) followed by numpy/scipy features, and a pure-Python Bresenham
loop segment by segment for the ImR. It is timed on ``--sample`` windows and extrapolated
to the whole bearing; its outputs are also compared with ours on those windows.

    python bench/features.py [--npz PATH] [--sample 16] [--sigma 0.75]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pywt
import scipy.stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rul_core.data.run import Condition, Run
from rul_core.signal.features import tf_features
from rul_core.signal.pipeline import (
    PipelineConfig,
    extract_windows,
    fit_normaliser,
    window_signals,
)
from rul_core.signal.raster import imr_pair_counts

FEMTO_RPM = {"1": 1800.0, "2": 1650.0, "3": 1500.0}
FEMTO_LOAD = {"1": 4000.0, "2": 4200.0, "3": 5000.0}


def synthetic_run() -> Run:
    """The XJTU-SY-sized bearing (uses the project's generator when present)."""
    try:
        from rul_core.data.synthetic import synth_run
    except ImportError:
        rng = np.random.default_rng(0)
        t = np.arange(32768) / 25600.0
        grow = np.linspace(0.1, 1.0, 123)[:, None, None]
        x = grow * np.sin(2 * np.pi * 35 * t)[None, :, None] + rng.normal(0, 0.3, (123, 32768, 2))
        return Run("synthetic", x.astype(np.float32), 25600.0, ["horizontal", "vertical"],
                   Condition(2100.0, 12000.0))
    return synth_run("Bearing1_1", n_snapshots=123, samples=32768, fs=25600.0, rpm=2100.0,
                     load_n=12000.0, seed=0)


def femto_run(path: Path) -> Run:
    """A packed FEMTO learning bearing (acc int32 milli-g)."""
    with np.load(path) as data:
        acc = data["acc"].astype(np.float32) / 1000.0
    cond = re.search(r"Bearing(\d)_", path.name)
    c = cond.group(1) if cond else "1"
    return Run(path.stem, acc, 25600.0, ["horizontal", "vertical"],
               Condition(FEMTO_RPM.get(c, 1800.0), FEMTO_LOAD.get(c, 4000.0)))


def naive_bresenham(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    dx, dy = x1 - x0, y1 - y0
    xs, ys = (1 if dx > 0 else -1), (1 if dy > 0 else -1)
    dx, dy = abs(dx), abs(dy)
    if dx > dy:
        xx, xy, yx, yy = xs, 0, 0, ys
    else:
        dx, dy = dy, dx
        xx, xy, yx, yy = 0, ys, xs, 0
    err, y, pts = 2 * dy - dx, 0, []
    for x in range(dx + 1):
        pts.append((x0 + x * xx + y * yx, y0 + x * xy + y * yy))
        if err >= 0:
            y += 1
            err -= 2 * dx
        err += 2 * dy
    return pts


def naive_imr(window: np.ndarray) -> np.ndarray:
    """Per-segment Python loop (Algorithm 1), then the column-pair average."""
    levels = [min(int(64 * min(max(float(v), 0.0), 1.0)), 63) for v in window]
    img = np.zeros((64, len(levels)), dtype=np.uint8)
    for k in range(len(levels) - 1):
        for col, lev in naive_bresenham(k, levels[k], k + 1, levels[k + 1]):
            img[63 - lev, col] = 255
    return (img[:, 0::2] // 255 + img[:, 1::2] // 255).astype(np.uint8)


def naive_tf(window: np.ndarray, freqs: np.ndarray, fs: float) -> np.ndarray:
    """Per-window pywt.cwt + numpy/scipy statistics (the authors' loop body)."""
    scales = 0.81 * fs / freqs
    coef, _ = pywt.cwt(window, scales, "cmor2.0-0.81", sampling_period=1 / fs)
    energy = (np.abs(coef) ** 2).sum(axis=1)
    counts, _ = np.histogram(window, bins=3)
    p = counts[counts > 0] / window.size
    return np.array([np.log(energy.sum()), freqs[np.argmax(energy)], -(p * np.log(p)).sum(),
                     scipy.stats.kurtosis(window, fisher=False), scipy.stats.skew(window),
                     window.mean(), window.std()])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--npz", type=Path, default=None, help="packed FEMTO bearing to bench")
    ap.add_argument("--sample", type=int, default=16, help="windows timed for the reference")
    ap.add_argument("--sigma", type=float, default=None,
                    help="Gaussian sigma (default 0.75 synthetic XJTU, 1.1 FEMTO)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}; load average at start "
          f"{os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    run = femto_run(args.npz) if args.npz else synthetic_run()
    sigma = args.sigma if args.sigma is not None else (1.1 if args.npz else 0.75)
    print(f"run {run.name}: {run.n_snapshots} snapshots x {run.n_samples} samples x "
          f"{run.n_channels} channels, {run.condition.rpm:g} rpm "
          f"(built in {time.perf_counter() - t0:.1f} s)")
    cfg = PipelineConfig(gaussian_sigma=sigma)
    norm = fit_normaliser([run], cfg)

    t, c = time.perf_counter(), time.process_time()
    ws = extract_windows(run, norm, cfg)
    total, cpu = time.perf_counter() - t, time.process_time() - c
    n = len(ws)
    peak_extract = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nwhole bearing, ImR + TF features (both channels): {n} windows in {total:.2f} s "
          f"wall = {n / total:.0f} windows/s (CPU time {cpu:.2f} s over all threads)")

    sig = window_signals(run, norm, cfg)
    t = time.perf_counter()
    imr = imr_pair_counts(sig[:, :, cfg.imr_channel])
    t_imr = time.perf_counter() - t
    freqs = cfg.frequencies(run.condition.rpm)
    t = time.perf_counter()
    tf = np.stack([tf_features(sig[:, :, c], run.fs, freqs) for c in range(run.n_channels)], 1)
    t_tf = time.perf_counter() - t
    print(f"  ImR alone:         {t_imr:6.2f} s = {n / t_imr:8.0f} windows/s")
    print(f"  TF features alone: {t_tf:6.2f} s = {n / t_tf:8.0f} windows/s (both channels)")
    assert np.array_equal(imr, ws.images) and np.allclose(tf.astype(np.float32), ws.tf)

    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(n, size=min(args.sample, n), replace=False))
    t = time.perf_counter()
    ref_img = np.stack([naive_imr(sig[i, :, cfg.imr_channel]) for i in pick])
    t_ref_imr = (time.perf_counter() - t) / pick.size
    t = time.perf_counter()
    ref_tf = np.stack([np.stack([naive_tf(sig[i, :, c].astype(np.float64), freqs, run.fs)
                                 for c in range(run.n_channels)]) for i in pick])
    t_ref_tf = (time.perf_counter() - t) / pick.size
    ref_total = n * (t_ref_imr + t_ref_tf)
    print(f"\nnaive reference on {pick.size} windows: ImR {1e3 * t_ref_imr:.1f} ms/window, "
          f"per-window pywt.cwt + features {1e3 * t_ref_tf:.0f} ms/window (both channels)")
    print(f"  extrapolated to {n} windows: {ref_total:.0f} s "
          f"(ImR {n * t_ref_imr:.0f} s, TF {n * t_ref_tf:.0f} s)")
    print(f"  speed-up: whole pipeline {ref_total / total:.0f}x, ImR "
          f"{n * t_ref_imr / t_imr:.0f}x, TF {n * t_ref_tf / t_tf:.0f}x")
    same_img = np.array_equal(ref_img, ws.images[pick])
    rel = np.abs(ref_tf - ws.tf[pick]) / np.maximum(np.abs(ref_tf), 1e-12)
    print(f"  agreement on the sample: ImR identical={same_img}, TF max relative difference "
          f"{rel.max():.1e} (f_d identical="
          f"{np.array_equal(ref_tf[..., 1].astype(np.float32), ws.tf[pick][..., 1])})")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (max RSS, run data and libraries included): {peak_extract:.0f} MB "
          f"up to the end of the whole-bearing extraction, {peak:.0f} MB for the whole script "
          "(which also keeps the stage-by-stage copies)")
    print(f"load average at end {os.getloadavg()[0]:.2f} (other jobs on the 2 shared cores "
          "slow every figure down)")
    ok = total < 30 and ref_total / total >= 100 and peak_extract < 2048
    print("targets (<30 s, >=100x, <2 GB):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
