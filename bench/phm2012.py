"""IEEE PHM 2012 protocol on the six FEMTO learning bearings (benchmark, not a test).

For each model and ablation (``quick`` preset): leave-one-bearing-out over the learning
bearings — train on five (four with ``--inner-val``, the fifth then stops early and calibrates
the interval), predict the sixth — and report per-bearing RMSE of the normalised RUL, PICP of
the interval, wall time and peak resident memory of training, and the challenge score replayed
on the held-out bearing (:func:`rul_core.phm2012.truncation_proxy`): the bearing is cut where
each of the eleven test bearings was cut (as a fraction of its life), the model's estimate of
the time left (seconds) is scored with the challenge's accuracy A, and the eleven A are
averaged ("PHM 2012 proxy"; "grid proxy": cuts at 50 %..98 % of life, which use nothing from
the challenge's answers). The score punishes late estimates four times harder than early ones,
so the same proxies are also computed from lower quantiles of the calibrated band
(``--quantiles``); the quantile with the best *grid* proxy is reported with its challenge-cut
proxy, so the choice uses no answer. A constant prediction (the training-label mean) is the
baseline every model must beat. Every fold trains in a fresh child process (``--in-process``
to turn that off): TensorFlow keeps memory after each trained model, which would otherwise add
up over the folds. Then the training throughput (windows/s) of each model at the ``paper``
preset on this machine (random inputs of the right shape, after one warm-up batch).

Real data: ``../shared/data/real/femto_npz/Learning_set__BearingC_Y.npz`` (``acc`` int32
milli-g -> /1000 for g; 25.6 kHz; a snapshot every 10 s; condition from the bearing number).
``--stride N`` keeps every N-th snapshot counted back from failure (absolute time kept, which
``--labels capped`` needs; it trains the same model as ``train(snapshot_every=N)``, CLI
``--every N``, on the whole runs with the cap in recorded snapshots — tests/test_training.py
checks that — but loads N times less data). ``--phases K`` (K <= N) trains on the whole
training runs with ``train(snapshot_every=N, snapshot_phases=K)``: the thinnings that end
0..K-1 snapshots before each run's last, as many batches per epoch as one thinning; the
held-out run is predicted as without it (pre-thinned). ``--max-snapshots`` keeps that many evenly
spaced (the normalised ``piecewise``/``linear`` labels are unchanged by it), so a run fits in
minutes.

    python bench/phm2012.py --models carle --labels capped --max-rul-s 3000 --stride 3 \
        --inner-val --constant
    python bench/phm2012.py --models carle --max-snapshots 40 --epochs 3

On a GPU: ``KERAS_BACKEND=jax`` with a CUDA build of JAX (``--preset paper`` trains the
published sizes; ``--npz-dir`` reads a ``bench/femto_subset.py`` subset that travels light).
The throughput rows name the backend and device and, on an accelerator, its peak memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rul_core.cli.model_cmds import augmentation as augmentation_from_args
from rul_core.cli.model_cmds import augmentation_options
from rul_core.data.run import Condition, Run, every_nth_from_last
from rul_core.errors import RulError
from rul_core.training import DEFAULT_PATIENCE

NPZ_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "femto_npz"
BEARINGS = ("Bearing1_1", "Bearing1_2", "Bearing2_1", "Bearing2_2", "Bearing3_1", "Bearing3_2")
SNAPSHOT_S = 10.0
CONDITIONS = {1: (1800.0, 4000.0), 2: (1650.0, 4200.0), 3: (1500.0, 5000.0)}


def snapshot_numbers(z: Any) -> np.ndarray:
    """The original snapshot numbers of an opened npz: its ``snapshot`` array (a
    ``bench/femto_subset.py`` subset), else 0..n-1."""
    return z["snapshot"] if "snapshot" in z.files else np.arange(z["acc"].shape[0])


def load_femto_npz(
    bearing: str, npz_dir: Path = NPZ_DIR, max_snapshots: int | None = None, stride: int = 1
) -> Run:
    """One learning bearing as a Run: optionally ``max_snapshots`` evenly spaced snapshots, or
    every ``stride``-th snapshot counted back from the last (which keeps absolute time: the
    failure snapshot is always kept and every bearing has the same spacing).

    A file written by ``bench/femto_subset.py`` holds a subset and, in ``snapshot``, the
    original snapshot numbers: time and the stride count on those, so a subset loads as the
    same Run as the full file (with ``stride`` a multiple of the subset's)."""
    path = npz_dir / f"Learning_set__{bearing}.npz"
    with np.load(path, allow_pickle=False) as z:
        acc = z["acc"]
        number = snapshot_numbers(z)
        n = acc.shape[0]
        idx = np.arange(n)
        if max_snapshots and max_snapshots < n:
            idx = np.unique(np.linspace(0, n - 1, int(max_snapshots)).round().astype(int))
        elif stride > 1:
            idx = every_nth_from_last(number, stride)
        snaps = acc[idx].astype(np.float32) / 1000.0
    cond_no = int(bearing.removeprefix("Bearing").split("_")[0])
    rpm, load = CONDITIONS[cond_no]
    return Run(
        name=bearing,
        snapshots=snaps,
        fs=25600.0,
        channel_names=["horizontal", "vertical"],
        condition=Condition(rpm, load, f"condition {cond_no} ({rpm:g} rpm, {load:g} N)"),
        timestamps=number[idx] * SNAPSHOT_S,
        dataset="femto-learning",
        layout="femto",
    )


class PeakRss:
    """Samples this process's resident memory (``/proc/self/status`` VmRSS) every 50 ms."""

    def __enter__(self) -> PeakRss:
        self.peak = self._rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``), so that the resident size
    measured for the next fold is not inflated by the previous folds' fragmented arenas."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def phm_style_score(w: Any) -> float:
    """PHM-2012-style accuracy of one held-out bearing's snapshot-mean predictions.

    The challenge scores one truncation point per test bearing; here every snapshot of the
    degradation stage (piecewise label strictly between 0 and 1, where the label *is* the
    normalised remaining life) is a truncation point and the accuracies A are averaged.
    """
    from rul_core import metrics as mt

    agg = w.groupby("snapshot")[["rul", "y_true"]].mean()
    stage = agg[(agg["y_true"] > 0) & (agg["y_true"] < 1)]
    return float(np.mean(mt.phm2012_accuracy(stage["y_true"].to_numpy(),
                                             stage["rul"].to_numpy())))


#: Quantiles of the predictive band turned into seconds besides the point estimate (0.5); the
#: score punishes late estimates 4x harder than early ones, so a lower one may score better.
QUANTILES = (0.05, 0.1, 0.2, 0.3, 0.4)


def protocol_proxies(
    w: Any, run: Run, label_scheme: str, label_params: dict, quantiles: tuple[float, ...] = ()
) -> dict:
    """Mean challenge accuracy over cuts of this held-out run
    (:func:`rul_core.phm2012.truncation_proxy` on the snapshot means, aggregated once):
    ``proxy`` at the eleven test bearings' life fractions, ``proxy_grid`` at the answer-free
    grid of cuts, both from the point estimate; ``proxy@q``/``grid@q`` the same from each
    quantile column ``q<q>`` of ``w`` (the point estimate where ``w`` has none: the constant)."""
    from rul_core.phm2012 import grid_cuts, truncation_proxy
    from rul_core.training import aggregate_snapshots

    snaps = aggregate_snapshots(w, run)

    def mean_accuracy(column: str, cuts: list | None = None) -> float:
        table = truncation_proxy(snaps, label_scheme, label_params, column=column, cuts=cuts)
        return float(table["accuracy"].mean())

    out = {"proxy": mean_accuracy("rul"), "proxy_grid": mean_accuracy("rul", grid_cuts())}
    for q in quantiles:
        col = f"q{q:g}" if f"q{q:g}" in snaps else "rul"
        out[f"proxy@{q:g}"] = mean_accuracy(col)
        out[f"grid@{q:g}"] = mean_accuracy(col, grid_cuts())
    return out


def snapshot_rmse(w: Any) -> float:
    """RMSE of the snapshot means (what ``predict_run`` reports) against the labels."""
    agg = w.groupby("snapshot")[["rul", "y_true"]].mean()
    return float(np.sqrt(np.mean((agg["rul"] - agg["y_true"]) ** 2)))


def constant_rows(
    runs: dict[str, Run], label_scheme: str, label_params: dict,
    quantiles: tuple[float, ...] = (),
) -> list[dict]:
    """Constant-prediction baseline: every window of the held-out bearing gets the mean
    training-window label of the other bearings (what a model that learned nothing does)."""
    import pandas as pd

    from rul_core import labels as lb
    from rul_core import metrics as mt
    from rul_core.training import leave_one_bearing_out

    bearings = list(runs)
    lab = {b: lb.label_run(r, label_scheme, **label_params) for b, r in runs.items()}
    rows = []
    for train_names, (held,) in leave_one_bearing_out(bearings):
        mean = float(np.mean(np.concatenate([lab[n] for n in train_names])))
        y = lab[held]
        w = pd.DataFrame({"snapshot": np.arange(y.size), "y_true": y, "rul": np.full(y.size, mean)})
        rows.append({
            "model": "constant", "ablation": "train-label mean", "bearing": held,
            "rmse": mt.rmse(y, w["rul"]), "mae": mt.mae(y, w["rul"]), "picp": float("nan"),
            "phm": phm_style_score(w), "rmse_snap": snapshot_rmse(w), "wall_s": 0.0,
            **protocol_proxies(w, runs[held], label_scheme, label_params, quantiles),
            "peak_rss_mb": float("nan"), "rss_growth_mb": float("nan"), "epochs": 0,
            "train_windows": 0, "seed": "-",
        })
    return rows


@dataclass
class Fold:
    """One leave-one-bearing-out fold: what to train, on what, and how."""

    model: str
    ablation: str
    fit: dict[str, Run]
    val: dict[str, Run]
    held: Run
    epochs: int | None
    seed: int
    pipeline_config: Any
    label_scheme: str
    label_params: dict
    hparams: dict
    quantiles: tuple[float, ...]
    n_members: int = 1
    save_dir: str | None = None
    preset: str = "quick"
    patience: int = DEFAULT_PATIENCE  # 0: a fixed budget, every epoch trained, the last kept
    every: int = 1  # > 1 with phases > 1: fit/val hold whole runs, thinned by train() itself
    phases: int = 1
    augmentation: Any = None  # a rul_core.signal.noise.NoiseAugmentation, or None


def recorded_label_params(label_scheme: str, label_params: dict, every: int) -> dict:
    """``label_params`` of runs thinned to every ``every``-th snapshot, in the recording's
    snapshots (what ``train(snapshot_every=every)`` takes): a ``capped`` cap times ``every``;
    the other schemes are fractions of the run and stay as they are."""
    if label_scheme == "capped" and every > 1:
        out = {**label_params, "max_rul": int(label_params["max_rul"]) * int(every)}
        if label_params.get("log_scale"):
            out["log_scale"] = float(label_params["log_scale"]) * int(every)
        return out
    return dict(label_params)


_FOLD_TAG = ""  # the fold this process trains, named in its log lines (folds may run at once)


def fold_tag(fold: Fold) -> str:
    """``model/ablation seed s held Bearing``: names a fold in the log."""
    return f"{fold.model}/{fold.ablation} seed {fold.seed} held {fold.held.name}"


def log_epoch_end(event: Any) -> None:
    """Progress callback: one stderr line per finished epoch (a run stopped by a time limit
    still shows how far its training got)."""
    x = event.extra
    if x.get("epoch_end"):
        val = "" if x.get("val_loss") is None else f", val_loss {x['val_loss']:.4g}"
        print(f"    [{_FOLD_TAG}] epoch {x['epoch']} (member {x.get('member', 0)}): "
              f"loss {x['loss']:.4g}{val} at {time.strftime('%H:%M:%S')}",
              file=sys.stderr, flush=True)


def run_fold(fold: Fold) -> dict:
    """Train one fold and score its held-out bearing: one row of the per-fold table."""
    import gc

    import keras

    from rul_core import metrics as mt
    from rul_core.models import ModelConfig
    from rul_core.training import predict_windows, train

    global _FOLD_TAG
    _FOLD_TAG = fold_tag(fold)
    ensemble = {"interval": "ensemble", "n_members": fold.n_members} if fold.n_members > 1 else {}
    cfg = ModelConfig(fold.model, ablation=fold.ablation, preset=fold.preset, dataset_kind="femto",
                      seed=fold.seed, mc_samples=10, hparams=dict(fold.hparams), **ensemble)
    keras.backend.clear_session()
    gc.collect()
    release_free_memory()
    rss0 = PeakRss._rss()
    t0 = time.perf_counter()
    thinning = ({"snapshot_every": fold.every, "snapshot_phases": fold.phases}
                if fold.phases > 1 else {})
    with PeakRss() as mem:
        tm = train(cfg, list(fold.fit.values()), epochs=fold.epochs,
                   val_runs=list(fold.val.values()) or None, label_scheme=fold.label_scheme,
                   label_params=recorded_label_params(fold.label_scheme, fold.label_params,
                                                      fold.every if thinning else 1),
                   pipeline_config=fold.pipeline_config, progress=log_epoch_end,
                   patience=fold.patience, augmentation=fold.augmentation, **thinning)
    wall = time.perf_counter() - t0
    if thinning:  # predict the pre-thinned held-out run as the other settings do (same inputs)
        from dataclasses import replace

        tm = replace(tm, snapshot_every=1, label_params=dict(fold.label_params))
    for member in tm.history:  # one history per ensemble member
        print(f"    [{_FOLD_TAG}] " + "; ".join(f"{k} " + " ".join(f"{v:.4g}" for v in vals)
                                 for k, vals in member.items() if k != "learning_rate"),
              file=sys.stderr, flush=True)
    held = fold.held
    w = predict_windows(tm, held, with_labels=True, quantiles=fold.quantiles)
    if fold.save_dir:  # snapshot means, to study post-processing without retraining
        from rul_core.atomic import write_text
        from rul_core.training import aggregate_snapshots

        name = f"{fold.model}-{fold.ablation}-seed{fold.seed}-{held.name}.csv"
        write_text(Path(fold.save_dir) / name, aggregate_snapshots(w, held).to_csv(index=False))
    return {
        "model": fold.model, "ablation": fold.ablation, "bearing": held.name,
        "rmse": mt.rmse(w["y_true"], w["rul"]), "mae": mt.mae(w["y_true"], w["rul"]),
        "picp": mt.picp(w["y_true"], w["lower"], w["upper"]), "phm": phm_style_score(w),
        **protocol_proxies(w, held, fold.label_scheme, fold.label_params, fold.quantiles),
        "rmse_snap": snapshot_rmse(w), "wall_s": wall, "peak_rss_mb": mem.peak / 2**20,
        "rss_growth_mb": (mem.peak - rss0) / 2**20, "epochs": int(tm.metrics["epochs_run"]),
        "train_windows": int(tm.metrics["train_windows"]),
    }


def in_fresh_process(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a newly spawned child process (TensorFlow's memory dies with it);
    ``BrokenProcessPool`` when the child dies, e.g. killed for memory."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def run_parallel(folds: list[Fold], jobs: int, report: Any) -> list[dict]:
    """:func:`run_fold` of every fold, ``jobs`` at a time, each in a fresh spawned process;
    ``report(fold, row)`` as each ends; the rows in the order of ``folds``, failed folds left
    out (named on stderr)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    rows: dict[int, dict] = {}
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = {pool.submit(run_fold, fold): i for i, fold in enumerate(folds)}
        for future in as_completed(futures):
            i = futures[future]
            try:
                rows[i] = report(folds[i], future.result())
            except Exception as exc:  # a child killed for memory breaks the pool: say which
                print(f"  {fold_tag(folds[i])}: FAILED ({type(exc).__name__}: {exc})",
                      file=sys.stderr, flush=True)
    return [rows[i] for i in sorted(rows)]


def lobo(
    models: list[str],
    ablations: list[str] | None,
    runs: dict[str, Run],
    epochs: int | None,
    seeds: int | list[int],
    pipeline_config: object | None = None,
    label_params: dict | None = None,
    label_scheme: str = "piecewise",
    inner_val: bool = False,
    hparams: dict | None = None,
    quantiles: tuple[float, ...] = (),
    isolate: bool = True,
    n_members: int = 1,
    save_dir: str | None = None,
    preset: str = "quick",
    held_out: list[str] | None = None,
    patience: int = DEFAULT_PATIENCE,
    full_runs: dict[str, Run] | None = None,
    every: int = 1,
    phases: int = 1,
    jobs: int = 1,
    augmentation: Any = None,
) -> list[dict]:
    """Leave-one-bearing-out rows (:func:`run_fold`), one per model, ablation, seed and bearing.

    ``isolate``: each fold trains in a fresh child process (spawned, one fold each), so the
    memory TensorFlow keeps after every trained model (``bench/train_memory.py``) does not
    accumulate over the folds and each fold's peak RSS is its own. ``held_out``: score only
    the folds that hold out these bearings (default: every fold). ``patience``: early stopping's;
    0 trains every epoch of each fold and keeps the last (the validation bearing then only
    calibrates the interval). ``phases`` > 1: the training and validation bearings come whole
    from ``full_runs`` and train thins them to every ``every``-th snapshot in ``phases`` phases
    (``runs`` are those thinned runs, phase 0, and hold the held-out bearing). ``jobs`` > 1:
    that many folds train at once, each in its own fresh child process (on a GPU or a machine
    with many cores; the rows are the same as one at a time, in the same order); a fold whose
    process fails is reported on stderr and left out. ``augmentation``: noisy copies of the
    training bearings (``train(augmentation=...)``).
    """
    from rul_core.models import ABLATIONS
    from rul_core.training import leave_one_bearing_out

    bearings = list(runs)
    seed_list = [seeds] if isinstance(seeds, int) else list(seeds)
    folds = []
    for model in models:
        for ablation in ablations or ABLATIONS[model]:
            if ablation not in ABLATIONS[model]:
                continue
            for seed, (train_names, (held,)) in (
                (s, fold) for s in seed_list for fold in leave_one_bearing_out(bearings)
                if held_out is None or fold[1][0] in held_out
            ):
                fit_names, val_names = train_names, []
                if inner_val:  # the fold's last training bearing validates and calibrates
                    fit_names, val_names = train_names[:-1], train_names[-1:]
                src = full_runs if phases > 1 and full_runs else runs
                folds.append(Fold(
                    model, ablation, {n: src[n] for n in fit_names},
                    {n: src[n] for n in val_names}, runs[held], epochs, seed, pipeline_config,
                    label_scheme, dict(label_params or {}), dict(hparams or {}),
                    tuple(quantiles), int(n_members), save_dir, preset, patience, int(every),
                    int(phases), augmentation))

    def report(fold: Fold, row: dict) -> dict:
        row["seed"] = fold.seed
        print(
            f"  {fold_tag(fold)}: rmse {row['rmse']:.4f} "
            f"proxy {row['proxy']:.3f} grid {row['proxy_grid']:.3f} "
            + " ".join(f"q{q:g} {row[f'proxy@{q:g}']:.3f}/{row[f'grid@{q:g}']:.3f}"
                       for q in quantiles)
            + f" ({row['wall_s']:.1f} s, {row['peak_rss_mb']:.0f} MB)",
            file=sys.stderr,
            flush=True,
        )
        return row

    if jobs > 1 and len(folds) > 1:
        return run_parallel(folds, jobs, report)
    rows = []
    for fold in folds:
        rows.append(report(fold, in_fresh_process(run_fold, fold) if isolate else run_fold(fold)))
    return rows


def model_throughput(model: str, batches: int, batch_size: int | None) -> dict:
    """Training windows/s of one model at the paper preset on random inputs (after one warm-up
    batch), the peak resident memory of the whole measurement and, on an accelerator, its peak
    memory in use."""
    import keras

    from rul_core.device import compute_device, peak_device_memory_mb
    from rul_core.models import ModelConfig, build_model

    cfg = ModelConfig(model, preset="paper", dataset_kind="femto")
    bs = int(batch_size or cfg.resolved().get("batch_size", 32))
    with PeakRss() as mem:
        net = build_model(cfg)
        rng = np.random.default_rng(0)
        xs = [rng.random((bs, *t.shape[1:]), dtype=np.float32) for t in net.inputs]
        y = rng.random((bs, 1), dtype=np.float32)
        x = xs[0] if len(xs) == 1 else xs
        t0 = time.perf_counter()
        keras.ops.convert_to_numpy(net.train_on_batch(x, y))  # warm-up: tracing, compiling
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(batches):
            loss = net.train_on_batch(x, y)
        keras.ops.convert_to_numpy(loss)  # the last step has finished
        dt = time.perf_counter() - t0
    return {"model": model, "device": compute_device(), "params": int(net.count_params()),
            "batch_size": bs, "batches": batches, "windows_per_s": bs * batches / dt,
            "first_step_s": first, "peak_rss_mb": mem.peak / 2**20,
            "peak_device_mb": peak_device_memory_mb(), "note": ""}


def throughput(models: list[str], batches: int, batch_size: int | None) -> list[dict]:
    """:func:`model_throughput` of each model, each in a fresh child process: a model too large
    for this machine's memory is killed there and reported in its row, and the rows measured
    before it (and this process's tables) survive."""
    from concurrent.futures.process import BrokenProcessPool

    rows = []
    for model in models:
        try:
            row = in_fresh_process(model_throughput, model, batches, batch_size)
            print(f"  {model} paper ({row['device']}): {row['windows_per_s']:.2f} windows/s, "
                  f"first step {row['first_step_s']:.1f} s, peak RSS {row['peak_rss_mb']:.0f} MB, "
                  f"peak device {row['peak_device_mb']:.0f} MB", file=sys.stderr, flush=True)
        except BrokenProcessPool:
            row = {"model": model, "device": "-", "params": float("nan"),
                   "batch_size": batch_size or "preset", "batches": batches,
                   "windows_per_s": float("nan"), "first_step_s": float("nan"),
                   "peak_rss_mb": float("nan"), "peak_device_mb": float("nan"),
                   "note": "the child process died (killed by the kernel: out of memory?)"}
            print(f"  {model} paper: {row['note']}", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def markdown(rows: list[dict], cols: list[str]) -> str:
    """Rows as a markdown table."""

    def f(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(f(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def machine_line() -> str:
    """CPU model, cores, OS, Python and Keras versions, and the device the models train on."""
    import keras

    from rul_core.device import compute_device

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"machine: {cpu}, {os.cpu_count()} CPU cores (shared), {platform.platform()}, "
            f"Python {platform.python_version()}, keras {keras.__version__} "
            f"({compute_device()})")


def best_quantile(rows: list[dict], quantiles: tuple[float, ...]) -> tuple[float, float, float]:
    """(q, challenge-cut proxy, grid proxy) of the quantile with the best mean *grid* proxy
    over ``rows`` (the point estimate, 0.5, included): chosen without the challenge's answers."""
    cands = [(0.5, "proxy", "proxy_grid")] + [(q, f"proxy@{q:g}", f"grid@{q:g}")
                                             for q in quantiles]
    scored = [(float(np.mean([r[g] for r in rows])), q, p) for q, p, g in cands]
    grid, q, proxy = max(scored, key=lambda t: t[0])
    return q, float(np.mean([r[proxy] for r in rows])), grid


def seed_spread(rows: list[dict], key: str) -> float:
    """Standard deviation (ddof 1) over seeds of the per-seed mean of ``key``; nan with one."""
    by_seed: dict[object, list[float]] = {}
    for r in rows:
        by_seed.setdefault(r.get("seed", 0), []).append(r[key])
    means = [float(np.mean(v)) for v in by_seed.values()]
    return float(np.std(means, ddof=1)) if len(means) > 1 else float("nan")


def summary_table(rows: list[dict], bearings: list[str], quantiles: tuple[float, ...] = ()) -> str:
    """One row per model/ablation: per-bearing RMSE, mean RMSE, mean PHM-style score, the
    proxies of the point estimate and of the grid-chosen quantile, training wall time per
    leave-one-out pass and the largest peak RSS over its folds. With several seeds every mean is
    over seeds and folds, and ``sd`` is the spread of the per-seed means over the seeds."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["ablation"]), []).append(r)
    out = []
    for (m, a), rs in groups.items():
        n_seeds = len({r.get("seed", 0) for r in rs})
        d = {"model": m, "ablation": a, "seeds": n_seeds}
        for b in bearings:
            held = [r["rmse"] for r in rs if r["bearing"] == b]
            d[b.removeprefix("Bearing")] = float(np.mean(held)) if held else float("nan")
        d["mean RMSE"] = float(np.mean([r["rmse"] for r in rs]))
        d["mean RMSE (snapshot means)"] = float(np.mean([r["rmse_snap"] for r in rs]))
        d["mean PHM score"] = float(np.mean([r["phm"] for r in rs]))
        d["mean PICP"] = float(np.mean([r["picp"] for r in rs]))
        d["PHM 2012 proxy"] = float(np.mean([r["proxy"] for r in rs]))
        d["proxy sd"] = seed_spread(rs, "proxy")
        d["grid proxy"] = float(np.mean([r["proxy_grid"] for r in rs]))
        d["grid sd"] = seed_spread(rs, "proxy_grid")
        d["q (grid-chosen)"], d["proxy at q"], d["grid proxy at q"] = best_quantile(rs, quantiles)
        d["train wall s"] = float(np.sum([r["wall_s"] for r in rs])) / n_seeds
        peaks = [r["peak_rss_mb"] for r in rs if np.isfinite(r["peak_rss_mb"])]
        d["peak RSS MB"] = float(np.max(peaks)) if peaks else float("nan")
        out.append(d)
    cols = ["model", "ablation", "seeds", *[b.removeprefix("Bearing") for b in bearings],
            "mean RMSE", "mean RMSE (snapshot means)", "mean PHM score", "mean PICP",
            "PHM 2012 proxy", "proxy sd", "grid proxy", "grid sd", "q (grid-chosen)",
            "proxy at q", "grid proxy at q", "train wall s", "peak RSS MB"]
    return markdown(out, cols)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="*", default=["multimodal", "carle", "rc_lstm"])
    p.add_argument("--ablations", nargs="+", default=None, help="default: every ablation")
    p.add_argument("--bearings", nargs="+", default=list(BEARINGS))
    p.add_argument("--held-out", nargs="+", default=None, metavar="BEARING",
                   help="run only the folds that hold out these bearings (default: every fold; "
                        "every fold still trains on all the others)")
    p.add_argument("--epochs", type=int, default=None, help="default: the quick preset's")
    p.add_argument("--max-snapshots", type=int, default=None, help="per bearing (default all)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0],
                   help="repeat every leave-one-out pass with each seed; the summary reports "
                        "means over seeds and the spread (sd) of the per-seed means")
    p.add_argument("--baseline-snapshots", type=int, default=None,
                   help="healthy-baseline TF standardisation (default: the training default; "
                        "0 = off)")
    p.add_argument("--sigma", type=float, default=None, help="Gaussian filter sigma (samples)")
    p.add_argument("--labels", choices=("piecewise", "linear", "capped"), default="piecewise")
    p.add_argument("--max-rul-s", type=float, default=3000.0,
                   help="capped labels: the cap in seconds (default 3000 s = 50 min)")
    p.add_argument("--log-scale-s", type=float, default=0.0,
                   help="capped labels compressed logarithmically with this scale (s); "
                        "0: linear")
    p.add_argument("--hparam", action="append", metavar="KEY=JSON",
                   help="override a quick-preset hyperparameter (repeatable)")
    p.add_argument("--inner-val", action="store_true",
                   help="hold out the last training bearing of each fold for early stopping and "
                        "interval calibration (trains on four bearings)")
    p.add_argument("--fixed-epochs", action="store_true",
                   help="no early stopping: train every epoch, keep the last (the validation "
                        "bearing of --inner-val then only calibrates the band)")
    p.add_argument("--stride", type=int, default=1,
                   help="keep every N-th snapshot counted back from failure (absolute time kept)")
    p.add_argument("--phases", type=int, default=1,
                   help="train on this many phase offsets of the --stride thinning (<= stride)")
    augmentation_options(p)  # the CLI's --augment-noise/--augment-severity/--augment-copies
    p.add_argument("--knee", type=float, default=0.3, help="piecewise label knee fraction")
    p.add_argument("--constant", action="store_true",
                   help="add the constant (training-label mean) baseline rows")
    p.add_argument(
        "--throughput-models",
        nargs="*",
        default=None,
        help="models for the paper-preset throughput (default: --models)",
    )
    p.add_argument("--throughput-batches", type=int, default=3)
    p.add_argument(
        "--throughput-batch-size",
        type=int,
        default=None,
        help="default: the paper preset's batch size",
    )
    p.add_argument("--quantiles", nargs="*", type=float, default=list(QUANTILES),
                   help="band quantiles scored besides the point estimate; the one with the "
                        "best grid proxy is reported (default: %(default)s)")
    p.add_argument("--n-members", type=int, default=1,
                   help="train a seeded deep ensemble of N members per fold (N > 1; RC-LSTM: "
                        "mixture of Gaussian heads)")
    p.add_argument("--in-process", action="store_true",
                   help="train every fold in this process (default: a fresh child process per "
                        "fold, so TensorFlow's per-model memory does not accumulate)")
    p.add_argument("--jobs", type=int, default=1,
                   help="train this many folds at once, each in its own process (a GPU runs "
                        "many small trainings side by side; default 1)")
    p.add_argument("--save-predictions", metavar="DIR", default=None,
                   help="write each fold's held-out snapshot means (rul, band, q<q>, y_true) "
                        "to DIR/<model>-<ablation>-seed<s>-<bearing>.csv")
    p.add_argument("--preset", choices=("quick", "paper"), default="quick",
                   help="model sizes for the leave-one-out pass (the throughput is always "
                        "measured at the paper preset)")
    p.add_argument("--npz-dir", type=Path, default=NPZ_DIR,
                   help="the learning bearings' npz files (or a bench/femto_subset.py subset)")
    p.add_argument("--skip-lobo", action="store_true")
    args = p.parse_args(argv)
    quantiles = tuple(args.quantiles)
    if args.save_predictions:
        Path(args.save_predictions).mkdir(parents=True, exist_ok=True)

    from dataclasses import replace

    from rul_core.models import ModelConfig
    from rul_core.training import default_pipeline_config

    pc = default_pipeline_config(ModelConfig("carle"))
    if args.baseline_snapshots is not None:
        pc = replace(pc, baseline_snapshots=args.baseline_snapshots or None)
    if args.sigma is not None:
        pc = replace(pc, gaussian_sigma=args.sigma or None)
    from rul_core.models.presets import parse_key_values

    hparams = parse_key_values(args.hparam, "--hparam")  # the CLI's syntax: JSON, else text
    label_params: dict = {}
    if args.labels == "piecewise":
        label_params = {"knee_fraction": args.knee}
    elif args.labels == "capped":
        label_params = {"max_rul": max(1, round(args.max_rul_s / (SNAPSHOT_S * args.stride)))}
        if args.log_scale_s:
            label_params["log_scale"] = args.log_scale_s / (SNAPSHOT_S * args.stride)
    if args.max_snapshots:
        sampling = f"{args.max_snapshots} evenly spaced"
    else:
        sampling = f"every {args.stride}. from the last" if args.stride > 1 else "all"
    if args.jobs < 1:
        raise SystemExit("--jobs: a whole number >= 1")
    if not 1 <= args.phases <= max(1, args.stride) or (args.phases > 1 and args.max_snapshots):
        raise SystemExit("--phases: a whole number from 1 to --stride, without --max-snapshots")
    try:
        augmentation = augmentation_from_args(args)
    except RulError as exc:
        raise SystemExit(str(exc)) from None
    full_runs = {b: load_femto_npz(b, args.npz_dir) for b in args.bearings} if (
        args.phases > 1 and not args.skip_lobo) else None
    runs = {} if args.skip_lobo else {
        b: load_femto_npz(b, args.npz_dir, max_snapshots=args.max_snapshots, stride=args.stride)
        for b in args.bearings
    }
    if args.skip_lobo:
        print(f"# Training throughput (bench/phm2012.py)\n\n{machine_line()}\n")
    else:
        print(
            f"# PHM 2012 leave-one-bearing-out ({args.preset} preset)\n\n{machine_line()}\n\n"
            f"snapshots per bearing: {sampling}; epochs: "
            f"{args.epochs or 'preset'}; label: {args.labels} {label_params}; pipeline: "
            f"baseline_snapshots={pc.baseline_snapshots}, gaussian_sigma={pc.gaussian_sigma}; "
            f"validation: {'last training bearing of each fold' if args.inner_val else 'none'}"
            f"{' (band only; fixed epochs, last kept)' if args.fixed_epochs else ''}; "
            f"hyperparameter overrides: {hparams or 'none'}"
            + (f"; deep ensemble of {args.n_members}" if args.n_members > 1 else "")
            + (f"; training on {args.phases} phase offsets of the thinning (train(snapshot_every="
               f"{args.stride}, snapshot_phases={args.phases}))" if args.phases > 1 else "")
            + (f"; augmentation: {augmentation.describe()}" if augmentation else "") + "\n"
        )
    if not args.skip_lobo:
        rows = constant_rows(runs, args.labels, label_params, quantiles) if (
            args.constant) else []
        if args.models:
            rows += lobo(args.models, args.ablations, runs, args.epochs, args.seeds, pc,
                         label_params, args.labels, args.inner_val, hparams, quantiles,
                         isolate=not args.in_process, n_members=args.n_members,
                         save_dir=args.save_predictions, preset=args.preset,
                         held_out=args.held_out,
                         patience=0 if args.fixed_epochs else DEFAULT_PATIENCE,
                         full_runs=full_runs, every=args.stride, phases=args.phases,
                         jobs=args.jobs, augmentation=augmentation)
        if args.held_out:
            rows = [r for r in rows if r["bearing"] in args.held_out]
        print("RMSE of the normalised RUL per held-out bearing (window predictions); PHM score: "
              "mean PHM 2012 accuracy over the degradation-stage snapshots (1 = perfect); "
              "train wall s: sum over the folds run (mean over seeds); sd: spread of the per-seed "
              "means over the seeds (nan with one seed).\n")
        print("Proxies from the point estimate, and from the band quantile q whose grid proxy "
              "is best (chosen on the answer-free grid only; q = 0.5 is the point estimate).\n")
        print(summary_table(rows, args.bearings, quantiles))
        print()
        print("<details><summary>per fold</summary>\n")
        print(
            markdown(
                rows,
                ["model", "ablation", "seed", "bearing", "rmse", "rmse_snap", "mae", "phm", "proxy",
                 "proxy_grid", *[f"{k}@{q:g}" for q in quantiles for k in ("proxy", "grid")],
                 "picp", "epochs", "train_windows", "wall_s", "peak_rss_mb", "rss_growth_mb"],
            )
        )
        print("\n</details>\n")
    tp_models = args.models if args.throughput_models is None else args.throughput_models
    if tp_models:
        print("## Training throughput, paper preset\n", flush=True)
        print(
            markdown(
                throughput(tp_models, args.throughput_batches, args.throughput_batch_size),
                ["model", "device", "params", "batch_size", "batches", "windows_per_s",
                 "first_step_s", "peak_rss_mb", "peak_device_mb", "note"],
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
